#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit and integration test against the real
# Postgres and NATS (started here when they are not running). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services
ensure_sshd
ensure_chromium
ensure_openssl
ensure_python_tools
ensure_fault_tools

export RUNLEDGER_TEST_DATABASE_URL="${RUNLEDGER_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export RUNLEDGER_TEST_NATS_URL="${RUNLEDGER_TEST_NATS_URL:-nats://127.0.0.1:4222}"

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test"
# Build everything first: the end-to-end tests of the tests/ package run the `runledger` binary
# that this build leaves in target/debug (they would otherwise ask cargo for it themselves).
cargo test --workspace --locked --no-run
runledger_bin="${CARGO_TARGET_DIR:-$PWD/target}/debug/runledger"
if [[ -z "${RUNLEDGER_BIN:-}" && -x "$runledger_bin" ]]; then
    export RUNLEDGER_BIN="$runledger_bin"
fi
cargo test --workspace --locked
say "the otlp feature (OpenTelemetry span export)"
cargo clippy -p runledger-app --features otlp --all-targets --locked -- -D warnings
cargo test -p runledger-app --features otlp --locked --bin runledger telemetry
