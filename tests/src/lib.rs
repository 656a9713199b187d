//! End-to-end tests and benchmarks of runledger against the real Postgres and NATS.
//! The tests live in `tests/tests/`, the benchmark binaries in `tests/src/bin/`.
