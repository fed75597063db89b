#!/usr/bin/env bash
# Builds scripts/ferretdb/bin/curbside-ferretdb: FerretDB v1 (MongoDB wire protocol on SQLite),
# the database our tests run against. Needs a Go toolchain and the Go module proxy. If the Go on
# PATH is older than go.mod wants (Debian's golang-go is 1.19), it fetches the official toolchain
# as a module (golang.org/toolchain) through the proxy and builds with that.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
dir="$here/ferretdb"
out="$dir/bin/curbside-ferretdb"
want_minor=24
toolchain_version="go1.24.2"

if [ -x "$out" ] && [ "$out" -nt "$dir/main.go" ] && [ "$out" -nt "$dir/go.sum" ] && [ "$out" -nt "$dir/go.mod" ]; then
  exit 0
fi

[ -x /usr/local/go/bin/go ] && PATH="/usr/local/go/bin:$PATH"
[ -x "$dir/toolchain/bin/go" ] && PATH="$dir/toolchain/bin:$PATH" && export GOROOT="$dir/toolchain"
if ! command -v go >/dev/null 2>&1; then
  echo "build-ferretdb: Go is not installed. Install Go (>= 1.$want_minor, or Debian's golang-go plus access to the Go module proxy), or set MONGODB_URI to a running MongoDB." >&2
  exit 1
fi

minor=$(go env GOVERSION | sed -E 's/^go1\.([0-9]+).*/\1/')
if [ "${minor:-0}" -lt "$want_minor" ]; then
  case "$(uname -m)" in x86_64) arch=amd64 ;; aarch64 | arm64) arch=arm64 ;; *) arch="$(uname -m)" ;; esac
  echo "build-ferretdb: $(go env GOVERSION) is too old; fetching $toolchain_version through the Go module proxy" >&2
  tmp="$(mktemp -d)"
  (cd "$tmp" && go mod init tmp >/dev/null 2>&1 && go mod download -json "golang.org/toolchain@v0.0.1-$toolchain_version.linux-$arch") > "$tmp/dl.json"
  src="$(sed -n -E 's/^[[:space:]]*"Dir": "(.*)",?$/\1/p' "$tmp/dl.json")"
  rm -rf "$dir/toolchain" && cp -r "$src" "$dir/toolchain" && chmod -R u+w "$dir/toolchain"
  chmod +x "$dir/toolchain/bin/"* "$dir/toolchain/pkg/tool/"*/*
  rm -rf "$tmp"
  export GOROOT="$dir/toolchain" PATH="$dir/toolchain/bin:$PATH"
fi

echo "build-ferretdb: building $out with $(go env GOVERSION) (the first build downloads modules and takes a minute or two)" >&2
mkdir -p "$dir/bin"
cd "$dir"
GOTOOLCHAIN=local CGO_ENABLED=0 go build -trimpath -o "$out" .
