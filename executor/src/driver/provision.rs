//! [`drive_provisioning`]: create a venv and report how it went.

use std::time::Duration;

use runledger_types::command::{ReportVenvProvisioned, ReportVenvProvisioningFailed};
use runledger_types::ids::VenvId;
use runledger_types::values::Os;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{NotReported, Reporter, Transport};
use crate::render::{self, VenvSpec};
use crate::ssh::{Output, RemoteExit};

/// Most bytes of provisioning output kept for `report_venv_provisioning_failed`.
pub const MAX_OUTPUT_TAIL: usize = 4 * 1024;

/// How a provisioning ended, as reported.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProvisionOutcome {
    /// `report_venv_provisioned` was sent.
    Provisioned {
        /// `3.11.2` from the venv's `python --version`, when it printed one.
        python_version: Option<String>,
    },
    /// `report_venv_provisioning_failed` was sent.
    Failed {
        /// Why.
        reason: String,
        /// The last [`MAX_OUTPUT_TAIL`] bytes of stdout and stderr, in arrival order.
        output_tail: String,
    },
}

/// Runs the provisioning script for `spec` ([`render::provision_venv`]) on `transport` and
/// reports `report_venv_provisioned {venv_id, python_version}` or
/// `report_venv_provisioning_failed {venv_id, reason, output_tail}`. A script that cannot be
/// started (connection lost, …) counts as failed: the venv becomes `broken` and can be
/// provisioned again. The script has no time bound of its own.
#[tracing::instrument(skip_all, fields(venv_id = %venv_id, path = spec.path))]
pub async fn drive_provisioning<R: Reporter>(
    transport: &Transport,
    os: Os,
    venv_id: VenvId,
    spec: VenvSpec<'_>,
    timeout: Duration,
    reporter: &R,
) -> Result<ProvisionOutcome, NotReported<ProvisionOutcome>> {
    let outcome = provision(transport, os, &spec, timeout).await;
    let reported = match &outcome {
        ProvisionOutcome::Provisioned { python_version } => {
            tracing::info!(?python_version, "venv provisioned");
            let report = ReportVenvProvisioned {
                venv_id,
                python_version: python_version.clone(),
            };
            reporter.send_report(&report).await
        }
        ProvisionOutcome::Failed {
            reason,
            output_tail,
        } => {
            tracing::warn!(%reason, "venv provisioning failed");
            let report = ReportVenvProvisioningFailed {
                venv_id,
                reason: reason.clone(),
                output_tail: output_tail.clone(),
            };
            reporter.send_report(&report).await
        }
    };
    match reported {
        Ok(()) => Ok(outcome),
        Err(source) => Err(NotReported { outcome, source }),
    }
}

async fn provision(
    transport: &Transport,
    os: Os,
    spec: &VenvSpec<'_>,
    timeout: Duration,
) -> ProvisionOutcome {
    let script = match render::provision_venv(os, spec) {
        Ok(script) => render::ssh_exec_line(os, &script),
        Err(error) => {
            return ProvisionOutcome::Failed {
                reason: format!("cannot render the provisioning script: {error}"),
                output_tail: String::new(),
            };
        }
    };
    let (sink, mut source) = mpsc::channel(64);
    let collect = async {
        let (mut all, mut stdout) = (Tail::default(), Tail::default());
        while let Some(output) = source.recv().await {
            match output {
                Output::Stdout(bytes) => {
                    all.push(&bytes);
                    stdout.push(&bytes);
                }
                Output::Stderr(bytes) => all.push(&bytes),
            }
        }
        (all.text(), stdout.text())
    };
    let abort = CancellationToken::new();
    let exec = async {
        let sink = sink;
        tokio::select! {
            result = transport.exec(&script, &sink, &abort) => Some(result),
            () = tokio::time::sleep(timeout) => {
                // Closes the channel (or kills the local shell) and stops waiting for it.
                abort.cancel();
                None
            }
        }
    };
    let (result, (output_tail, stdout)) = tokio::join!(exec, collect);
    let Some(result) = result else {
        return ProvisionOutcome::Failed {
            reason: format!(
                "the provisioning script did not finish within {} s",
                timeout.as_secs()
            ),
            output_tail,
        };
    };
    let reason = match result {
        Ok(RemoteExit::Code(0)) => {
            return ProvisionOutcome::Provisioned {
                python_version: python_version(&stdout),
            };
        }
        Ok(RemoteExit::Code(code)) => format!("the provisioning script exited with code {code}"),
        Ok(RemoteExit::Signal { name, .. }) => {
            format!("the provisioning script was killed by signal {name}")
        }
        Ok(RemoteExit::Unknown) => "the provisioning script ended without an exit status".into(),
        Err(error) => format!("the provisioning script could not be run: {error}"),
    };
    ProvisionOutcome::Failed {
        reason,
        output_tail,
    }
}

/// The version from the last `Python X.Y.Z` line.
fn python_version(stdout: &str) -> Option<String> {
    stdout
        .lines()
        .rev()
        .find_map(|line| line.trim().strip_prefix("Python "))
        .map(|version| version.trim().to_owned())
        .filter(|version| !version.is_empty())
}

/// The last [`MAX_OUTPUT_TAIL`] bytes of a byte stream.
#[derive(Default)]
struct Tail(Vec<u8>);

impl Tail {
    fn push(&mut self, bytes: &[u8]) {
        self.0.extend_from_slice(bytes);
        if self.0.len() > 2 * MAX_OUTPUT_TAIL {
            let excess = self.0.len() - MAX_OUTPUT_TAIL;
            self.0.drain(..excess);
        }
    }

    /// As text: a character cut at the start is dropped, invalid bytes and NUL become U+FFFD.
    fn text(&self) -> String {
        let start = self.0.len().saturating_sub(MAX_OUTPUT_TAIL);
        let mut bytes = &self.0[start..];
        while start > 0 && bytes.first().is_some_and(|b| b & 0xC0 == 0x80) {
            bytes = &bytes[1..];
        }
        let text = String::from_utf8_lossy(bytes).replace('\0', "\u{FFFD}");
        // Replacement characters are longer than the bytes they replace: cut the front again.
        let mut cut = text.len().saturating_sub(MAX_OUTPUT_TAIL);
        while !text.is_char_boundary(cut) {
            cut += 1;
        }
        text[cut..].to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_is_read_from_the_last_python_line() {
        assert_eq!(
            python_version("Collecting x\nPython 3.11.2\n").as_deref(),
            Some("3.11.2")
        );
        assert_eq!(python_version("no version\n"), None);
    }

    #[test]
    fn tail_keeps_the_last_bytes_on_a_character_boundary() {
        let mut tail = Tail::default();
        tail.push(&vec![b'a'; 3 * MAX_OUTPUT_TAIL]);
        tail.push("é".repeat(10).as_bytes());
        tail.push(b"\0end");
        let text = tail.text();
        assert!(text.len() <= MAX_OUTPUT_TAIL);
        assert!(text.ends_with("éé\u{FFFD}end"), "{text}");
        let mut odd = Tail::default();
        odd.push(b"x");
        odd.push("é".repeat(MAX_OUTPUT_TAIL).as_bytes());
        assert!(odd.text().chars().all(|c| c == 'é'));
    }
}
