#!/usr/bin/env bash
# The whole test suite, as CI runs it: a Temporal dev server (started here unless one already
# answers on TEMPORAL_PORT, and then stopped by PID), the workflow bundle check, then
# `npm run check` (typecheck, lint, format, tests). Needs `npm ci` and scripts/install-deps.sh first.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."

export TEMPORAL_PORT="${TEMPORAL_PORT:-7233}"
export TEMPORAL_ADDRESS="127.0.0.1:$TEMPORAL_PORT"

step() { printf '\n==> %s\n' "$*"; }

step "start Temporal dev server on $TEMPORAL_ADDRESS"
trap 'bash scripts/temporal-dev.sh stop' EXIT
bash scripts/temporal-dev.sh start

step "bundle workflows"
npm run bundle:workflows

step "npm run check"
npm run check
