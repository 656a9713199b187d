//! Where audit data goes: stdout through a buffer, and a reader that went away (`| head`) is a
//! normal end, not a failure.

use std::io::{self, BufWriter, Stdout};

/// A buffered stdout. Callers flush after each page, so `--follow` shows events promptly.
pub fn stdout() -> BufWriter<Stdout> {
    BufWriter::with_capacity(64 * 1024, io::stdout())
}

/// Turns a write into a closed pipe into success: the reader has what it wanted.
pub fn closed_pipe_is_success(result: anyhow::Result<()>) -> anyhow::Result<()> {
    match result {
        Err(err) if is_closed_pipe(&err) => {
            tracing::debug!("stdout was closed; stopping");
            Ok(())
        }
        other => other,
    }
}

fn is_closed_pipe(err: &anyhow::Error) -> bool {
    err.downcast_ref::<io::Error>()
        .is_some_and(|err| err.kind() == io::ErrorKind::BrokenPipe)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_a_broken_pipe_counts_as_success() {
        let closed = io::Error::from(io::ErrorKind::BrokenPipe);
        assert!(closed_pipe_is_success(Err(closed.into())).is_ok());
        let full = io::Error::from(io::ErrorKind::StorageFull);
        assert!(closed_pipe_is_success(Err(full.into())).is_err());
        assert!(closed_pipe_is_success(Err(anyhow::anyhow!("other"))).is_err());
    }
}
