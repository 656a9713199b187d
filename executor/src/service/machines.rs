//! Reaching a machine for a work item: credentials unsealed, a pooled SSH connection or the
//! local machine, and a first-seen host key reported for pinning (`report_host_key`).

use runledger_secrets::Keyring;
use runledger_types::rejection::RejectionCode;
use serde_json::json;

use super::reporter::NatsReporter;
use crate::driver::{Transport, TransportError, TransportErrorKind};
use crate::local::LocalMachine;
use crate::ssh::{SshOptions, SshPool};
use crate::view::{MachineInfo, Target, unseal_target};

/// Why a machine could not be reached: the kind gives the run's `error_code`.
#[derive(Debug)]
pub(crate) struct Unreachable {
    /// What went wrong, as a transport error kind.
    pub kind: TransportErrorKind,
    /// For people: the run's `reason` or the provisioning failure.
    pub reason: String,
}

/// The executor's ways of reaching machines.
pub(crate) struct Machines {
    pool: SshPool,
    keyring: Keyring,
    /// Whether work on `local` machines (this executor's own host) is run at all.
    allow_local: bool,
}

impl Machines {
    pub(crate) fn new(keyring: Keyring, options: SshOptions, allow_local: bool) -> Self {
        Self {
            pool: SshPool::new(options),
            keyring,
            allow_local,
        }
    }

    /// A transport to `machine`. Without a pinned host key the key presented is trusted and
    /// reported with `report_host_key`; if the handler answers that another key is pinned by
    /// now, the connection is refused as a host-key mismatch.
    #[tracing::instrument(skip_all, fields(machine_id = %machine.machine_id))]
    pub(crate) async fn connect(
        &self,
        machine: &MachineInfo,
        reporter: &NatsReporter,
    ) -> Result<Transport, Unreachable> {
        let target = unseal_target(&self.keyring, machine).map_err(|err| Unreachable {
            kind: TransportErrorKind::AuthFailed,
            reason: err.to_string(),
        })?;
        let target = match target {
            Target::Local if !self.allow_local => {
                return Err(Unreachable {
                    kind: TransportErrorKind::CannotSpawn,
                    reason: "this executor does not run work on `local` machines (its own \
                             host): its operator has not set RUNLEDGER_EXECUTOR_ALLOW_LOCAL"
                        .to_owned(),
                });
            }
            Target::Local => {
                return LocalMachine::new()
                    .map(Transport::Local)
                    .map_err(|err| unreachable(TransportError::from(err)));
            }
            Target::Ssh(target) => target,
        };
        let connection = self
            .pool
            .get(&target)
            .await
            .map_err(|err| unreachable(TransportError::from(err)))?;
        if target.pinned_host_key.is_none() {
            let fingerprint = connection.host_key_fingerprint().to_owned();
            let payload = json!({"machine_id": machine.machine_id, "fingerprint": fingerprint});
            match reporter.send("report_host_key", payload).await {
                Ok(outcome) if outcome.accepted => {
                    tracing::info!(%fingerprint, "host key trusted on first use");
                }
                Ok(outcome) => {
                    let rejection = outcome.error;
                    if rejection
                        .as_ref()
                        .is_some_and(|r| r.code == RejectionCode::HostKeyMismatch)
                    {
                        self.pool.evict(&target).await;
                        return Err(Unreachable {
                            kind: TransportErrorKind::HostKeyMismatch,
                            reason: format!(
                                "host key mismatch: the machine presented {fingerprint}, \
                                 another key is pinned"
                            ),
                        });
                    }
                    tracing::warn!(?rejection, "report_host_key refused");
                }
                Err(err) => tracing::warn!(error = %err, "report_host_key not delivered"),
            }
        }
        Ok(Transport::Ssh(std::sync::Arc::new(connection)))
    }
}

fn unreachable(err: TransportError) -> Unreachable {
    Unreachable {
        kind: err.kind(),
        reason: format!("cannot connect: {err}"),
    }
}
