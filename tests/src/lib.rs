//! End-to-end tests and benchmarks of runledger against the real Postgres and NATS.
//! The tests live in `tests/tests/`, the benchmark binaries in `tests/src/bin/`.

pub mod http_load;
pub mod lag;
pub mod replay;

/// The peak resident set (`VmHWM`) of process `pid` (`"self"` for this one), in KiB.
pub fn peak_rss_kib(pid: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmHWM:"))
        .and_then(|rest| rest.split_whitespace().next())
        .and_then(|kib| kib.parse().ok())
}
