#!/usr/bin/env bash
# Checks systemd/osprey-agent.service offline (no systemd PID 1 needed):
#   systemd-analyze verify   on a throw-away root holding the unit, the binary and /bin/kill;
#   systemd-analyze security scores of ours and of Debian's prometheus-node-exporter.service.
# Usage: systemd/check.sh [path/to/osprey-agent]   (default: target/debug/osprey-agent)
set -euo pipefail
cd "$(dirname "$0")/.."
bin=${1:-${CARGO_TARGET_DIR:-target}/debug/osprey-agent}
root=$(mktemp -d)
trap 'rm -rf "$root"' EXIT
mkdir -p "$root/usr/bin" "$root/bin" "$root/etc/systemd/system" "$root/lib/systemd"
cp -a /lib/systemd/system "$root/lib/systemd/"
install -m 755 "$bin" "$root/usr/bin/osprey-agent"
install -m 755 /bin/kill "$root/bin/kill"
cp systemd/osprey-agent.service "$root/etc/systemd/system/"
echo "== systemd-analyze verify"
out=$(systemd-analyze verify --man=no --root="$root" /etc/systemd/system/osprey-agent.service 2>&1) || { echo "$out"; exit 1; }
if [ -n "$out" ]; then echo "$out"; exit 1; fi
echo "ok"
score() { systemd-analyze security --offline=yes --root="$root" "$1" 2>/dev/null | sed -n 's/.*Overall exposure level for [^:]*: \([0-9.]*\).*/\1/p'; }
ours=$(score /etc/systemd/system/osprey-agent.service)
theirs=""
if [ -f /lib/systemd/system/prometheus-node-exporter.service ]; then
  cp /lib/systemd/system/prometheus-node-exporter.service "$root/etc/systemd/system/"
  theirs=$(score /etc/systemd/system/prometheus-node-exporter.service)
fi
echo "== systemd-analyze security (exposure, lower is better): osprey-agent ${ours}, prometheus-node-exporter ${theirs:-n/a}"
if [ -n "$theirs" ] && awk -v a="$ours" -v b="$theirs" 'BEGIN{exit !(a > b)}'; then
  echo "osprey-agent.service is more exposed than Debian's node_exporter unit" >&2
  exit 1
fi
