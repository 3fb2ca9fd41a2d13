#!/usr/bin/env bash
# Installs PyPI's sushy-tools (the Redfish BMC emulator the Redfish power tests drive) into a venv
# in the cache, outside the checkout. Safe to run again: a venv that already runs the pinned
# version is kept.
#
#   VAQUERO_CACHE        where downloaded tools live (default /var/cache/vaquero)
#   SUSHY_TOOLS_VERSION  sushy-tools version from PyPI (default 2.2.0)
#   PYTHON               the interpreter the venv is made from (default python3)
#
# Result: $VAQUERO_CACHE/sushy-venv/bin/sushy-emulator, whose path is the last line printed. The
# venv also holds bcrypt, which the emulator needs to check its htpasswd file and the tests use
# to write one.
set -euo pipefail

SUSHY_TOOLS_VERSION="${SUSHY_TOOLS_VERSION:-2.2.0}"
VAQUERO_CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
PYTHON="${PYTHON:-python3}"
VENV="$VAQUERO_CACHE/sushy-venv"
EMULATOR="$VENV/bin/sushy-emulator"
STAMP="$VENV/installed"
WANT="sushy-tools==$SUSHY_TOOLS_VERSION"

log() { printf 'install-sushy: %s\n' "$*" >&2; }
die() {
  printf 'install-sushy: error: %s\n' "$*" >&2
  exit 1
}

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

installed() {
  [[ -f "$STAMP" && "$(<"$STAMP")" == "$WANT" && -x "$EMULATOR" ]] || return 1
  "$VENV/bin/python" -c 'import bcrypt, sushy_tools.emulator.main' 2>/dev/null
}

# Debian's python3 leaves the venv module's ensurepip out unless python3-venv is installed.
make_venv() {
  as_root rm -rf "$VENV"
  if as_root "$PYTHON" -m venv "$VENV" 2>/dev/null; then return 0; fi
  as_root rm -rf "$VENV"
  command -v apt-get >/dev/null || die "$PYTHON -m venv failed and apt-get is not there to install python3-venv"
  log "apt: $PYTHON -m venv failed; installing python3-venv"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends python3-venv
  as_root "$PYTHON" -m venv "$VENV" || die "$PYTHON -m venv $VENV failed even with python3-venv installed"
}

main() {
  command -v "$PYTHON" >/dev/null || die "$PYTHON not found (set PYTHON to a Python 3 interpreter)"
  if installed; then
    log "$WANT already in $VENV, keeping it"
    printf '%s\n' "$EMULATOR"
    return 0
  fi
  as_root mkdir -p "$VAQUERO_CACHE"
  log "venv: creating $VENV with $("$PYTHON" --version 2>&1)"
  make_venv
  log "pip: installing $WANT bcrypt"
  as_root "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$WANT" bcrypt ||
    die "pip could not install $WANT"
  "$VENV/bin/python" -c 'import bcrypt, sushy_tools.emulator.main' ||
    die "$WANT installed but its emulator does not import"
  printf '%s\n' "$WANT" | as_root tee "$STAMP" >/dev/null
  log "done: $EMULATOR"
  printf '%s\n' "$EMULATOR"
}

main "$@"
