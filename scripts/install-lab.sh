#!/usr/bin/env bash
# Builds the virtual lab's guest: a Debian kernel (downloaded as a package and unpacked, never
# installed) and a small busybox initramfs that brings up the NIC, gets a DHCP lease and calls the
# checkpoint URL given on its kernel command line (`vaquero.checkpoint=<url>[,<url>…]`: each agent of
# its subnet, tried in turn, so a dead agent does not strand it), then serves
# /status.json and /cmdline on port 80 for validation jobs (`vaquero.marker=<token>` is echoed
# back), and /metrics for the lab's Prometheus: the gauge vaquero_lab_guest_ok, 1 unless the command
# line says `vaquero.ok=<n>`, for metric gates. Safe to run again: it does nothing when the kernel and an initramfs built by this version
# of the script are present.
#
#   VAQUERO_CACHE       cache root (default /var/cache/vaquero); output goes to $VAQUERO_CACHE/lab
#   LAB_KERNEL_PACKAGE  Debian package to use (default: the newest linux-image-6.1.0-<n>-amd64)
set -euo pipefail

VAQUERO_CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
LAB_DIR="$VAQUERO_CACHE/lab"
# Bump when the initramfs layout or /init changes, so an old image is rebuilt.
INITRAMFS_VERSION=4
# The kernel package is unpacked, not installed (docs/lab.md, "Machines"), so depmod never ran and
# there is no modules.dep: the order below is the dependency order.
MODULES=(failover net_failover virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  virtio_net e1000 button evdev)

log() { printf 'install-lab: %s\n' "$*"; }
die() {
  printf 'install-lab: error: %s\n' "$*" >&2
  exit 1
}

WORK_DIR="$(mktemp -d)"
trap 'rm -rf "$WORK_DIR"' EXIT

newest_kernel_package() {
  apt-cache search --names-only '^linux-image-6\.1\.0-[0-9]+-amd64$' | awk '{ print $1 }' | sort -V | tail -1
}

fetch_kernel() {
  local pkg="$1"
  log "kernel: downloading $pkg"
  # apt-get download drops privileges to _apt, which must be able to write the directory.
  chmod 777 "$WORK_DIR"
  (cd "$WORK_DIR" && apt-get download "$pkg" >/dev/null) || die "apt-get download $pkg failed (try apt-get update)"
  dpkg-deb -x "$WORK_DIR"/"$pkg"_*.deb "$WORK_DIR/kpkg"
  local vmlinuz
  vmlinuz="$(ls "$WORK_DIR"/kpkg/boot/vmlinuz-*)" || die "$pkg has no /boot/vmlinuz-*"
  rm -rf "$LAB_DIR/modules.new"
  mkdir -p "$LAB_DIR/modules.new"
  local mod path
  for mod in "${MODULES[@]}"; do
    path="$(find "$WORK_DIR"/kpkg/lib/modules -name "$mod.ko*" | head -1)"
    [[ -n "$path" ]] || die "$pkg has no module $mod"
    case "$path" in
      *.xz) xz -dc "$path" >"$LAB_DIR/modules.new/$mod.ko" ;;
      *.zst) zstd -qdc "$path" >"$LAB_DIR/modules.new/$mod.ko" ;;
      *) cp "$path" "$LAB_DIR/modules.new/$mod.ko" ;;
    esac
  done
  rm -rf "$LAB_DIR/modules"
  mv "$LAB_DIR/modules.new" "$LAB_DIR/modules"
  install -m 644 "$vmlinuz" "$LAB_DIR/vmlinuz.new"
  mv -f "$LAB_DIR/vmlinuz.new" "$LAB_DIR/vmlinuz"
  printf '%s\n' "$pkg" >"$LAB_DIR/kernel.installed"
  rm -f "$LAB_DIR/initramfs.installed"
}

write_init() {
  local root="$1"
  cat >"$root/init" <<'INIT'
#!/bin/busybox sh
/bin/busybox --install -s /bin
export PATH=/bin
mount -t proc proc /proc
mount -t sysfs sysfs /sys
mount -t devtmpfs devtmpfs /dev
for m in $(cat /etc/modules); do insmod "/lib/modules/$m.ko" 2>/dev/null; done
# acpid turns the ACPI power button (BMC "soft" off, QMP system_powerdown) into a clean power-off.
mkdir -p /etc/acpi/PWRF
printf '#!/bin/sh\npoweroff -f\n' >/etc/acpi/PWRF/00000080
chmod +x /etc/acpi/PWRF/00000080
acpid
checkpoint=""
marker=""
ok=1
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vaquero.checkpoint=*) checkpoint="${arg#vaquero.checkpoint=}" ;;
    vaquero.marker=*) marker="${arg#vaquero.marker=}" ;;
    vaquero.ok=*) ok="${arg#vaquero.ok=}" ;;
  esac
done
ifname=""
for i in $(seq 1 100); do
  for dev in /sys/class/net/*; do
    name="${dev##*/}"
    [ "$name" = lo ] && continue
    ip link set "$name" up 2>/dev/null
    if [ "$(cat "$dev/carrier" 2>/dev/null)" = 1 ]; then ifname="$name"; break 2; fi
  done
  sleep 0.1
