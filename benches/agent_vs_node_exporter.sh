#!/usr/bin/env bash
# Runs osprey-agent and Debian's prometheus-node-exporter side by side with the same collector
# set on this machine, scrapes each N times interleaved (as Prometheus does: gzip, OpenMetrics
# Accept header), and prints CPU time per scrape (utime+stime from /proc/PID/stat), wall time
# per scrape, RSS after, body size, and the ratios. Run by hand, not in CI:
#   bash benches/agent_vs_node_exporter.sh [SCRAPES]        (default 500)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRAPES="${1:-500}"
NE="$(command -v prometheus-node-exporter || true)"
[ -n "$NE" ] || { echo "prometheus-node-exporter not installed (apt-get install prometheus-node-exporter)" >&2; exit 1; }
cargo build --release -q -p exporters --bin osprey-agent
AGENT="${CARGO_TARGET_DIR:-$PWD/target}/release/osprey-agent"

# The common collector set: every collector both know (default-enabled ones in node_exporter
# plus ours), so both do the same work.
ours=$("$AGENT" --help | sed -n 's/.*Enable the \([a-z_0-9]*\) collector.*/\1/p')
theirs=$("$NE" --help 2>&1 | grep -oE -- '--\[?(no-)?\]?collector\.[a-z_0-9]+ ' | sed -E 's/.*collector\.//; s/ //' | sort -u)
common=()
for c in $ours; do
  if grep -qx "$c" <<<"$theirs"; then common+=("$c"); fi
done
flags=(--collector.disable-defaults)
for c in "${common[@]}"; do flags+=("--collector.$c"); done

python3 - "$AGENT" "$NE" "$SCRAPES" "${flags[@]}" <<'PY'
import os, socket, subprocess, sys, time, urllib.request

agent, ne, scrapes, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4:]
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

def cpu_ticks(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])

def rss(pid):
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) * 1024
    return 0

def scrape(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)

procs = {}
for name, binary in (("osprey-agent", agent), ("node_exporter", ne)):
    port = free_port()
    p = subprocess.Popen([binary, *flags, f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(200):
        try:
            scrape(port); break
        except Exception:
            time.sleep(0.05)
    procs[name] = (p, port)

# Warm up, then measure interleaved.
for _ in range(5):
    for p, port in procs.values():
        scrape(port)
stats = {n: {"cpu0": cpu_ticks(p.pid), "wall": 0.0, "bytes": 0} for n, (p, _) in procs.items()}
for i in range(scrapes):
    for n, (p, port) in procs.items():
        w, b = scrape(port)
        stats[n]["wall"] += w
        stats[n]["bytes"] = b
res = {}
for n, (p, port) in procs.items():
    s = stats[n]
    cpu = (cpu_ticks(p.pid) - s["cpu0"]) / HZ / scrapes
    res[n] = (cpu * 1000, s["wall"] / scrapes * 1000, rss(p.pid) / 1e6, s["bytes"])
    p.terminate(); p.wait()

print(f"collectors ({len(flags) - 1}): {' '.join(f.replace('--collector.', '') for f in flags[1:])}")
print(f"{scrapes} scrapes each, interleaved, gzip + OpenMetrics Accept header\n")
print(f"| {'':<14} | {'CPU ms/scrape':>13} | {'wall ms/scrape':>14} | {'RSS MB after':>12} | {'body bytes (gzip)':>17} |")
print(f"|{'-'*16}|{'-'*15}|{'-'*16}|{'-'*14}|{'-'*19}|")
for n in ("osprey-agent", "node_exporter"):
    c, w, r, b = res[n]
    print(f"| {n:<14} | {c:>13.3f} | {w:>14.3f} | {r:>12.1f} | {b:>17} |")
a, e = res["osprey-agent"], res["node_exporter"]
ratio = lambda x, y: (x / y) if y else float("nan")
print(f"| {'ratio':<14} | {ratio(a[0], e[0]):>12.3f}x | {ratio(a[1], e[1]):>13.3f}x | {ratio(a[2], e[2]):>11.3f}x | {ratio(a[3], e[3]):>16.3f}x |")
PY
