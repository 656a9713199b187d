//! Ending a run's process group on timeout or cancel: `TERM`, a grace period, `KILL`.

use std::time::Duration;

use runledger_types::values::Os;
use tokio::sync::watch;
use tokio::time::sleep;
use tokio_util::sync::CancellationToken;

use super::{KILL_GRACE, Transport};
use crate::render::{self, KillStage, ProcessHandle};

/// Why the watchdog ended the run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Stop {
    /// `timeout` passed.
    TimedOut,
    /// `cancel` fired.
    Cancelled,
}

/// Watches one run's command.
pub(super) struct Watchdog<'a> {
    pub transport: &'a Transport,
    pub os: Os,
    pub timeout: Duration,
    pub cancel: &'a CancellationToken,
    /// Fired when the command's exec has returned.
    pub exec_done: &'a CancellationToken,
    /// Fired to stop waiting for the exec (it closes the channel or kills the local `sh`).
    pub exec_abort: &'a CancellationToken,
    /// The process marker, once the output pump has seen it.
    pub marker: watch::Receiver<Option<ProcessHandle>>,
}

impl Watchdog<'_> {
    /// Returns `None` when the command ended by itself; otherwise kills it and says why.
    pub async fn run(mut self) -> Option<Stop> {
        let stop = tokio::select! {
            biased;
            () = self.exec_done.cancelled() => return None,
            () = self.cancel.cancelled() => Stop::Cancelled,
            () = sleep(self.timeout) => Stop::TimedOut,
        };
        tracing::info!(?stop, "ending the run's processes");
        let handle = tokio::select! {
            marker = self.marker.wait_for(Option::is_some) => marker.ok().and_then(|m| *m),
            () = self.exec_done.cancelled() => return Some(stop),
            () = sleep(KILL_GRACE) => None,
        };
        let Some(handle) = handle else {
            tracing::warn!("no process marker: abandoning the command without killing it");
            self.exec_abort.cancel();
            return Some(stop);
        };
        self.signal(handle, KillStage::Terminate).await;
        if self.exited_within(KILL_GRACE).await {
            return Some(stop);
        }
        self.signal(handle, KillStage::Kill).await;
        if !self.exited_within(KILL_GRACE).await {
            tracing::warn!("the command did not end after KILL: abandoning it");
            self.exec_abort.cancel();
        }
        Some(stop)
    }

    async fn exited_within(&self, grace: Duration) -> bool {
        tokio::select! {
            () = self.exec_done.cancelled() => true,
            () = sleep(grace) => false,
        }
    }

    async fn signal(&self, handle: ProcessHandle, stage: KillStage) {
        let line = render::ssh_exec_line(self.os, &render::kill(handle, stage));
        match self.transport.exec_quiet(&line).await {
            Ok(exit) => tracing::debug!(?handle, ?stage, ?exit, "kill sent"),
            Err(error) => tracing::warn!(?handle, ?stage, %error, "kill could not be sent"),
        }
    }
}
