#!/usr/bin/env bash
# Builds the production Temporal server and its SQL schema tool from the Go module proxy, with
# Debian's PostgreSQL beside them, for scripts/temporal-pg.sh (the scale benchmark and one CI test).
# No image registry or release download is reachable here; the module proxy is. Safe to run again:
# a finished build is kept in the cache.
#
#   VAQUERO_CACHE            build output (default /var/cache/vaquero)
#   TEMPORAL_SERVER_VERSION  go.temporal.io/server version (default 1.32.2)
#   TEMPORAL_GO_TOOLCHAIN    Go toolchain the server's go.mod needs (default go1.27.3, fetched by
#                            the go command through the module proxy)
set -euo pipefail

VERSION="${TEMPORAL_SERVER_VERSION:-1.32.2}"
CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
OUT="$CACHE/temporal-server-$VERSION"
export GOTOOLCHAIN="${TEMPORAL_GO_TOOLCHAIN:-go1.27.3}"
# Downloaded modules and the toolchain stay in the cache too, so a second CI run builds from disk.
export GOMODCACHE="${GOMODCACHE:-$CACHE/go/mod}"
export GOCACHE="${GOCACHE:-$CACHE/go/build}"

# apt and the shared cache need root; from an ordinary account, ask sudo once for the whole script.
if [[ $EUID -ne 0 ]]; then
  command -v sudo >/dev/null || { echo 'install-temporal-server: error: run as root' >&2; exit 1; }
  exec sudo -E bash "$0" "$@"
fi

log() { printf 'install-temporal-server: %s\n' "$*"; }
die() {
  printf 'install-temporal-server: error: %s\n' "$*" >&2
  exit 1
}

if ! dpkg-query -W -f='${Status}' postgresql 2>/dev/null | grep -q 'install ok installed'; then
  log "apt-get install postgresql"
  # The package's own cluster is not wanted: temporal-pg.sh makes one per state directory.
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q postgresql >/dev/null
  systemctl disable --now postgresql >/dev/null 2>&1 || true
fi

if [[ -x "$OUT/temporal-server" && -x "$OUT/temporal-sql-tool" && -d "$OUT/schema/postgresql" ]]; then
  log "temporal-server $VERSION: $OUT, keeping it"
  exit 0
fi
command -v go >/dev/null || die "go not found (Debian's golang, or any go >= 1.21 that can fetch $GOTOOLCHAIN)"

log "building go.temporal.io/server v$VERSION with $GOTOOLCHAIN (minutes on 2 cores; cached afterwards)"
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT
started=$SECONDS
GOBIN="$work" go install "go.temporal.io/server/cmd/server@v$VERSION"
GOBIN="$work" go install "go.temporal.io/server/cmd/tools/sql@v$VERSION"
mkdir -p "$OUT.new"
install -m 755 "$work/server" "$OUT.new/temporal-server"
install -m 755 "$work/sql" "$OUT.new/temporal-sql-tool"
module="$(go env GOMODCACHE)/go.temporal.io/server@v$VERSION"
mkdir -p "$OUT.new/schema"
cp -r "$module/schema/postgresql" "$OUT.new/schema/"
chmod -R u+w "$OUT.new"
rm -rf "$OUT"
mv "$OUT.new" "$OUT"
log "installed $OUT (built in $((SECONDS - started)) s)"
