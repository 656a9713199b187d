#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every unit and integration test against the real
# Postgres and NATS (started here when they are not running). CI runs exactly this.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

export RUNLEDGER_TEST_DATABASE_URL="${RUNLEDGER_TEST_DATABASE_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
export RUNLEDGER_TEST_NATS_URL="${RUNLEDGER_TEST_NATS_URL:-nats://127.0.0.1:4222}"

say "cargo fmt --check"
cargo fmt --all -- --check
say "cargo clippy"
cargo clippy --workspace --all-targets --locked -- -D warnings
say "cargo test"
cargo test --workspace --locked
