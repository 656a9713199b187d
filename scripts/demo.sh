#!/usr/bin/env bash
# Runs runledger on this machine with a small demo lab: starts Postgres and NATS if needed,
# builds and starts `runledger serve --dev`, then registers an admin, a machine, a venv and a
# test case and starts a run, printing each command's outcome and the run's audit trail, then
# reads the run back through the HTTP gateway. The
# machine is this host (`local` transport): the executor provisions the venv and runs the test
# as child processes. Ctrl-C stops the service.
# Running it again is harmless: already-registered things are answered with a clear rejection.
# RUNLEDGER_BIN=path/to/runledger skips the release build (the test suite runs the demo so);
# DATABASE_URL, NATS_URL, RUNLEDGER_NATS_PREFIX and RUNLEDGER_HTTP_ADDR are passed through; when
# the prefix's streams hold another log's events, the demo picks `<prefix>-<log id>` and says so.
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/services.sh
ensure_services

bin="${RUNLEDGER_BIN:-}"
if [[ -z "$bin" ]]; then
  say "building runledger (release)"
  cargo build --release --locked --bin runledger
  bin=target/release/runledger
fi
http="http://${RUNLEDGER_HTTP_ADDR:-127.0.0.1:8080}"

# One log per bus: when the prefix's NATS streams hold another log's events (the database was
# dropped and created again, or another lab uses this NATS), the demo takes a prefix of this
# log's own, and says so, rather than have `serve` refuse to start.
"$bin" migrate >/dev/null
set +e
log_id=$("$bin" bus check 2>/dev/null | sed -n 's/^log //p')
"$bin" bus check >/dev/null 2>&1
bus_status=$?
set -e
if [[ $bus_status -eq 3 ]]; then
  taken="${RUNLEDGER_NATS_PREFIX:-runledger}"
  export RUNLEDGER_NATS_PREFIX="${taken}-${log_id:0:8}"
  say "NATS streams of prefix $taken hold another log's events; this demo uses RUNLEDGER_NATS_PREFIX=$RUNLEDGER_NATS_PREFIX"
  echo "  (run \`$bin bus status\` to see them, \`RUNLEDGER_NATS_PREFIX=$taken $bin bus reset\` to delete them)"
elif [[ $bus_status -ne 0 ]]; then
  "$bin" bus check || true
  echo "cannot check the NATS streams (is NATS running at ${NATS_URL:-nats://127.0.0.1:4222}?)" >&2
  exit 1
fi

say "starting runledger serve --dev"
"$bin" serve --dev &
server=$!
trap 'kill "$server" 2>/dev/null || true; wait "$server" 2>/dev/null || true' EXIT INT TERM

send() { "$bin" send "$@" || true; }
for _ in $(seq 1 120); do
  if curl -sf "$http/readyz" >/dev/null 2>&1; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "runledger serve stopped; see its log above" >&2; exit 1; fi
  sleep 0.5
done
say "register_user admin"
send register_user '{"username":"admin","role":"admin","password":"runledger-demo"}'
say "register_machine (this host, local transport)"
send --actor admin register_machine '{"machine_id":"0193a000-0000-7000-8000-000000000001","name":"this-host","host":"local","username":"runledger","labels":["demo"]}'
say "add_venv"
send --actor admin add_venv '{"venv_id":"0193a000-0000-7000-8000-000000000002","machine_id":"0193a000-0000-7000-8000-000000000001","name":"demo","requirements":["pytest"]}'
say "define_test_case"
send --actor admin define_test_case '{"test_case_id":"0193a000-0000-7000-8000-000000000003","name":"hello","command":"python -c \"print(42)\""}'
say "define_test_case for each example in examples/ (passing, failing, slow pytest suites)"
n=4
for example in passing failing slow; do
  payload=$(python3 - "$example" "$n" <<'PY'
import json, pathlib, sys
name, n = sys.argv[1], int(sys.argv[2])
files = [{"path": p.name, "content": p.read_text()} for p in sorted(pathlib.Path("examples", name).glob("*.py"))]
print(json.dumps({"test_case_id": f"0193a000-0000-7000-8000-{n:012d}", "name": f"example-{name}",
                  "description": f"examples/{name}", "command": "python -m pytest -q -s --junitxml=report.xml",
                  "junit_xml": "report.xml", "files": files, "timeout_s": 600}))
PY
)
  send --actor admin define_test_case "$payload"
  n=$((n + 1))
done
run_id=$(cat /proc/sys/kernel/random/uuid)
say "start_run (queued until the executor has provisioned the venv, then run on this host)"
send --actor admin start_run "{\"run_id\":\"$run_id\",\"test_case_id\":\"0193a000-0000-7000-8000-000000000003\",\"labels\":[\"demo\"]}"
say "waiting for the run to finish (the first time, provisioning installs pytest from PyPI)"
for _ in $(seq 1 180); do
  if "$bin" audit --stream "run-$run_id" --type run_finished 2>/dev/null | grep -q run_finished; then break; fi
  if ! kill -0 "$server" 2>/dev/null; then echo "runledger serve stopped; see its log above" >&2; exit 1; fi
  sleep 1
done
say "the run's audit trail: runledger audit --stream run-$run_id --format table"
"$bin" audit --stream "run-$run_id" --format table || true
say "read models: runledger projections status"
"$bin" projections status || true
say "audit history: runledger audit --format table"
"$bin" audit --format table || true
say "tamper evidence: runledger audit verify"
sleep 1
"$bin" audit verify || true
say "the HTTP gateway: log in (POST $http/api/v1/tokens) and read the run back"
token=$(curl -sf -X POST "$http/api/v1/tokens" -H 'content-type: application/json' \
  -d '{"username":"admin","password":"runledger-demo"}' | sed -n 's/.*"token":"\([^"]*\)".*/\1/p' || true)
if [ -n "$token" ]; then
  curl -sf -H "authorization: Bearer $token" "$http/api/v1/runs/$run_id" || true; echo
  curl -sf -H "authorization: Bearer $token" "$http/api/v1/runs/$run_id/log" || true
  example_run=$(cat /proc/sys/kernel/random/uuid)
  say "start_run example-failing over HTTP (POST $http/api/v1/runs)"
  curl -sf -X POST -H "authorization: Bearer $token" -H 'content-type: application/json' \
    -d "{\"run_id\":\"$example_run\",\"test_case_id\":\"0193a000-0000-7000-8000-000000000005\",\"labels\":[\"demo\"]}" \
    "$http/api/v1/runs" || true; echo
  echo "token for your own requests: export TOKEN=$token"
  echo "  curl -H \"authorization: Bearer \$TOKEN\" $http/api/v1/runs"
else
  echo "login failed (is $http taken by another program?)"
fi
say "dashboard: $http/  (log in as admin / runledger-demo); API docs: $http/api/docs"
say "runledger is running (handler: NATS commands -> Postgres log -> RUNLEDGER_EVENTS; projector: log -> read models; executor: runs; gateway: $http). Ctrl-C to stop."
wait "$server"