done
echo "vaquero-lab: interface ${ifname:-none}"
called=false
if [ -n "$ifname" ] && udhcpc -i "$ifname" -n -q -t 10 -T 1 -s /etc/udhcpc.script; then
  if [ -n "$checkpoint" ]; then
    # One URL per agent of the subnet (comma-separated), the one that served the script first: a
    # dead agent refuses the connection at once, and the next one is asked.
    for i in 1 2 3 4 5; do
      for url in $(echo "$checkpoint" | tr ',' ' '); do
        if timeout 5 wget -q -O /dev/null "$url"; then called=true; echo "vaquero-lab: checkpoint $url ok"; break 2; fi
        echo "vaquero-lab: checkpoint $url failed"
      done
      sleep 1
    done
  else
    echo "vaquero-lab: no vaquero.checkpoint= on the kernel command line"
  fi
fi
# What validation jobs look at: port 80 answers with what this boot was given.
mkdir -p /www
cp /proc/cmdline /www/cmdline
printf '{"booted":true,"checkpoint":%s,"marker":"%s"}\n' "$called" "$marker" >/www/status.json
# A metric for the lab's Prometheus (metric gates): what vaquero.ok= said, 1 by default.
printf '# TYPE vaquero_lab_guest_ok gauge\nvaquero_lab_guest_ok{marker="%s"} %s\n' "$marker" "$ok" >/www/metrics
httpd -p 80 -h /www
echo "vaquero-lab: booted"
while true; do sleep 3600; done
INIT
  chmod 755 "$root/init"
  cat >"$root/etc/udhcpc.script" <<'SCRIPT'
#!/bin/sh
case "$1" in
  bound|renew)
    ip addr flush dev "$interface"
    ip addr add "$ip/${mask:-24}" dev "$interface"
    [ -n "$router" ] && ip route add default via "${router%% *}" dev "$interface"
    echo "vaquero-lab: lease $ip on $interface"
    ;;
esac
exit 0
SCRIPT
  chmod 755 "$root/etc/udhcpc.script"
}

build_initramfs() {
  local root="$WORK_DIR/root"
  mkdir -p "$root"/{bin,dev,proc,sys,etc,tmp,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  cp "$LAB_DIR"/modules/*.ko "$root/lib/modules/"
  printf '%s\n' "${MODULES[@]}" >"$root/etc/modules"
  write_init "$root"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$LAB_DIR/initramfs.new"
  mv -f "$LAB_DIR/initramfs.new" "$LAB_DIR/initramfs"
  printf '%s\n' "$INITRAMFS_VERSION" >"$LAB_DIR/initramfs.installed"
}

# The TFTP root for the lab's agent: Debian's /usr/lib/ipxe/ipxe.efi is a symlink to /boot/ipxe.efi,
# which a TFTP server that refuses paths escaping its root (ours) will not serve; so copies.
copy_ipxe() {
  mkdir -p "$LAB_DIR/tftp"
  local f
  for f in undionly.kpxe ipxe.efi snponly.efi; do
    [[ -e "/usr/lib/ipxe/$f" ]] || die "/usr/lib/ipxe/$f missing (apt-get install ipxe)"
    cmp -s "/usr/lib/ipxe/$f" "$LAB_DIR/tftp/$f" || cp -L "/usr/lib/ipxe/$f" "$LAB_DIR/tftp/$f"
  done
}

main() {
  command -v apt-get >/dev/null || die "this script expects Debian (apt-get not found)"
  [[ -x /bin/busybox ]] || die "/bin/busybox missing (apt-get install busybox-static)"
  mkdir -p "$LAB_DIR"
  local pkg="${LAB_KERNEL_PACKAGE:-}"
  if [[ -z "$pkg" && -f "$LAB_DIR/kernel.installed" && -f "$LAB_DIR/vmlinuz" ]]; then
    pkg="$(<"$LAB_DIR/kernel.installed")"
    log "kernel: $pkg already unpacked, keeping it"
  else
    [[ -n "$pkg" ]] || pkg="$(newest_kernel_package)"
    [[ -n "$pkg" ]] || die "apt-cache knows no linux-image-6.1.0-<n>-amd64 (run apt-get update)"
    if [[ "$(cat "$LAB_DIR/kernel.installed" 2>/dev/null)" == "$pkg" && -f "$LAB_DIR/vmlinuz" ]]; then
      log "kernel: $pkg already unpacked, keeping it"
    else
      fetch_kernel "$pkg"
    fi
  fi
  if [[ "$(cat "$LAB_DIR/initramfs.installed" 2>/dev/null)" == "$INITRAMFS_VERSION" && -f "$LAB_DIR/initramfs" ]]; then
    log "initramfs: up to date"
  else
    log "initramfs: building"
    build_initramfs
  fi
  copy_ipxe
  log "kernel    $LAB_DIR/vmlinuz ($pkg)"
  log "initramfs $LAB_DIR/initramfs ($(du -k "$LAB_DIR/initramfs" | cut -f1) KiB)"
  log "tftp root $LAB_DIR/tftp (undionly.kpxe, ipxe.efi, snponly.efi)"
}

main "$@"
