#!/usr/bin/env bash
# Builds the virtual lab's guest: a Debian kernel (downloaded as a package and unpacked, never
# installed) and a small busybox initramfs that brings up the NIC, gets a DHCP lease and calls the
# checkpoint URL given on its kernel command line (`vaquero.checkpoint=<url>[,<url>…]`: each agent of
# its subnet, tried in turn, so a dead agent does not strand it), then serves
# /status.json and /cmdline on port 80 for validation jobs (`vaquero.marker=<token>` is echoed
# back), and /metrics for the lab's Prometheus: the gauge vaquero_lab_guest_ok, 1 unless the command
# line says `vaquero.ok=<n>`, for metric gates. With `vaquero.image=` on its command line the same
# initramfs is the deploy ramdisk: it writes that image to a disk and checks its checksum before the
# checkpoint (docs/images.md). Also builds the lab OS disk images (versions 1 and 2) that a deploy
# writes and a machine boots from its disk, BIOS or UEFI. Safe to run again: it does nothing when
# the kernel, an initramfs built by this version of the script and images of both are present.
#
#   VAQUERO_CACHE       cache root (default /var/cache/vaquero); output goes to $VAQUERO_CACHE/lab
#   LAB_KERNEL_PACKAGE  Debian package to use (default: the newest linux-image-6.1.0-<n>-amd64)
set -euo pipefail

VAQUERO_CACHE="${VAQUERO_CACHE:-/var/cache/vaquero}"
LAB_DIR="$VAQUERO_CACHE/lab"
# Bump when the initramfs layout or /init changes, so an old image is rebuilt.
INITRAMFS_VERSION=6
# Bump when the lab OS disk images change (they embed the kernel and the initramfs).
LAB_OS_VERSION=2
# The kernel package is unpacked, not installed (docs/lab.md, "Machines"), so depmod never ran and
# there is no modules.dep: the order below is the dependency order.
MODULES=(failover net_failover virtio_ring virtio virtio_pci_modern_dev virtio_pci_legacy_dev virtio_pci
  virtio_net virtio_blk e1000 button evdev)

log() { printf 'install-lab: %s\n' "$*"; }
die() {
  printf 'install-lab: error: %s\n' "$*" >&2
  exit 1
}

WORK_DIR="$(mktemp -d)"
trap 'rm -rf "$WORK_DIR"' EXIT

# Whether every module of MODULES was unpacked (a list that grew since asks for the package again).
modules_complete() {
  local mod
  for mod in "${MODULES[@]}"; do [[ -f "$LAB_DIR/modules/$mod.ko" ]] || return 1; done
}

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
image=""
os_version=""
for arg in $(cat /proc/cmdline); do
  case "$arg" in
    vaquero.checkpoint=*) checkpoint="${arg#vaquero.checkpoint=}" ;;
    vaquero.marker=*) marker="${arg#vaquero.marker=}" ;;
    vaquero.ok=*) ok="${arg#vaquero.ok=}" ;;
    vaquero.image=*) image="${arg#vaquero.image=}" ;;
    vaquero.image.format=*) image_format="${arg#vaquero.image.format=}" ;;
    vaquero.image.checksum=*) image_checksum="${arg#vaquero.image.checksum=}" ;;
    vaquero.image.disk=*) image_disk="${arg#vaquero.image.disk=}" ;;
    vaquero.image.report=*) image_report="${arg#vaquero.image.report=}" ;;
    vaquero.os.version=*) os_version="${arg#vaquero.os.version=}" ;;
    vaquero.os.size=*) os_size="${arg#vaquero.os.size=}" ;;
    vaquero.os.loader=*) os_loader="${arg#vaquero.os.loader=}" ;;
    vaquero.image.bench=*) image_bench="${arg#vaquero.image.bench=}" ;;
  esac
done
. /etc/deploy.sh
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
    # The deploy ramdisk: the image first; no checkpoint unless it is on the disk and verified.
    if [ -n "$image" ] && ! deploy_image; then checkpoint=""; deploy_failed=true; fi
    # One URL per agent of the subnet (comma-separated), the one that served the script first: a
    # dead agent refuses the connection at once, and the next one is asked.
    for i in 1 2 3 4 5; do
      [ -n "$checkpoint" ] || break
      for url in $(echo "$checkpoint" | tr ',' ' '); do
        if timeout 5 wget -q -O /dev/null "$url"; then called=true; echo "vaquero-lab: checkpoint $url ok"; break 2; fi
        echo "vaquero-lab: checkpoint $url failed"
      done
      sleep 1
    done
  elif [ -z "$os_version" ]; then
    echo "vaquero-lab: no vaquero.checkpoint= on the kernel command line"
  fi
