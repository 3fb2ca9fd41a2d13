#!/usr/bin/env bash
# Builds the small container image that container jobs run in the tests and the lab, locally and
# without a registry: `podman import` of a root holding Debian's static busybox and its applets
# (sh, wget, cat, ...). Safe to run again: an image that exists and runs is kept.
#
#   VAQUERO_CACHE     where the podman configuration is written (default /var/cache/vaquero)
#   VAQUERO_JOB_IMAGE the image's name (default localhost/vaquero-job:1)
#
# Podman's defaults do not run containers on every host: inside a container (as CI's) crun refuses
# a cgroup v1/v2 hybrid, and the default ulimits exceed the hard limits. When a plain `podman run`
# fails, this writes $VAQUERO_CACHE/podman/containers.conf (runc, ulimits below the hard limits)
# and checks again with CONTAINERS_CONF pointing at it; agents and tests then set CONTAINERS_CONF
# to that file when it exists. The last line printed is the image's name.
set -euo pipefail

VAQUERO_CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
IMAGE="${VAQUERO_JOB_IMAGE:-localhost/vaquero-job:1}"
CONF_DIR="$VAQUERO_CACHE/podman"
CONF="$CONF_DIR/containers.conf"

log() { printf 'install-job-image: %s\n' "$*" >&2; }
die() {
  printf 'install-job-image: error: %s\n' "$*" >&2
  exit 1
}

command -v podman >/dev/null || die "podman is not installed (scripts/install-deps.sh installs it)"
BUSYBOX="$(command -v busybox || true)"
[[ -n "$BUSYBOX" ]] || die "busybox is not installed (Debian's busybox-static)"
file -L "$BUSYBOX" 2>/dev/null | grep -q 'statically linked' || [[ ! -x /usr/bin/file ]] ||
  die "$BUSYBOX is not statically linked: install busybox-static"

if [[ -f "$CONF" ]]; then export CONTAINERS_CONF="$CONF"; fi

# The hard limit of ulimit's -$1, at most 4096.
capped() {
  local hard
  hard="$(ulimit -H"$1")"
  [[ "$hard" == unlimited || "$hard" -gt 4096 ]] && hard=4096
  printf '%s\n' "$hard"
}

runs() { podman run --rm --network none "$IMAGE" /bin/sh -c 'echo vaquero-job-ok' 2>&1 | grep -q vaquero-job-ok; }

if ! podman image exists "$IMAGE"; then
  root="$(mktemp -d)"
  trap 'rm -rf "$root"' EXIT
  mkdir -p "$root/bin" "$root/tmp" "$root/etc"
  cp "$BUSYBOX" "$root/bin/busybox"
  for applet in $("$BUSYBOX" --list); do
    [[ "$applet" == busybox ]] || ln -sf busybox "$root/bin/$applet"
  done
  printf 'root:x:0:0:root:/:/bin/sh\n' >"$root/etc/passwd"
  printf 'root:x:0:\n' >"$root/etc/group"
  chmod 1777 "$root/tmp"
  tar -C "$root" -cf "$root.tar" .
  podman import --change 'CMD ["/bin/sh"]' --change 'ENV PATH=/bin' "$root.tar" "$IMAGE" >/dev/null
  rm -f "$root.tar"
  log "imported $IMAGE from $BUSYBOX"
fi

if ! runs; then
  unset CONTAINERS_CONF
  # Small enough for any host's hard limits (a CI container's may be far below podman's defaults,
  # and its runc may not raise a limit even up to the hard one), ample for a job.
  nofile="$(capped n)"
  nproc="$(capped u)"
  mkdir -p "$CONF_DIR"
  cat >"$CONF" <<EOF
# Written by scripts/install-job-image.sh: podman's defaults could not run a container on this host.
[containers]
default_ulimits = ["nofile=$nofile:$nofile", "nproc=$nproc:$nproc"]

[engine]
runtime = "runc"
EOF
  export CONTAINERS_CONF="$CONF"
  runs || die "podman cannot run $IMAGE, even with $CONF: $(podman run --rm --network none "$IMAGE" /bin/true 2>&1 | tail -1)"
  log "podman runs containers here with $CONF (set CONTAINERS_CONF to it)"
fi
log "$IMAGE runs"
printf '%s\n' "$IMAGE"
