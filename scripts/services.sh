#!/usr/bin/env bash
# Makes sure Postgres and NATS (with JetStream) answer on their default loopback ports, starting
# them (and on Debian/Ubuntu, installing them) when they do not. Sourced by demo.sh and test.sh.
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }

port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

wait_port() {
  for _ in $(seq 1 60); do port_open "$1" && return 0; sleep 0.5; done
  return 1
}

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

ensure_postgres() {
  port_open 5432 && return 0
  if ! ls /etc/postgresql/*/main >/dev/null 2>&1; then
    say "installing PostgreSQL from the distribution's packages"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
  fi
  say "starting PostgreSQL"
  as_root pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -n1)" main start || true
  wait_port 5432 || { say "PostgreSQL does not answer on 127.0.0.1:5432"; exit 1; }
}

ensure_nats() {
  port_open 4222 && return 0
  if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    say "installing nats-server from the distribution's packages"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq nats-server >/dev/null
  fi
  say "starting nats-server with JetStream"
  as_root mkdir -p /var/lib/nats-server
  as_root start-stop-daemon --start --oknodo --background --exec "$(command -v nats-server || echo /usr/sbin/nats-server)" -- \
    -a 127.0.0.1 -p 4222 -js -sd /var/lib/nats-server -l /var/log/nats-server.log
  wait_port 4222 || { say "NATS does not answer on 127.0.0.1:4222"; exit 1; }
}

# Installs Debian's openssh-server for the SSH tests, which start their own sshd on a loopback port
# (crates/test-support/src/sshd.rs). The system's sshd service is not started.
ensure_sshd() {
  if [ ! -x /usr/sbin/sshd ]; then
    say "installing openssh-server from the distribution's packages"
    local policy=/usr/sbin/policy-rc.d made_policy=""
    if [ ! -e "$policy" ]; then
      printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy" && made_policy=1
    fi
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server >/dev/null
    if [ -n "$made_policy" ]; then as_root rm -f "$policy"; fi
  fi
  as_root mkdir -p /run/sshd
}

# Installs Debian packages without starting their services (a policy-rc.d that refuses every
# start while apt runs): test fixtures start their own servers.
apt_install_quietly() {
  local policy=/usr/sbin/policy-rc.d made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' | as_root tee "$policy" >/dev/null && as_root chmod +x "$policy" && made_policy=1
  fi
  as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
  if [ -n "$made_policy" ]; then as_root rm -f "$policy"; fi
}

# The fault suite (tests/tests/faults.rs) starts a Postgres cluster and a nats-server of its own,
# so that it may crash them: it needs the server binaries (initdb and pg_ctl, nats-server) even
# when the shared services run elsewhere (another host, a container).
ensure_fault_tools() {
  if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1 && ! command -v initdb >/dev/null; then
    say "installing PostgreSQL's server binaries from the distribution's packages"
    apt_install_quietly postgresql
  fi
  if ! command -v nats-server >/dev/null && [ ! -x /usr/sbin/nats-server ]; then
    say "installing nats-server from the distribution's packages"
    apt_install_quietly nats-server
  fi
}

# Debian's chromium and chromedriver, for the dashboard's browser test.
ensure_chromium() {
  if [ ! -x /usr/bin/chromedriver ] || [ ! -x /usr/bin/chromium ]; then
    say "installing chromium and chromium-driver from the distribution's packages"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver >/dev/null
  fi
}

# The openssl command, with which the NATS TLS tests make a throw-away CA and server certificate
# (crates/test-support/src/nats_server.rs).
ensure_openssl() {
  if ! command -v openssl >/dev/null 2>&1; then
    say "installing openssl from the distribution's packages"
    as_root apt-get update -qq && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssl >/dev/null
  fi
}

# From PyPI (pip --user): kubernetes-validate (the Kubernetes API's JSON schemas, bundled, so it
# works offline) for tests/tests/deploy.rs, which brings jsonschema and PyYAML for the Compose
# check too; and schemathesis, which gateway/tests/schemathesis.rs runs against the served
# OpenAPI document.
KUBERNETES_VALIDATE_VERSION=1.37.0
SCHEMATHESIS_VERSION=4.32.5
pip_user_install() {
  local pip=(python3 -m pip install --user --quiet --disable-pip-version-check --root-user-action=ignore)
  # A Python that refuses user installs (PEP 668) takes them with --break-system-packages.
  "${pip[@]}" "$1" 2>/dev/null || "${pip[@]}" --break-system-packages "$1"
}
python_package_is() {
  python3 -c "import importlib.metadata as m, sys; sys.exit(m.version('$1') != '$2')" 2>/dev/null
}
ensure_python_tools() {
  if ! python_package_is kubernetes-validate "$KUBERNETES_VALIDATE_VERSION"; then
    say "installing kubernetes-validate $KUBERNETES_VALIDATE_VERSION from PyPI (pip --user)"
    pip_user_install "kubernetes-validate==$KUBERNETES_VALIDATE_VERSION"
  fi
  if ! python_package_is schemathesis "$SCHEMATHESIS_VERSION"; then
    say "installing schemathesis $SCHEMATHESIS_VERSION from PyPI (pip --user)"
    pip_user_install "schemathesis==$SCHEMATHESIS_VERSION"
  fi
}

ensure_services() {
  ensure_postgres
  ensure_nats
}
