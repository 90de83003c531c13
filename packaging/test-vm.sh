#!/usr/bin/env bash
# Real install in a real systemd: builds the .deb (from the debug binary unless DEB=path is
# given), debootstraps a minimal Debian guest (the host's release and apt archive) with systemd as PID 1 (cached in
# $CARGO_TARGET_DIR/vm/rootfs; VM_FRESH=1 rebuilds it), boots it with qemu (software emulation;
# VM_ACCEL=kvm to use /dev/kvm where nested KVM works), hands the .deb in through a 9p share
# and checks, from the host through a forwarded port and from results the guest writes:
#   dpkg -i works; the unit is active; it runs as user osprey; the agent answers on the
#   forwarded port; node_systemd_unit_state shows the guest's units (when this build has the
#   systemd collector); systemctl restart gives a new process that answers; dpkg --purge stops
#   it and removes the unit, the conffiles and /var/lib/osprey.
# Needs root (debootstrap), debootstrap, qemu-system-x86, e2fsprogs (mkfs.ext4 -d), curl.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
target=${CARGO_TARGET_DIR:-target}
vm="$target/vm"
# The same archive and release apt uses on this machine (VM_MIRROR / VM_SUITE override).
apt_mirror=$(grep -hoE '^(URIs:|deb) +https?://[^ ]+' /etc/apt/sources.list /etc/apt/sources.list.d/*.sources \
  /etc/apt/sources.list.d/*.list 2>/dev/null | awk '{print $2}' | grep -v security | head -n 1 || true)
mirror=${VM_MIRROR:-${apt_mirror:-http://deb.debian.org/debian}}
suite=${VM_SUITE:-$(. /etc/os-release 2>/dev/null; echo "${VERSION_CODENAME:-bookworm}")}
mkdir -p "$vm"
vm=$(cd "$vm" && pwd)

log() { printf '\n==> [%ss] %s\n' "$(($(date +%s) - start))" "$*"; }
fail() {
  echo "VM TEST FAILED: $*" >&2
  echo "--- guest log" >&2; cat "$vm/share/guest.log" >&2 2>/dev/null || true
  echo "--- console (tail)" >&2; tail -n 40 "$vm/console.log" >&2 2>/dev/null || true
  exit 1
}

deb=${DEB:-}
if [ -z "$deb" ]; then
  log "building the .deb from the debug binary"
  cargo build --locked -p exporters --bin osprey-agent
  PACKAGE_BINARY="$target/debug/osprey-agent" packaging/build.sh >/dev/null
  deb=$(ls -t "$target"/packages/osprey-agent_*.deb | head -n 1)
fi
[ -f "$deb" ] || fail "no .deb at $deb"

# --- guest root filesystem (cached) ---------------------------------------------------------
root="$vm/rootfs"
if [ "${VM_FRESH:-0}" = 1 ] || [ ! -f "$root/.debootstrap-done" ]; then
  log "debootstrap $suite (minbase + systemd + kernel) from $mirror"
  rm -rf "$root"
  debootstrap --variant=minbase \
    --include=systemd,systemd-sysv,dbus,udev,linux-image-amd64,procps,iproute2,kmod \
    "$suite" "$root" "$mirror" >"$vm/debootstrap.log" 2>&1 || { tail -n 20 "$vm/debootstrap.log"; fail "debootstrap"; }
  touch "$root/.debootstrap-done"
fi
if [ ! -f "$root/.osprey-ready" ]; then
  log "configuring the guest (network, 9p share, test driver unit)"
  echo osprey-guest >"$root/etc/hostname"
  printf '/dev/vda / ext4 rw,errors=remount-ro 0 1\nshare /mnt/share 9p trans=virtio,version=9p2000.L,msize=262144,nofail 0 0\n' >"$root/etc/fstab"
  mkdir -p "$root/mnt/share" "$root/etc/systemd/network"
  printf '[Match]\nName=en*\n\n[Network]\nDHCP=yes\n' >"$root/etc/systemd/network/10-en.network"
  chroot "$root" systemctl enable systemd-networkd.service >/dev/null 2>&1
  # The guest side of the test: runs the script the host puts in the share.
  cat >"$root/etc/systemd/system/osprey-vmtest.service" <<'EOF'
[Unit]
Description=Osprey VM test driver (runs /mnt/share/guest.sh)
After=network-online.target mnt-share.mount
Wants=network-online.target
RequiresMountsFor=/mnt/share

[Service]
Type=simple
ExecStart=/bin/sh /mnt/share/guest.sh

[Install]
WantedBy=multi-user.target
EOF
  chroot "$root" systemctl enable osprey-vmtest.service >/dev/null 2>&1
  chroot "$root" systemctl mask getty@tty1.service serial-getty@ttyS0.service apt-daily.timer apt-daily-upgrade.timer >/dev/null 2>&1 || true
  touch "$root/.osprey-ready"
fi

# --- per-run disk, share and guest script ---------------------------------------------------
log "disk image from the cached rootfs"
rm -f "$vm/disk.img"
mkfs.ext4 -q -F -L root -d "$root" "$vm/disk.img" 2G || fail "mkfs.ext4 -d"
rm -rf "$vm/share"
mkdir -p "$vm/share"
cp "$deb" "$vm/share/osprey-agent.deb"
has_systemd_collector=0
if "$target/debug/osprey-agent" --help 2>/dev/null | grep -q -- '--collector.systemd '; then has_systemd_collector=1; fi
cat >"$vm/share/guest.sh" <<EOF
#!/bin/sh
S=/mnt/share
exec >>\$S/guest.log 2>&1
set -x
until [ -f \$S/host-go ]; do sleep 0.2; done
wait_active() { i=0; while [ "\$(systemctl is-active osprey-agent)" != active ] && [ \$i -lt 150 ]; do sleep 0.2; i=\$((i+1)); done; }
if [ $has_systemd_collector = 1 ]; then
  mkdir -p /etc/default
  printf 'ARGS="--collector.systemd"\n' >/etc/default/osprey-agent
fi
DEBIAN_FRONTEND=noninteractive dpkg --force-confold -i \$S/osprey-agent.deb; echo \$? >\$S/r-dpkg
wait_active
systemctl is-active osprey-agent >\$S/r-active
systemctl show -p Type --value osprey-agent >\$S/r-type
pid=\$(systemctl show -p MainPID --value osprey-agent); echo \$pid >\$S/r-pid1
ps -o user= -p \$pid >\$S/r-user
systemctl is-enabled osprey-agent >\$S/r-enabled
journalctl -u osprey-agent --no-pager >\$S/r-journal1
echo installed >\$S/step
until [ -f \$S/host-checked1 ]; do sleep 0.2; done
journalctl -u osprey-agent --no-pager >\$S/r-journal1
systemctl restart osprey-agent; wait_active
systemctl show -p MainPID --value osprey-agent >\$S/r-pid2
systemctl is-active osprey-agent >\$S/r-active2
echo restarted >\$S/step
until [ -f \$S/host-checked2 ]; do sleep 0.2; done
dpkg --purge osprey-agent; echo \$? >\$S/r-purge
systemctl is-active osprey-agent >\$S/r-active3
pgrep -x osprey-agent >\$S/r-pgrep3
for p in /usr/bin/osprey-agent /usr/lib/systemd/system/osprey-agent.service /etc/osprey/agent.toml /etc/default/osprey-agent /var/lib/osprey; do
  [ -e \$p ] && echo "present \$p"
done >\$S/r-leftovers
getent passwd osprey >\$S/r-user-after
echo purged >\$S/step
sync
systemctl poweroff
EOF

# --- boot ------------------------------------------------------------------------------------
accel=tcg
if [ "${VM_ACCEL:-tcg}" = kvm ] && [ -w /dev/kvm ]; then accel=kvm; fi
port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
kernel=$(ls "$root"/boot/vmlinuz-* | head -n 1)
initrd=$(ls "$root"/boot/initrd.img-* | head -n 1)
log "booting the guest (accel=$accel, agent forwarded to 127.0.0.1:$port)"
qemu-system-x86_64 -accel "$accel" -m 1024 -smp 2 -nographic -monitor none -no-reboot \
  -kernel "$kernel" -initrd "$initrd" \
  -append "root=/dev/vda rw console=ttyS0 quiet systemd.show_status=0 net.ifnames=1" \
  -drive "file=$vm/disk.img,if=virtio,format=raw" \
  -virtfs "local,path=$vm/share,mount_tag=share,security_model=none,id=share" \
  -netdev "user,id=n0,hostfwd=tcp:127.0.0.1:$port-:9100" -device virtio-net-pci,netdev=n0 \
  -serial "file:$vm/console.log" >"$vm/qemu.log" 2>&1 &
qemu=$!
trap 'kill $qemu 2>/dev/null || true' EXIT

wait_step() {
  local want=$1 limit=$2 t=0
  while [ "$(cat "$vm/share/step" 2>/dev/null)" != "$want" ]; do
    kill -0 $qemu 2>/dev/null || fail "qemu exited while waiting for '$want' ($(cat "$vm/qemu.log"))"
    [ $t -ge $((limit * 5)) ] && fail "guest did not reach '$want' in ${limit}s"
    sleep 0.2; t=$((t + 1))
  done
}
scrape() { curl -sf --max-time 10 "http://127.0.0.1:$port/metrics"; }

# The guest script waits for this, so the share is writable from the host side first.
touch "$vm/share/host-go"
wait_step installed 420
log "guest booted and installed the package"
S="$vm/share"
[ "$(cat "$S/r-dpkg")" = 0 ] || fail "dpkg -i exited $(cat "$S/r-dpkg")"
[ "$(cat "$S/r-active")" = active ] || fail "unit is $(cat "$S/r-active"), not active: $(cat "$S/r-journal1")"
[ "$(cat "$S/r-type")" = notify ] || fail "unit type $(cat "$S/r-type")"
[ "$(cat "$S/r-enabled")" = enabled ] || fail "unit not enabled"
[ "$(tr -d ' ' <"$S/r-user")" = osprey ] || fail "agent runs as '$(cat "$S/r-user")', not osprey"
body=""
for _ in $(seq 1 50); do body=$(scrape) && break; sleep 0.2; done
[ -n "$body" ] || fail "agent does not answer on the forwarded port"
grep -q '^node_load1 ' <<<"$body" || fail "no node_load1 in the guest's metrics"
grep -q '^osprey_agent_build_info' <<<"$body" || fail "no build info"
grep -q 'node_filesystem_avail_bytes{.*mountpoint="/"' <<<"$body" || fail "filesystem collector sees no / under the hardened unit"
# The unit's syscall filter allows adjtimex(2) for the timex collector (ProtectClock is off).
grep -q '^node_scrape_collector_success{collector="timex"} 1' <<<"$body" || fail "timex collector fails under the unit's sandbox"
echo "ok: active, Type=notify, enabled, user osprey, answers on :$port with $(grep -vc '^#' <<<"$body") series"
echo "collectors reporting success 0 in the guest (no such hardware in a VM, or sandboxed):" \
  "$(grep '^node_scrape_collector_success{.*} 0' <<<"$body" | sed 's/.*collector="\([^"]*\)".*/\1/' | tr '\n' ' ')"
if [ $has_systemd_collector = 1 ]; then
  grep -q 'node_systemd_unit_state{name="osprey-agent.service",state="active"' <<<"$body" && \
    grep -q 'node_systemd_unit_state{name="dbus.service",state="active"' <<<"$body" || \
    fail "node_systemd_unit_state does not show the guest's active units"
  echo "ok: node_systemd_unit_state shows the guest's units over the system D-Bus"
else
  echo "KNOWN GAP: this build has no systemd collector; node_systemd_unit_state not checked"
fi
touch "$S/host-checked1"
wait_step restarted 120
[ "$(cat "$S/r-active2")" = active ] || fail "not active after restart"
if grep -qiE 'level=(error|warn)|operation not permitted|permission denied' "$S/r-journal1"; then
  echo "agent warnings/errors in the guest journal after the first scrape:"; grep -iE 'level=(error|warn)|not permitted|denied' "$S/r-journal1" | cut -c1-300
fi
[ "$(cat "$S/r-pid2")" != "$(cat "$S/r-pid1")" ] || fail "restart kept the same PID"
body=""
for _ in $(seq 1 50); do body=$(scrape) && break; sleep 0.2; done
grep -q '^node_load1 ' <<<"$body" || fail "agent does not answer after restart"
echo "ok: systemctl restart: new PID $(cat "$S/r-pid2") (was $(cat "$S/r-pid1")), answers again"
touch "$S/host-checked2"
wait_step purged 120
[ "$(cat "$S/r-purge")" = 0 ] || fail "dpkg --purge exited $(cat "$S/r-purge")"
[ ! -s "$S/r-pgrep3" ] || fail "agent still running after purge"
[ ! -s "$S/r-leftovers" ] || fail "left after purge: $(cat "$S/r-leftovers")"
scrape >/dev/null 2>&1 && fail "port still answers after purge"
echo "ok: dpkg --purge stopped the agent and removed binary, unit, conffiles and /var/lib/osprey"
for _ in $(seq 1 300); do kill -0 $qemu 2>/dev/null || break; sleep 0.2; done
kill $qemu 2>/dev/null || true
log "VM test passed in $(($(date +%s) - start)) s"
