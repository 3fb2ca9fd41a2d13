#!/usr/bin/env bash
# Runs a local Temporal dev server for tests and development.
#
#   scripts/temporal-dev.sh start|stop|status
#
#   TEMPORAL_PORT          frontend port on 127.0.0.1 (default 7233)
#   TEMPORAL_BIN           the CLI (default $VAQUERO_CACHE/bin/temporal, else `temporal` on PATH)
#   VAQUERO_STATE          state directory (default <repo>/.vaquero); the server keeps its
#                          database, log and PID file in $VAQUERO_STATE/temporal-<port>/
#   TEMPORAL_START_TIMEOUT seconds to wait for the server to answer (default 60)
#
# `stop` only stops a server that `start` started (it reads the PID file): a server that was
# already listening on the port is left alone.
set -euo pipefail

REPO_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
TEMPORAL_IP=127.0.0.1
ADDRESS="$TEMPORAL_IP:$TEMPORAL_PORT"
START_TIMEOUT="${TEMPORAL_START_TIMEOUT:-60}"
STATE_DIR="${VAQUERO_STATE:-$REPO_DIR/.vaquero}/temporal-$TEMPORAL_PORT"
PID_FILE="$STATE_DIR/temporal.pid"
LOG_FILE="$STATE_DIR/temporal.log"
DB_FILE="$STATE_DIR/temporal.db"

log() { printf 'temporal-dev: %s\n' "$*"; }
die() {
  printf 'temporal-dev: error: %s\n' "$*" >&2
  exit 1
}

find_cli() {
  local cached="${VAQUERO_CACHE:-/var/cache/vaquero}/bin/temporal"
  if [[ -n "${TEMPORAL_BIN:-}" ]]; then
    printf '%s\n' "$TEMPORAL_BIN"
  elif [[ -x "$cached" ]]; then
    printf '%s\n' "$cached"
  elif command -v temporal >/dev/null; then
    command -v temporal
  else
    die "Temporal CLI not found; run: bash scripts/install-deps.sh"
  fi
}

TEMPORAL="$(find_cli)"

# The default namespace is registered a moment after the frontend starts serving, and workers
# need it, so "healthy" means the namespace can be described.
healthy() {
  timeout 10 "$TEMPORAL" operator namespace describe --namespace default --address "$ADDRESS" \
    >/dev/null 2>&1
}

port_open() {
  (exec 3<>"/dev/tcp/$TEMPORAL_IP/$TEMPORAL_PORT") 2>/dev/null
}

# Prints the PID from the PID file if that process is still our dev server (guards against a
# stale file whose PID was reused by something else).
our_pid() {
  local pid
  [[ -f "$PID_FILE" ]] || return 1
  pid="$(<"$PID_FILE")"
  [[ "$pid" =~ ^[0-9]+$ ]] || return 1
  tr '\0' ' ' 2>/dev/null <"/proc/$pid/cmdline" | grep -q -- "start-dev .*--port $TEMPORAL_PORT" || return 1
  printf '%s\n' "$pid"
}

log_tail() {
  if [[ -s "$LOG_FILE" ]]; then
    printf -- '--- last lines of %s ---\n' "$LOG_FILE" >&2
    tail -n 30 "$LOG_FILE" >&2
  fi
}

start() {
  local pid
  if pid="$(our_pid)"; then
    healthy || die "dev server (pid $pid) is running but $ADDRESS does not answer; see $LOG_FILE"
    log "already running (pid $pid) on $ADDRESS"
    return 0
  fi
  rm -f "$PID_FILE"
  if healthy; then
    log "a Temporal server not started by this script already serves $ADDRESS; using it"
    return 0
  fi
  port_open && die "port $TEMPORAL_PORT is in use by something that is not a healthy Temporal server"

  mkdir -p "$STATE_DIR"
  log "starting $("$TEMPORAL" --version) on $ADDRESS (state in $STATE_DIR)"
  # setsid: a Ctrl-C in the terminal that ran `start` must not take the server down with it.
  # Vaquero's search attributes (schemas/search-attributes.ts) on every namespace, and the tests'
  # namespaces made up front: a namespace created later takes ~10 s to be usable.
  setsid "$TEMPORAL" server start-dev --headless --ip "$TEMPORAL_IP" --port "$TEMPORAL_PORT" \
    --db-filename "$DB_FILE" --log-level warn \
    --namespace vaquero-test --namespace vaquero-record --namespace vaquero-bench --namespace vaquero-h4-poller \
    --search-attribute VaqueroSite=Keyword --search-attribute VaqueroCommit=Keyword \
    --search-attribute VaqueroPhase=Keyword --search-attribute VaqueroHostGroup=Keyword \
    </dev/null >>"$LOG_FILE" 2>&1 &
  pid=$!
  printf '%s\n' "$pid" >"$PID_FILE"

  local started=$SECONDS
  until healthy; do
    if ! kill -0 "$pid" 2>/dev/null; then
      rm -f "$PID_FILE"
      log_tail
      die "dev server exited during start-up"
    fi
    if ((SECONDS - started >= START_TIMEOUT)); then
      kill "$pid" 2>/dev/null || true
      rm -f "$PID_FILE"
      log_tail
      die "dev server did not answer on $ADDRESS within ${START_TIMEOUT}s"
    fi
    sleep 1
  done
  log "ready on $ADDRESS (pid $pid, after $((SECONDS - started))s)"
}

stop() {
  local pid
  if ! pid="$(our_pid)"; then
    rm -f "$PID_FILE"
    log "no dev server started by this script on port $TEMPORAL_PORT; nothing to stop"
    return 0
  fi
  log "stopping dev server (pid $pid)"
  kill -TERM "$pid" 2>/dev/null || true
  local i
  for ((i = 0; i < 100; i++)); do
    kill -0 "$pid" 2>/dev/null || break
    sleep 0.2
  done
  if kill -0 "$pid" 2>/dev/null; then
    log "still running after 20s, sending SIGKILL"
    kill -KILL "$pid" 2>/dev/null || true
  fi
  rm -f "$PID_FILE"
  log "stopped"
}

status() {
  local pid
  if pid="$(our_pid)"; then
    if healthy; then
      log "running (pid $pid) and healthy on $ADDRESS"
      return 0
    fi
    log "running (pid $pid) but not answering on $ADDRESS; see $LOG_FILE"
    return 1
  fi
  if healthy; then
    log "a Temporal server not started by this script serves $ADDRESS"
    return 0
  fi
  log "not running on $ADDRESS"
  return 3
}

case "${1:-}" in
  start) start ;;
  stop) stop ;;
  status) status ;;
  *)
    printf 'usage: %s start|stop|status\n' "$0" >&2
    exit 2
    ;;
esac
