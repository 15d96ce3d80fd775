#!/usr/bin/env bash
# Builds the xDS control-plane test peer (Go, go-control-plane) into
# target/xds-server when a .go file, go.mod or go.sum is newer than the binary,
# and prints the binary's path. Go modules come from the Go module proxy into
# the default module cache (~/go/pkg/mod) unless GOMODCACHE says otherwise.
set -euo pipefail
cd "$(dirname "$0")"

bin="$PWD/target/xds-server"

stale=1
if [ -x "$bin" ]; then
  stale=0
  while IFS= read -r -d '' f; do
    if [ "$f" -nt "$bin" ]; then stale=1; break; fi
  done < <(find . -path ./target -prune -o -type f \( -name '*.go' -o -name go.mod -o -name go.sum \) -print0)
fi

if [ "$stale" = 1 ]; then
  command -v go >/dev/null || { echo "build.sh: Go 1.26 or newer (the go command) is needed" >&2; exit 1; }
  mkdir -p target
  go build -trimpath -o "$bin.tmp" . >&2
  mv -f "$bin.tmp" "$bin"
fi
echo "$bin"
