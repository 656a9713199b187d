//! Running one command on its own channel, streaming its output as it arrives.

use bytes::Bytes;
use russh::client::Msg;
use russh::{Channel, ChannelMsg, Sig};
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{SshConnection, SshError};

/// A chunk of a remote command's output, in arrival order.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Output {
    /// Bytes written to standard output.
    Stdout(Bytes),
    /// Bytes written to standard error.
    Stderr(Bytes),
}

/// How a remote command ended.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum RemoteExit {
    /// It exited with this status.
    Code(u32),
    /// It was killed by this signal (`TERM`, `KILL`, ...).
    Signal {
        /// The signal's name, without `SIG`.
        name: String,
        /// Whether it dumped core.
        core_dumped: bool,
    },
    /// The channel closed without reporting a status.
    Unknown,
}

impl SshConnection {
    /// Runs `command` (through the login shell of the remote user) on a new channel, sends its
    /// output to `sink` in arrival order, and returns how it ended once the channel has closed.
    ///
    /// A dropped receiver does not stop the command: its output is then discarded.
    pub async fn exec(
        &self,
        command: &str,
        sink: &mpsc::Sender<Output>,
    ) -> Result<RemoteExit, SshError> {
        self.exec_cancellable(command, sink, &CancellationToken::new())
            .await
    }

    /// Like [`exec`](Self::exec), but closes the channel and returns [`SshError::Cancelled`] when
    /// `cancel` fires. Closing the channel does not kill the remote process: the caller terminates
    /// its process group separately. Dropping the returned future closes the channel too.
    #[tracing::instrument(skip_all, fields(addr = %self.addr()), err)]
    pub async fn exec_cancellable(
        &self,
        command: &str,
        sink: &mpsc::Sender<Output>,
        cancel: &CancellationToken,
    ) -> Result<RemoteExit, SshError> {
        let channel = self
            .handle
            .channel_open_session()
            .await
            .map_err(SshError::protocol("channel open"))?;
        let mut guard = ClosingChannel(Some(channel));
        let channel = guard.channel()?;
        channel
            .exec(true, command)
            .await
            .map_err(SshError::protocol("exec"))?;
        let exit = tokio::select! {
            exit = pump(channel, sink) => exit,
            () = cancel.cancelled() => {
                let _ = channel.close().await;
                return Err(SshError::Cancelled);
            }
        };
        guard.0 = None;
        Ok(exit)
    }
}

/// Reads the channel until it closes, forwarding output and remembering the exit.
async fn pump(channel: &mut Channel<Msg>, sink: &mpsc::Sender<Output>) -> RemoteExit {
    let mut exit = RemoteExit::Unknown;
    while let Some(message) = channel.wait().await {
        match message {
            ChannelMsg::Data { data } => {
                let _ = sink.send(Output::Stdout(data)).await;
            }
            ChannelMsg::ExtendedData { data, ext: 1 } => {
                let _ = sink.send(Output::Stderr(data)).await;
            }
            ChannelMsg::ExitStatus { exit_status } => exit = RemoteExit::Code(exit_status),
            ChannelMsg::ExitSignal {
                signal_name,
                core_dumped,
                ..
            } => {
                let name = signal_text(&signal_name);
                exit = RemoteExit::Signal { name, core_dumped };
            }
            _ => {}
        }
    }
    exit
}

fn signal_text(signal: &Sig) -> String {
    match signal {
        Sig::Custom(name) => name.clone(),
        other => format!("{other:?}"),
    }
}

/// Closes its channel when dropped before the command finished (a cancelled or dropped exec).
struct ClosingChannel(Option<Channel<Msg>>);

impl ClosingChannel {
    fn channel(&mut self) -> Result<&mut Channel<Msg>, SshError> {
        self.0.as_mut().ok_or(SshError::Cancelled)
    }
}

impl Drop for ClosingChannel {
    fn drop(&mut self) {
        let Some(channel) = self.0.take() else { return };
        if let Ok(runtime) = tokio::runtime::Handle::try_current() {
            runtime.spawn(async move {
                let _ = channel.close().await;
            });
        }
    }
}
