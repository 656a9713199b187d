//! Opening a machine's sealed credentials into something a transport can connect with.

use super::MachineInfo;
use crate::ssh::{SshAuth, SshTarget};
use runledger_secrets::{Keyring, SecretsError};
use runledger_types::MachineId;

/// How to reach a machine. `Debug` never shows the credential (see [`SshAuth`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// Over SSH, with the credential in clear (kept only as long as the connection needs it).
    Ssh(SshTarget),
    /// Host `local`: commands run as child processes of the executor.
    Local,
}

/// Why a machine's credentials could not be opened.
#[derive(Debug, thiserror::Error)]
pub enum UnsealError {
    /// The machine has neither a password nor a private key.
    #[error("machine {0} has no credential")]
    NoCredential(MachineId),
    /// The sealed value cannot be opened with this keyring (wrong or missing key, tampering).
    #[error("cannot open the credential of machine {machine_id}: {source}")]
    Secrets {
        /// The machine.
        machine_id: MachineId,
        /// Why.
        #[source]
        source: SecretsError,
    },
}

/// Opens `machine`'s credential with `keyring`. A private key is preferred when both a key and a
/// password are held; host `local` needs no credential.
pub fn unseal_target(keyring: &Keyring, machine: &MachineInfo) -> Result<Target, UnsealError> {
    if machine.host.is_local() {
        return Ok(Target::Local);
    }
    let open = |sealed| {
        keyring.open(sealed).map_err(|source| UnsealError::Secrets {
            machine_id: machine.machine_id,
            source,
        })
    };
    let auth = match (&machine.private_key, &machine.password) {
        (Some(key), _) => SshAuth::PrivateKey(open(key)?.expose().to_owned()),
        (None, Some(password)) => SshAuth::Password(open(password)?.expose().to_owned()),
        (None, None) => return Err(UnsealError::NoCredential(machine.machine_id)),
    };
    Ok(Target::Ssh(SshTarget {
        host: machine.host.as_str().to_owned(),
        port: machine.port.get(),
        username: machine.username.as_str().to_owned(),
        auth,
        pinned_host_key: machine.host_key.as_ref().map(|key| key.as_str().to_owned()),
    }))
}
