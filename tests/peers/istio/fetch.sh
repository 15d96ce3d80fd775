#!/usr/bin/env bash
# Fetches Istio's own sample configurations, as Istio publishes them, from the
# Go module proxy (the istio.io/istio module at a pinned version: about 12 MB,
# into the Go module cache) and prints the directory of Bookinfo's traffic
# management samples (samples/bookinfo/networking). tests/istio_import.rs
# imports them unchanged; nothing of them is copied into this repository.
set -euo pipefail
version=v0.0.0-20260827124520-eed52ebb66ad
command -v go >/dev/null || { echo "fetch.sh: the go command is needed" >&2; exit 1; }
# Outside any module (a go.mod around would change what -json means).
dir=$(cd "${TMPDIR:-/tmp}" && GOFLAGS=-mod=mod go mod download -json "istio.io/istio@$version" |
  python3 -c 'import json, sys; print(json.load(sys.stdin)["Dir"])')
samples="$dir/samples/bookinfo/networking"
[ -f "$samples/bookinfo-gateway.yaml" ] || { echo "fetch.sh: no Bookinfo samples under $dir" >&2; exit 1; }
echo "$samples"
