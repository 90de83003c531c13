#!/usr/bin/env bash
# Cost of the `cgroup` collector on the real kernel: creates N service cgroups (default 300) in
# the host's cgroup file system (v2 root, or systemd's + the unified hierarchy of a hybrid host),
# runs osprey-agent with only `cgroup` enabled, scrapes it M times and prints CPU time per scrape
# and per unit. There is no peer to compare with (systemd_exporter dropped its cgroup metrics in
# 0.6). Needs root. Run by hand, not in CI:
#   sudo bash benches/cgroup_units.sh [UNITS] [SCRAPES]        (defaults 300, 200)
set -euo pipefail
cd "$(dirname "$0")/.."
UNITS="${1:-300}"
SCRAPES="${2:-200}"
cargo build --release -q -p exporters --bin osprey-agent
AGENT="${CARGO_TARGET_DIR:-$PWD/target}/release/osprey-agent"
ROOT=/sys/fs/cgroup
if [ -f "$ROOT/cgroup.controllers" ]; then
  HIER=("$ROOT/osprey-bench.slice")
elif [ -d "$ROOT/systemd" ] && [ -f "$ROOT/unified/cgroup.controllers" ]; then
  HIER=("$ROOT/systemd/osprey-bench.slice" "$ROOT/unified/osprey-bench.slice")
else
  echo "no cgroup v2 or hybrid hierarchy at $ROOT" >&2; exit 1
fi
cleanup() {
  for h in "${HIER[@]}"; do
    for d in "$h"/*.service; do [ -d "$d" ] && rmdir "$d"; done
    [ -d "$h" ] && rmdir "$h"
  done
  [ -n "${APID:-}" ] && kill "$APID" 2>/dev/null || true
}
trap cleanup EXIT
for h in "${HIER[@]}"; do
  mkdir -p "$h"
  for i in $(seq "$UNITS"); do mkdir -p "$h/bench-$i.service"; done
done
PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
"$AGENT" --collector.disable-defaults --collector.cgroup --web.listen-address=127.0.0.1:"$PORT" >/dev/null 2>&1 &
APID=$!
python3 - "$APID" "$PORT" "$UNITS" "$SCRAPES" <<'PY'
import os, sys, time, urllib.request
pid, port, units, scrapes = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
HZ = os.sysconf("SC_CLK_TCK")
def get():
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        return r.read().decode()
for _ in range(100):
    try:
        body = get(); break
    except Exception:
        time.sleep(0.05)
n = len({l.split('name="')[1].split('"')[0] for l in body.splitlines() if 'name="bench-' in l})
assert n == units, f"agent reports {n} of {units} bench units"
def ticks():
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]), int(f[12])
u0, s0 = ticks(); t = time.perf_counter()
for _ in range(scrapes):
    get()
wall = (time.perf_counter() - t) / scrapes
u1, s1 = ticks()
cpu = (u1 - u0 + s1 - s0) / HZ / scrapes
print(f"{units} units, {scrapes} scrapes: CPU {cpu*1000:.2f} ms/scrape "
      f"(user {(u1-u0)/HZ/scrapes*1000:.2f}, system {(s1-s0)/HZ/scrapes*1000:.2f}), "
      f"{cpu/units*1e6:.1f} µs per unit, wall {wall*1000:.2f} ms/scrape")
PY
