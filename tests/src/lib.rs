//! End-to-end tests and benchmarks of runledger against the real Postgres and NATS.
//! The tests live in `tests/tests/`, the benchmark binaries in `tests/src/bin/`.

pub mod http_load;
pub mod lag;
pub mod replay;

/// Logs to stderr at the levels `RUST_LOG` names (`warn` when it is unset), for the benchmark
/// binaries: `RUST_LOG=runledger_executor=debug` shows each run's stages with their times.
pub fn init_tracing() {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn")),
        )
        .with_writer(std::io::stderr)
        .init();
}

/// The peak resident set (`VmHWM`) of process `pid` (`"self"` for this one), in KiB.
pub fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}
