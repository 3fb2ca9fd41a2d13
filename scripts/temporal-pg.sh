#!/usr/bin/env bash
# Runs the production Temporal engine locally: temporal-server (built from the Go module proxy by
# scripts/install-temporal-server.sh) on a PostgreSQL cluster of its own, as docker-compose.yml
# describes, for the scale benchmark and the CI test that runs a rollout on it.
#
#   scripts/temporal-pg.sh start|stop|status
#
#   TEMPORAL_PORT           frontend gRPC port on 127.0.0.1 (default 7433); the other services use
#                           the next ports: history +1, matching +2, worker +3, membership +10..+13,
#                           frontend HTTP +20, PostgreSQL +30
#   TEMPORAL_SERVER_VERSION the built server to use (default 1.32.2)
#   VAQUERO_CACHE           where the build lives (default /var/cache/vaquero)
#   VAQUERO_STATE           state directory (default <repo>/.vaquero); the database cluster, config,
#                           logs and PID files go to $VAQUERO_STATE/temporal-pg-<port>/
#   TEMPORAL_START_TIMEOUT  seconds to wait for the frontend (default 120)
#
# Runs as root: PostgreSQL itself runs as the `postgres` user of Debian's package. `stop` stops only
# what `start` started, and keeps the data (`stop --purge` removes it).
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PORT="${TEMPORAL_PORT:-7433}"
VERSION="${TEMPORAL_SERVER_VERSION:-1.32.2}"
CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
BUILD_DIR="$CACHE/temporal-server-$VERSION"
STATE_DIR="${VAQUERO_STATE:-$REPO_DIR/.vaquero}/temporal-pg-$PORT"
PG_DIR="$STATE_DIR/pg"
PG_PORT=$((PORT + 30))
ADDRESS="127.0.0.1:$PORT"
START_TIMEOUT="${TEMPORAL_START_TIMEOUT:-120}"
PID_FILE="$STATE_DIR/temporal-server.pid"
LOG_FILE="$STATE_DIR/temporal-server.log"

log() { printf 'temporal-pg: %s\n' "$*"; }
die() {
  printf 'temporal-pg: error: %s\n' "$*" >&2
  exit 1
}

pg_bin() {
  local dir
  dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)"
  [[ -n "$dir" ]] || die "PostgreSQL not found; run: bash scripts/install-deps.sh"
  printf '%s/%s\n' "$dir" "$1"
}

as_postgres() { runuser -u postgres -- "$@"; }

cli() {
  local cached="$CACHE/bin/temporal"
  if [[ -x "$cached" ]]; then printf '%s\n' "$cached"; else command -v temporal || die "no Temporal CLI"; fi
}

healthy() {
  timeout 10 "$(cli)" operator namespace describe --namespace default --address "$ADDRESS" >/dev/null 2>&1
}

our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "--config-file $STATE_DIR/" || return 1
  printf '%s\n' "$pid"
}

start_postgres() {
  if [[ ! -f "$PG_DIR/PG_VERSION" ]]; then
    log "initialising a PostgreSQL cluster in $PG_DIR"
    mkdir -p "$PG_DIR"
    chown postgres:postgres "$PG_DIR"
    chmod 700 "$PG_DIR"
    as_postgres "$(pg_bin initdb)" -D "$PG_DIR" -U postgres --auth=trust -E UTF8 >"$STATE_DIR/initdb.log"
  fi
  if ! as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR" status >/dev/null 2>&1; then
    as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR" -w -t 60 -l "$PG_DIR/postgres.log" \
      -o "-p $PG_PORT -k $PG_DIR -c listen_addresses=127.0.0.1 -c max_connections=200 -c fsync=on" start \
      >/dev/null || die "PostgreSQL did not start; see $PG_DIR/postgres.log"
  fi
  as_postgres "$(pg_bin psql)" -h 127.0.0.1 -p "$PG_PORT" -U postgres -qtAc \
    "DO \$\$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'temporal') THEN
       CREATE ROLE temporal LOGIN PASSWORD 'temporal' CREATEDB; END IF; END \$\$;" >/dev/null
}

# The schema tool is idempotent: create-database and setup-schema are skipped when done, and
# update-schema applies only the versions a database does not have yet.
setup_schema() {
  local db="$1" dir="$2" tool="$BUILD_DIR/temporal-sql-tool"
  local args=(--plugin postgres12 --ep 127.0.0.1 -p "$PG_PORT" -u temporal -pw temporal --db "$db")
  if ! as_postgres "$(pg_bin psql)" -h 127.0.0.1 -p "$PG_PORT" -U postgres -lqt | cut -d'|' -f1 | grep -qw "$db"; then
    "$tool" "${args[@]}" create-database >>"$STATE_DIR/schema.log" 2>&1
    "$tool" "${args[@]}" setup-schema -v 0.0 >>"$STATE_DIR/schema.log" 2>&1
  fi
  "$tool" "${args[@]}" update-schema -d "$BUILD_DIR/schema/postgresql/v12/$dir/versioned" \
    >>"$STATE_DIR/schema.log" 2>&1 || die "schema update of $db failed; see $STATE_DIR/schema.log"
}

