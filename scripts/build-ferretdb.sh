#!/usr/bin/env bash
# Builds scripts/ferretdb/bin/curbside-ferretdb: FerretDB v1 (MongoDB wire protocol on SQLite),
# the database our tests run against. Needs Go >= 1.24 and the Go module proxy.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/ferretdb"
if ! command -v go >/dev/null 2>&1; then
  for g in /usr/local/go/bin/go /usr/lib/go/bin/go; do [ -x "$g" ] && PATH="$(dirname "$g"):$PATH" && break; done
fi
if ! command -v go >/dev/null 2>&1; then
  echo "build-ferretdb: Go is not installed. Install Go >= 1.24 (https://go.dev/dl or 'apt-get install golang-go' on a recent Debian), or set MONGODB_URI to a running MongoDB." >&2
  exit 1
fi
out="$here/ferretdb/bin/curbside-ferretdb"
if [ -x "$out" ] && [ "$out" -nt main.go ] && [ "$out" -nt go.sum ]; then
  exit 0
fi
echo "build-ferretdb: building $out (first build downloads modules and takes a minute)" >&2
mkdir -p bin
CGO_ENABLED=0 go build -trimpath -o "$out" .
