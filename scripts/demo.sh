#!/usr/bin/env bash
# Runs runledger on this machine with a small demo lab: starts Postgres and NATS if needed,
# builds and starts `runledger serve --dev`, then registers an admin, a machine, a venv and a
# test case and starts a run, printing each command's outcome. Ctrl-C stops the service.
# Running it again is harmless: already-registered things are answered with a clear rejection.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

say "building runledger (release)"
cargo build --release --locked --bin runledger
bin=target/release/runledger

say "starting runledger serve --dev"
"$bin" serve --dev &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT INT TERM

send() { "$bin" send "$@" || true; }
sleep 2
say "register_user admin"
send register_user '{"username":"admin","role":"admin","password":"runledger-demo"}'
say "register_machine (this host, local transport)"
send --actor admin register_machine '{"machine_id":"0193a000-0000-7000-8000-000000000001","name":"this-host","host":"local","username":"runledger","labels":["demo"]}'
say "add_venv"
send --actor admin add_venv '{"venv_id":"0193a000-0000-7000-8000-000000000002","machine_id":"0193a000-0000-7000-8000-000000000001","name":"demo","requirements":["pytest"]}'
say "define_test_case"
send --actor admin define_test_case '{"test_case_id":"0193a000-0000-7000-8000-000000000003","name":"hello","command":"python -c \"print(42)\""}'
say "start_run (queued until an executor provisions the venv: issue #4)"
send --actor admin start_run "{\"run_id\":\"$(cat /proc/sys/kernel/random/uuid)\",\"test_case_id\":\"0193a000-0000-7000-8000-000000000003\",\"labels\":[\"demo\"]}"
sleep 1
say "read models: runledger projections status"
"$bin" projections status || true
say "audit history: runledger audit --format table"
"$bin" audit --format table || true
say "tamper evidence: runledger audit verify"
sleep 1
"$bin" audit verify || true
say "runledger is running (handler: NATS commands -> Postgres log -> RUNLEDGER_EVENTS; projector: log -> read models). Ctrl-C to stop."
wait "$server"
