#!/usr/bin/env bash
# The discovery benchmark (docs/benchmarks.md, "Discovery"):
#   bash benches/discovery.sh
#   ROUNDS=50 BULK=10000 RATE=5000 bash benches/discovery.sh
# Needs Debian's zookeeper (installed if missing) and the tests' kazoo venv
# (made if missing); builds metaproxy (`dist`, or METAPROXY_BIN) and the
# load tools, and writes target/bench/discovery.json.
set -euo pipefail
cd "$(dirname "$0")/.."

if [[ ! -f /usr/share/java/zookeeper.jar ]]; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq zookeeper
fi
venv=tests/peers/zookeeper/.venv
if ! "$venv/bin/python" -c 'import kazoo' 2>/dev/null; then
  python3 -m venv "$venv"
  "$venv/bin/pip" install -q --disable-pip-version-check -r tests/peers/zookeeper/requirements.txt
fi
if [[ -z "${METAPROXY_BIN:-}" ]]; then
  cargo build --profile dist --locked -p metaproxy
  export METAPROXY_BIN="${CARGO_TARGET_DIR:-$PWD/target}/dist/metaproxy"
fi
cargo build --release --locked -p metaproxy-loadgen
export BIN="${CARGO_TARGET_DIR:-$PWD/target}/release"
"$venv/bin/python" benches/discovery/discovery.py
