#!/usr/bin/env bash
# Serves the fleet simulator (default 100 targets x 1000 series) and lets Debian's stock
# Prometheus scrape every target at 1 s through a file_sd list for DURATION seconds; prints the
# simulator's CPU (cores) and RSS, Prometheus' view (targets up, samples per scrape, failed
# scrapes) and Prometheus' own CPU for scale. Shows the simulator is cheap enough to feed a
# 100k-series benchmark on this box, and that stock Prometheus scrapes it as it is.
# Run by hand, not in CI:
#   bash benches/fleet_sim.sh [TARGETS] [SERIES] [DURATION]      (default 100 1000 60)
set -euo pipefail
cd "$(dirname "$0")/.."
TARGETS="${1:-100}"
SERIES="${2:-1000}"
DURATION="${3:-60}"
PROM="$(command -v prometheus || true)"
[ -n "$PROM" ] || { echo "prometheus not installed (apt-get install prometheus)" >&2; exit 1; }
cargo build --profile bench -q -p osprey-scrape --bin osprey-fleet-sim
SIM="${CARGO_TARGET_DIR:-$PWD/target}/release/osprey-fleet-sim"

PYTHONPATH=benches python3 - "$SIM" "$PROM" "$TARGETS" "$SERIES" "$DURATION" <<'PY'
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request
from benchlib import free_port, cpu_ticks, rss

sim, prom, targets, series, duration = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
HZ = os.sysconf("SC_CLK_TCK")
d = tempfile.mkdtemp(prefix="fleet-sim-")

def query(port, expr):
    u = f"http://127.0.0.1:{port}/api/v1/query?query=" + urllib.parse.quote(expr)
    r = json.load(urllib.request.urlopen(u, timeout=10))["data"]["result"]
    return float(r[0]["value"][1]) if r else 0.0

sd = os.path.join(d, "targets.json")
simp = subprocess.Popen([sim, f"--targets={targets}", f"--series={series}", "--gzip", f"--file-sd={sd}"],
                        stdout=subprocess.PIPE, text=True)
print(simp.stdout.readline().strip())
port = free_port()
cfg = os.path.join(d, "prometheus.yml")
open(cfg, "w").write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fleet
    file_sd_configs:
      - files: ['{sd}']
""")
promp = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={d}/data",
                          f"--web.listen-address=127.0.0.1:{port}"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    for _ in range(100):
        try:
            if query(port, "count(up == 1)") == targets: break
        except Exception: pass
        time.sleep(0.5)
    time.sleep(5)  # past start-up
    s0, p0, t0 = cpu_ticks(simp.pid), cpu_ticks(promp.pid), time.time()
    time.sleep(duration)
    s1, p1, t1 = cpu_ticks(simp.pid), cpu_ticks(promp.pid), time.time()
    wall = t1 - t0
    up = query(port, "count(up == 1)")
    samples = query(port, "sum(scrape_samples_scraped)")
    scrapes = query(port, f"sum(count_over_time(up[{duration}s]))")
    failed = query(port, f"sum(count_over_time(up[{duration}s]) - sum_over_time(up[{duration}s]))")
    rate = scrapes / duration
    print(f"fleet: {targets} targets x {series} series, Prometheus scraping every 1 s for {wall:.0f} s")
    print(f"simulator: {(s1 - s0) / HZ / wall:.3f} cores, RSS {rss(simp.pid) / 2**20:.1f} MiB")
    print(f"prometheus: {(p1 - p0) / HZ / wall:.3f} cores, RSS {rss(promp.pid) / 2**20:.1f} MiB")
    print(f"prometheus sees: {up:.0f}/{targets} targets up, {samples:.0f} samples per round, "
          f"{rate:.1f} scrapes/s, failed scrapes {failed:.0f}")
finally:
    promp.terminate(); simp.terminate(); promp.wait(); simp.wait()
    shutil.rmtree(d, ignore_errors=True)
PY
