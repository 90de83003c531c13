#!/usr/bin/env bash
# Runs osprey-agent and Debian's prometheus-node-exporter side by side with the same collector
# set on this machine, scrapes each N times interleaved (as Prometheus does: gzip, OpenMetrics
# Accept header), and prints CPU time per scrape (utime+stime from /proc/PID/stat), wall time
# per scrape, RSS after, body size, and the ratios. Run by hand, not in CI:
#   bash benches/agent_vs_node_exporter.sh [SCRAPES] [REPS]   (defaults 500 and 1)
# With REPS > 1 both are restarted for each repetition and the table shows medians (the
# machine is shared: single runs vary by ±20 %). EXCLUDE="processes systemd" leaves
# collectors out of the common set (e.g. to compare only node_exporter's default ones).
# AGENT_BIN=/path/to/osprey-agent benchmarks that binary instead of building one.
set -euo pipefail
cd "$(dirname "$0")/.."
SCRAPES="${1:-500}"
REPS="${2:-1}"
NE="$(command -v prometheus-node-exporter || true)"
[ -n "$NE" ] || { echo "prometheus-node-exporter not installed (apt-get install prometheus-node-exporter)" >&2; exit 1; }
# AGENT_BIN=/path/to/osprey-agent benchmarks a binary built earlier (before/after comparisons).
if [ -n "${AGENT_BIN:-}" ]; then
  AGENT="$AGENT_BIN"
else
  cargo build --release -q -p exporters --bin osprey-agent
  AGENT="${CARGO_TARGET_DIR:-$PWD/target}/release/osprey-agent"
fi

# The common collector set: every collector both know (default-enabled ones in node_exporter
# plus ours), so both do the same work.
ours=$("$AGENT" --help | sed -n 's/.*Enable the \([a-z_0-9]*\) collector.*/\1/p')
theirs=$("$NE" --help 2>&1 | grep -oE -- '--\[?(no-)?\]?collector\.[a-z_0-9]+ ' | sed -E 's/.*collector\.//; s/ //' | sort -u)
common=()
for c in $ours; do
  if grep -qx "$c" <<<"$theirs" && ! grep -qw -- "$c" <<<"${EXCLUDE:-}"; then common+=("$c"); fi
done
flags=(--collector.disable-defaults)
for c in "${common[@]}"; do flags+=("--collector.$c"); done

PYTHONPATH=benches python3 - "$AGENT" "$NE" "$SCRAPES" "$REPS" "${flags[@]}" <<'PY'
import os, socket, statistics, subprocess, sys, time, urllib.request
from benchlib import free_port, cpu_ticks, rss

agent, ne, scrapes, reps, flags = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), sys.argv[5:]
HZ = os.sysconf("SC_CLK_TCK")
PAGE = os.sysconf("SC_PAGE_SIZE")
ACCEPT = ("application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,"
          "text/plain;version=0.0.4;q=0.5,*/*;q=0.1")

def scrape(port):
    req = urllib.request.Request(f"http://127.0.0.1:{port}/metrics",
                                 headers={"Accept": ACCEPT, "Accept-Encoding": "gzip"})
    t = time.perf_counter()
    with urllib.request.urlopen(req, timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t, len(body)

def run_once():
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
    return res

runs = []
for r in range(reps):
    runs.append(run_once())
    if reps > 1:
        a, e = runs[-1]["osprey-agent"], runs[-1]["node_exporter"]
        print(f"rep {r + 1}: CPU {a[0]:.3f} vs {e[0]:.3f} ms ({a[0] / e[0]:.3f}x), "
              f"RSS {a[2]:.1f} vs {e[2]:.1f} MB ({a[2] / e[2]:.3f}x)", flush=True)
res = {n: tuple(statistics.median(run[n][k] for run in runs) for k in range(4)) for n in runs[0]}

print(f"collectors ({len(flags) - 1}): {' '.join(f.replace('--collector.', '') for f in flags[1:])}")
print(f"{scrapes} scrapes each, interleaved, gzip + OpenMetrics Accept header"
      + (f"; medians of {reps} runs" if reps > 1 else "") + "\n")
print(f"| {'':<14} | {'CPU ms/scrape':>13} | {'wall ms/scrape':>14} | {'RSS MB after':>12} | {'body bytes (gzip)':>17} |")
print(f"|{'-'*16}|{'-'*15}|{'-'*16}|{'-'*14}|{'-'*19}|")
for n in ("osprey-agent", "node_exporter"):
    c, w, r, b = res[n]
    print(f"| {n:<14} | {c:>13.3f} | {w:>14.3f} | {r:>12.1f} | {b:>17} |")
a, e = res["osprey-agent"], res["node_exporter"]
ratio = lambda x, y: (x / y) if y else float("nan")
print(f"| {'ratio':<14} | {ratio(a[0], e[0]):>12.3f}x | {ratio(a[1], e[1]):>13.3f}x | {ratio(a[2], e[2]):>11.3f}x | {ratio(a[3], e[3]):>16.3f}x |")
PY