write_config() {
  sql() {
    cat <<EOF
      sql:
        pluginName: postgres12
        databaseName: $1
        connectAddr: "127.0.0.1:$PG_PORT"
        connectProtocol: tcp
        user: temporal
        password: temporal
        maxConns: $2
        maxIdleConns: $2
        maxConnLifetime: 1h
EOF
  }
  service() {
    cat <<EOF
  $1:
    rpc:
      grpcPort: $2
      membershipPort: $3
      bindOnLocalHost: true
EOF
  }
  cat >"$STATE_DIR/config.yaml" <<EOF
# Written by scripts/temporal-pg.sh: one temporal-server process, all four services, on PostgreSQL.
log:
  stdout: true
  level: warn
persistence:
  defaultStore: default
  visibilityStore: visibility
  numHistoryShards: 4
  datastores:
    default:
$(sql temporal 20)
    visibility:
$(sql temporal_visibility 10)
global:
  membership:
    maxJoinDuration: 30s
    broadcastAddress: 127.0.0.1
services:
$(service frontend "$PORT" $((PORT + 10)))
      httpPort: $((PORT + 20))
$(service history $((PORT + 1)) $((PORT + 11)))
$(service matching $((PORT + 2)) $((PORT + 12)))
$(service worker $((PORT + 3)) $((PORT + 13)))
clusterMetadata:
  enableGlobalNamespace: false
  failoverVersionIncrement: 10
  masterClusterName: active
  currentClusterName: active
  clusterInformation:
    active:
      enabled: true
      initialFailoverVersion: 1
      rpcName: frontend
      rpcAddress: $ADDRESS
dcRedirectionPolicy:
  policy: noop
dynamicConfigClient:
  filepath: $STATE_DIR/dynamicconfig.yaml
  pollInterval: 10s
EOF
  # Search attributes registered by `vaquero server` are visible to the next query at once, and a
  # new namespace reaches every service's cache within a second.
  cat >"$STATE_DIR/dynamicconfig.yaml" <<'EOF'
system.forceSearchAttributesCacheRefreshOnRead:
  - value: true
system.namespaceCacheRefreshInterval:
  - value: 1s
EOF
}

start() {
  [[ $EUID -eq 0 ]] || die "run as root (PostgreSQL runs as the postgres user)"
  [[ -x "$BUILD_DIR/temporal-server" ]] || die "no $BUILD_DIR/temporal-server; run: bash scripts/install-deps.sh"
  mkdir -p "$STATE_DIR"
  chmod 755 "$STATE_DIR"
  as_postgres test -x "$STATE_DIR" ||
    die "the postgres user cannot reach $STATE_DIR: make its parent directories searchable (chmod o+x)"
  if pid="$(our_pid)"; then
    healthy && { log "already running (pid $pid) on $ADDRESS"; return 0; }
    die "temporal-server (pid $pid) runs but $ADDRESS does not answer; see $LOG_FILE"
  fi
  start_postgres
  setup_schema temporal temporal
  setup_schema temporal_visibility visibility
  write_config
  log "starting temporal-server $VERSION on $ADDRESS (PostgreSQL on 127.0.0.1:$PG_PORT, state in $STATE_DIR)"
  setsid "$BUILD_DIR/temporal-server" --config-file "$STATE_DIR/config.yaml" --allow-no-auth start \
    >"$LOG_FILE" 2>&1 </dev/null &
  echo $! >"$PID_FILE"
  local waited=0
  until timeout 5 "$(cli)" operator cluster health --address "$ADDRESS" >/dev/null 2>&1; do
    our_pid >/dev/null || { tail -n 30 "$LOG_FILE" >&2; die "temporal-server exited"; }
    ((waited++ < START_TIMEOUT)) || { tail -n 30 "$LOG_FILE" >&2; die "no answer on $ADDRESS after ${START_TIMEOUT}s"; }
    sleep 1
  done
  # A production server has no namespace of its own; the dev server's `default` is what tests expect.
  if ! healthy; then
    "$(cli)" operator namespace create --namespace default --retention 24h --address "$ADDRESS" >/dev/null
    until healthy; do
      ((waited++ < START_TIMEOUT)) || die "namespace default not ready after ${START_TIMEOUT}s"
      sleep 1
    done
    # The frontend describes it at once; history and matching learn of it at their next cache
    # refresh (1 s above), and a worker polling before that is told the namespace does not exist.
    sleep 3
  fi
  log "ready on $ADDRESS (pid $(<"$PID_FILE"), after ${waited}s)"
}

stop() {
  local pid
  if pid="$(our_pid)"; then
    kill "$pid"
    for _ in $(seq 1 30); do kill -0 "$pid" 2>/dev/null || break; sleep 1; done
    kill -9 "$pid" 2>/dev/null || true
    log "temporal-server stopped"
  fi
  rm -f "$PID_FILE"
  if [[ -f "$PG_DIR/PG_VERSION" ]] && as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR" status >/dev/null 2>&1; then
    as_postgres "$(pg_bin pg_ctl)" -D "$PG_DIR" -w -m fast stop >/dev/null
    log "PostgreSQL stopped"
  fi
  if [[ "${1:-}" == "--purge" ]]; then
    rm -rf "$STATE_DIR"
    log "removed $STATE_DIR"
  fi
}

case "${1:-}" in
  start) start ;;
  stop) stop "${2:-}" ;;
  status)
    if pid="$(our_pid)" && healthy; then log "running (pid $pid) on $ADDRESS"; else log "not running"; exit 3; fi
    ;;
  *) die "usage: scripts/temporal-pg.sh start|stop [--purge]|status" ;;
esac