fi
disk_json=""
if [ -n "$os_version" ]; then
  disk_json="$(lab_os_booted)"
fi
# A verified image: the agent disarmed the host at the checkpoint, so the next boot is the disk's.
if [ -n "$image" ] && [ "$called" = true ] && [ "${deploy_failed:-false}" = false ]; then
  echo "vaquero-lab: image written and verified; rebooting from the disk"
  sleep 2
  reboot -f
fi
# What validation jobs look at: port 80 answers with what this boot was given.
mkdir -p /www
cp /proc/cmdline /www/cmdline
printf '{"booted":true,"checkpoint":%s,"marker":"%s"%s}\n' "$called" "$marker" "$disk_json" >/www/status.json
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
  write_deploy "$root"
}

# The deploy ramdisk's part of /init (sourced by it) and the lab OS's report of its own disk.
write_deploy() {
  cat >"$1/etc/deploy.sh" <<'DEPLOY'
MiB=1048576
# POSTs a report (query string) to the first agent of the subnet that answers (agent/http/boot-routes.ts).
report() {
  for url in $(echo "$image_report" | tr ',' ' '); do
    if timeout 10 wget -q -O /tmp/report.out --post-data "" "$url?$1"; then return 0; fi
    # 409: the agent read a mismatch; its answer is the message.
    grep -q mismatch /tmp/report.out 2>/dev/null && return 0
  done
  return 1
}
# The disk a hint names: a kernel name, a by-path/by-id link (no udev here: matched in /sys), a serial.
resolve_disk() {
  case "$1" in
    /dev/disk/by-path/pci-*)
      pci="${1#/dev/disk/by-path/pci-}"
      for b in /sys/block/*; do
        case "$(readlink -f "$b/device" 2>/dev/null)" in *"/$pci/"*) echo "/dev/${b##*/}"; return ;; esac
      done ;;
    serial:*)
      for b in /sys/block/*; do
        [ "$(cat "$b/serial" 2>/dev/null)" = "${1#serial:}" ] && { echo "/dev/${b##*/}"; return; }
      done ;;
    *) echo "$1" ;;
  esac
}
# Streams the image onto the disk, holding its first MiB (partition table, boot loader) back: it is
# zeroed first and written only once the whole image read back from the disk has the checksum. A
# mismatch or a broken download leaves a disk that boots nothing (docs/images.md).
deploy_image() {
  algo="${image_checksum%%:*}"
  want="${image_checksum#*:}"
  dev="$(resolve_disk "$image_disk")"
  i=0
  while [ ! -b "$dev" ] && [ $i -lt 50 ]; do sleep 0.1; i=$((i + 1)); dev="$(resolve_disk "$image_disk")"; done
  if [ ! -b "$dev" ]; then
    echo "vaquero-deploy: no disk $image_disk"
    report "error=no%20disk%20$image_disk"
    return 1
  fi
  case "$image_format" in
    raw+gzip) dec="gunzip -c" ;;
    raw+zstd) dec="zstd -qdc" ;;
    *) dec="cat" ;;
  esac
  name="${dev##*/}"
  echo "vaquero-deploy: writing $image ($image_format) to $dev"
  dd if=/dev/zero of="$dev" bs=$MiB count=1 conv=fsync 2>/dev/null
  # Progress: the disk's own count of sectors written, every 2 s.
  ( while sleep 2; do
      set -- $(cat "/sys/block/$name/stat")
      report "written=$(($7 * 512))" >/dev/null
    done ) &
  progress=$!
  rm -f /tmp/ok.* /tmp/count /tmp/rest
  t0=$(uptime_s)
  # busybox dd does not say how many bytes it copied: wc counts them off a fifo.
  mkfifo /tmp/count
  wc -c </tmp/count >/tmp/rest &
  counter=$!
  ( wget -q -O - "$image" && touch /tmp/ok.get ) | ( $dec && touch /tmp/ok.dec ) | {
    dd of=/tmp/head bs=$MiB count=1 iflag=fullblock 2>/dev/null
    tee /tmp/count | dd of="$dev" bs=$MiB seek=1 iflag=fullblock conv=fsync 2>/tmp/dd.err && touch /tmp/ok.dd
  }
  wait $counter
  t1=$(uptime_s)
  kill $progress 2>/dev/null
  rest=$(cat /tmp/rest)
  written=$(($(stat -c %s /tmp/head) + ${rest:-0}))
  if [ ! -f /tmp/ok.get ] || [ ! -f /tmp/ok.dec ] || [ ! -f /tmp/ok.dd ]; then
    echo "vaquero-deploy: write failed after $written bytes: $(cat /tmp/dd.err | tail -1)"
    report "written=$written&error=download%2C%20decompression%20or%20write%20failed"
    return 1
  fi
  sync
  echo 3 >/proc/sys/vm/drop_caches
  got="$( { cat /tmp/head; dd if="$dev" bs=$MiB skip=1 count=${rest:-0} iflag=count_bytes 2>/dev/null; } | ${algo}sum | cut -d' ' -f1)"
  echo "vaquero-deploy: $written bytes written, read back $algo:$got"
  report "written=$written&got=$algo:$got"
  if [ "$got" != "$want" ]; then
    echo "vaquero-deploy: checksum mismatch: expected $image_checksum, got $algo:$got; the disk's first MiB stays zeroed"
    return 1
  fi
  dd if=/tmp/head of="$dev" bs=$MiB conv=fsync 2>/dev/null
  sync
  echo "vaquero-deploy: image verified and complete on $dev"
  echo "vaquero-deploy: streamed $written bytes to the disk in $(rate "$t0" "$t1" "$written")"
  [ "${image_bench:-0}" = 1 ] && bench_raw_write "$dev" "$written"
  return 0
}
uptime_s() { cut -d' ' -f1 /proc/uptime; }
# "<seconds> s (<MiB/s> MiB/s)" between two uptimes for a byte count.
rate() { awk -v a="$1" -v b="$2" -v n="$3" 'BEGIN { s = b - a; if (s <= 0) s = 0.01; printf "%.2f s (%.1f MiB/s)", s, n / s / 1048576 }'; }
# vaquero.image.bench=1 (scripts/bench/lab-image.ts): the same image written again by a plain dd
# from RAM in this guest, to the same disk, for the raw write speed the stream is compared with.
bench_raw_write() {
  wget -q -O - "$image" | $dec >/tmp/raw.img
  sync
  echo 3 >/proc/sys/vm/drop_caches
  b0=$(uptime_s)
  dd if=/tmp/raw.img of="$1" bs=$MiB conv=fsync 2>/dev/null
  b1=$(uptime_s)
  rm -f /tmp/raw.img
  echo "vaquero-deploy: bench: raw dd of the same $2 bytes from RAM in $(rate "$b0" "$b1" "$2")"
}
# The lab OS booted from its disk: its version, and the checksum of the image on the disk.
lab_os_booted() {
  sum="$(head -c "${os_size:-0}" /dev/vda | sha256sum | cut -d' ' -f1)"
  # The firmware that ran the boot loader: the kernel's EFI stub leaves /sys/firmware/efi.
  firmware=bios
  [ -d /sys/firmware/efi ] && firmware=uefi
  echo "vaquero-lab: lab OS version $os_version booted from disk /dev/vda (sha256:$sum) by ${os_loader:-?} ($firmware)" >/dev/console
  printf ',"os_version":%s,"from":"disk","disk":"sha256:%s","firmware":"%s","loader":"%s"' \
    "$os_version" "$sum" "$firmware" "${os_loader:-}"
}
DEPLOY
}

