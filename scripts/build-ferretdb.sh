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

self="$here/build-ferretdb.sh"
if [ -x "$out" ] && [ "$out" -nt "$dir/main.go" ] && [ "$out" -nt "$dir/go.sum" ] && [ "$out" -nt "$dir/go.mod" ] && [ "$out" -nt "$self" ]; then
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
export GOTOOLCHAIN=local CGO_ENABLED=0

# One-line build-time fix of FerretDB v1.24.2's SQLite backend (nothing of FerretDB's is kept in this
# repository: the module is copied from the module cache into bin/, patched there by the sed below, and
# built through a `replace` in a generated go.mod). Every point read, update and delete by _id runs
# `... WHERE _ferretdb_sjson->'$._id' = ?`, but the unique _id index FerretDB creates is on
# `_ferretdb_sjson->"_id"`. SQLite uses an expression index only for the identical expression, so each
# of those statements scanned its whole table (EXPLAIN QUERY PLAN: SCAN). The fix builds the _id index
# on the expression the queries use (metadata.IDColumn), as MongoDB's _id index serves every _id
# look-up. Other indexes are unchanged (FerretDB pushes no other filter down to SQLite).
go mod download github.com/FerretDB/FerretDB
moddir="$(go list -m -f '{{.Dir}}' github.com/FerretDB/FerretDB)"
src="$dir/bin/ferretdb-src"
rm -rf "$src" && cp -r "$moddir" "$src" && chmod -R u+w "$src"
registry="$src/internal/backends/sqlite/metadata/registry.go"
needle='columns[i] = fmt.Sprintf("%s->%s", DefaultColumn, strings.Join(fields, "->"))'
if [ "$(grep -cF "$needle" "$registry")" != 1 ]; then
  echo "build-ferretdb: $registry does not have the line the _id index fix expects (FerretDB version changed?)" >&2
  exit 1
fi
sed -i 's|\(columns\[i\] = fmt.Sprintf("%s->%s", DefaultColumn, strings.Join(fields, "->"))\)|\1; if index.Key[0].Field == "_id" \&\& len(index.Key) == 1 { columns[i] = IDColumn } // curbside: _id index on the queried expression|' "$registry"
grep -q 'curbside: _id index' "$registry" || { echo "build-ferretdb: applying the _id index fix failed" >&2; exit 1; }
cp go.mod bin/go.patched.mod && cp go.sum bin/go.patched.sum
echo "replace github.com/FerretDB/FerretDB => ./bin/ferretdb-src" >> bin/go.patched.mod
go build -trimpath -modfile bin/go.patched.mod -o "$out" .
