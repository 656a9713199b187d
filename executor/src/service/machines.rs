//! Reaching a machine for a work item: credentials unsealed, a pooled SSH connection (a
//! first-seen host key pinned with `report_host_key` before authenticating) or the local machine.

use runledger_secrets::Keyring;

use super::pinning::PinThroughHandler;
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

    /// A transport to `machine`. Without a pinned host key the key presented is pinned first
    /// ([`PinThroughHandler`]): a key the handler does not accept (another one is pinned, or the
    /// report is refused or unanswered) is a host-key error, and no credential was sent.
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
        let pin = PinThroughHandler::new(reporter.clone(), machine.machine_id);
        let connection = self
            .pool
            .get(&target, &pin)
            .await
            .map_err(|err| unreachable(TransportError::from(err)))?;
        Ok(Transport::Ssh(std::sync::Arc::new(connection)))
    }
}

fn unreachable(err: TransportError) -> Unreachable {
    Unreachable {
        kind: err.kind(),
        reason: format!("cannot connect: {err}"),
    }
}