build_initramfs() {
  local root="$WORK_DIR/root"
  mkdir -p "$root"/{bin,dev,proc,sys,etc,tmp,lib/modules}
  cp /bin/busybox "$root/bin/busybox"
  # zstd for raw+zstd images, with the libraries it links (gzip is busybox's).
  local lib
  cp /usr/bin/zstd "$root/bin/zstd"
  for lib in $(ldd /usr/bin/zstd | grep -o '/[^ ]*'); do
    mkdir -p "$root$(dirname "$lib")"
    cp -L "$lib" "$root$lib"
  done
  cp "$LAB_DIR"/modules/*.ko "$root/lib/modules/"
  printf '%s\n' "${MODULES[@]}" >"$root/etc/modules"
  write_init "$root"
  (cd "$root" && find . | cpio -o -H newc --quiet | gzip -9) >"$LAB_DIR/initramfs.new"
  mv -f "$LAB_DIR/initramfs.new" "$LAB_DIR/initramfs"
  printf '%s\n' "$INITRAMFS_VERSION" >"$LAB_DIR/initramfs.installed"
}

# The lab OS a deploy writes to a machine's disk, in versions 1 and 2: an MBR disk of LAB_OS_MIB MiB,
# one FAT partition at 1 MiB holding the lab kernel and initramfs and two boot loaders, so one image
# boots on either firmware: syslinux (BIOS: syslinux's mbr.bin, then its ldlinux.sys) and Debian's
# systemd-boot at the removable-media path EFI/BOOT/BOOTX64.EFI (UEFI: OVMF, like any UEFI firmware,
# runs that file from a FAT partition of a disk with no boot entry of its own). Its command line says
# its version, size and loader, so the booted OS reports them and the checksum of the image on its
# disk. Built without mounting anything (mkfs.vfat, mtools, syslinux on the image file, sfdisk).
LAB_OS_MIB=24
SYSTEMD_BOOT_EFI=/usr/lib/systemd/boot/efi/systemd-bootx64.efi
build_lab_os() {
  local v="$1" out="$LAB_DIR/images/lab-os-$v.img"
  local part="$WORK_DIR/part.img" size=$((LAB_OS_MIB * 1048576))
  local cmdline="console=ttyS0,115200n8 quiet panic=10 vaquero.os.version=$v vaquero.os.size=$size"
  rm -f "$part"
  mkfs.vfat -n LABOS -C "$part" $(((LAB_OS_MIB - 1) * 1024)) >/dev/null
  cat >"$WORK_DIR/syslinux.cfg" <<CFG
SERIAL 0 115200
DEFAULT lab
PROMPT 0
TIMEOUT 0
LABEL lab
  KERNEL /vmlinuz
  INITRD /initramfs
  APPEND $cmdline vaquero.os.loader=syslinux
CFG
  printf 'default lab.conf\ntimeout 0\n' >"$WORK_DIR/loader.conf"
  cat >"$WORK_DIR/lab.conf" <<ENTRY
title Vaquero lab OS $v
linux /vmlinuz
initrd /initramfs
options $cmdline vaquero.os.loader=systemd-boot
ENTRY
  export MTOOLS_SKIP_CHECK=1
  mcopy -i "$part" "$LAB_DIR/vmlinuz" "$LAB_DIR/initramfs" "$WORK_DIR/syslinux.cfg" ::/
  mmd -i "$part" ::/EFI ::/EFI/BOOT ::/loader ::/loader/entries
  mcopy -i "$part" "$SYSTEMD_BOOT_EFI" ::/EFI/BOOT/BOOTX64.EFI
  mcopy -i "$part" "$WORK_DIR/loader.conf" ::/loader/loader.conf
  mcopy -i "$part" "$WORK_DIR/lab.conf" ::/loader/entries/lab.conf
  syslinux --install "$part"
  rm -f "$out.new"
  truncate -s "$size" "$out.new"
  dd if="$part" of="$out.new" bs=1M seek=1 conv=notrunc status=none
  printf 'label: dos\nstart=2048, type=e, bootable\n' | sfdisk -q --wipe never "$out.new"
  dd if=/usr/lib/syslinux/mbr/mbr.bin of="$out.new" bs=440 count=1 conv=notrunc status=none
  mv -f "$out.new" "$out"
  zstd -q -f "$out" -o "$out.zst"
  sha256sum "$out" | cut -d' ' -f1 >"$out.sha256"
}

# The images embed the kernel and the initramfs: a new one of either is a new image.
lab_os_stamp() {
  printf '%s %s %s\n' "$LAB_OS_VERSION" "$(cksum <"$LAB_DIR/vmlinuz")" "$(cksum <"$LAB_DIR/initramfs")"
}

build_lab_os_images() {
  mkdir -p "$LAB_DIR/images"
  local v
  for v in 1 2; do build_lab_os "$v"; done
  lab_os_stamp >"$LAB_DIR/images/installed"
}

# The TFTP root for the lab's agent: Debian's /usr/lib/ipxe/ipxe.efi is a symlink to /boot/ipxe.efi,
# which a TFTP server that refuses paths escaping its root (ours) will not serve; so copies. The
# agent hands UEFI PXE clients `ipxe.efi`, and the lab's is Debian's snponly.efi: the full ipxe.efi
# of Debian 12 (a 2019 snapshot), which takes the NIC over from the firmware, never returns to OVMF
# when a script exits (a deployed UEFI machine given the local-disk script hung there), while
# snponly.efi borrows the firmware's own network interface (SNP) and returns, so OVMF goes on to the
# disk. ipxe.efi.full keeps the other.
copy_ipxe() {
  mkdir -p "$LAB_DIR/tftp"
  local f
  for f in undionly.kpxe ipxe.efi snponly.efi; do
    [[ -e "/usr/lib/ipxe/$f" ]] || die "/usr/lib/ipxe/$f missing (apt-get install ipxe)"
  done
  local -A from=([undionly.kpxe]=undionly.kpxe [ipxe.efi]=snponly.efi [snponly.efi]=snponly.efi
    [ipxe.efi.full]=ipxe.efi)
  for f in "${!from[@]}"; do
    cmp -s "/usr/lib/ipxe/${from[$f]}" "$LAB_DIR/tftp/$f" || cp -L "/usr/lib/ipxe/${from[$f]}" "$LAB_DIR/tftp/$f"
  done
}

main() {
  command -v apt-get >/dev/null || die "this script expects Debian (apt-get not found)"
  [[ -x /bin/busybox ]] || die "/bin/busybox missing (apt-get install busybox-static)"
  mkdir -p "$LAB_DIR"
  local pkg="${LAB_KERNEL_PACKAGE:-}"
  if [[ -z "$pkg" && -f "$LAB_DIR/kernel.installed" && -f "$LAB_DIR/vmlinuz" ]] && ! modules_complete; then
    pkg="$(<"$LAB_DIR/kernel.installed")"
    log "kernel: $pkg lacks modules this version needs, unpacking it again"
    fetch_kernel "$pkg"
  elif [[ -z "$pkg" && -f "$LAB_DIR/kernel.installed" && -f "$LAB_DIR/vmlinuz" ]]; then
    pkg="$(<"$LAB_DIR/kernel.installed")"
    log "kernel: $pkg already unpacked, keeping it"
  else
    [[ -n "$pkg" ]] || pkg="$(newest_kernel_package)"
    [[ -n "$pkg" ]] || die "apt-cache knows no linux-image-6.1.0-<n>-amd64 (run apt-get update)"
    if [[ "$(cat "$LAB_DIR/kernel.installed" 2>/dev/null)" == "$pkg" && -f "$LAB_DIR/vmlinuz" ]] && modules_complete; then
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
  if [[ "$(cat "$LAB_DIR/images/installed" 2>/dev/null)" == "$(lab_os_stamp)" ]]; then
    log "lab OS images: up to date"
  else
    log "lab OS images: building"
    for tool in mkfs.vfat mcopy syslinux sfdisk; do
      command -v "$tool" >/dev/null || die "$tool missing (apt-get install dosfstools mtools syslinux fdisk)"
    done
    [[ -f "$SYSTEMD_BOOT_EFI" ]] || die "$SYSTEMD_BOOT_EFI missing (apt-get install systemd-boot-efi)"
    build_lab_os_images
  fi
  copy_ipxe
  log "kernel    $LAB_DIR/vmlinuz ($pkg)"
  log "initramfs $LAB_DIR/initramfs ($(du -k "$LAB_DIR/initramfs" | cut -f1) KiB)"
  log "tftp root $LAB_DIR/tftp (undionly.kpxe, ipxe.efi = snponly.efi, ipxe.efi.full)"
  log "lab OS    $LAB_DIR/images/lab-os-{1,2}.img[.zst] (sha256 in .sha256)"
}

main "$@"
