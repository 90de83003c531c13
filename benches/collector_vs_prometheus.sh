#!/usr/bin/env bash
# osprey-collector vs Debian's stock Prometheus, side by side on the same fleet (issue 7's
# benchmark). The fleet simulator serves TARGETS x SERIES (default 100 x 1000, gzip) on
# loopback; both servers scrape the same file_sd list every 1 s at the same time for MINUTES
# (default 10), so a loaded machine slows both alike and the ratios stay fair. Both cut 2 m
# blocks (`--storage.tsdb.min-block-duration=2m`, a hidden flag in both) so that block bytes
# per sample are measurable within the run. Prints, for both and as ratios:
#   CPU cores used (user+sys over the measured window), RSS (mean and peak, and per active
#   series), samples ingested per second, scrapes done and failed (the same PromQL on both
#   APIs), bytes on disk per sample in persisted blocks (block dir bytes / meta.json
#   numSamples, index included; for Prometheus also its chunk files alone) and data dir bytes
#   per ingested sample (WAL included).
# Targets (issue 7): CPU <= 0.5x Prometheus, RSS <= 1 KB per active series, disk <= 1.3 B/sample.
# Run by hand, not in CI:
#   bash benches/collector_vs_prometheus.sh [MINUTES] [TARGETS] [SERIES]
set -euo pipefail
cd "$(dirname "$0")/.."
MINUTES="${1:-10}"
TARGETS="${2:-100}"
SERIES="${3:-1000}"
PROM="$(command -v prometheus || true)"
[ -n "$PROM" ] || { echo "prometheus not installed (apt-get install prometheus)" >&2; exit 1; }
# The bench profile is the release profile with symbols (for perf); same code as shipped.
cargo build --profile bench -q -p osprey-collector --bin osprey-collector -p osprey-scrape --bin osprey-fleet-sim
BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"

PYTHONPATH=benches python3 - "$BIN_DIR" "$PROM" "$MINUTES" "$TARGETS" "$SERIES" <<'PY'
import glob, json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request
from benchlib import free_port, cpu_ticks, rss, query

bin_dir, prom, minutes, targets, series = sys.argv[1], sys.argv[2], float(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
HZ = os.sysconf("SC_CLK_TCK")
d = tempfile.mkdtemp(prefix="osprey-vs-prom-")
duration = minutes * 60

def self_metric(port, name):
    text = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30).read().decode()
    for l in text.splitlines():
        if l.startswith(name + " ") or l.startswith(name + "{"):
            return float(l.rsplit(" ", 1)[1])
    return None

def dir_bytes(path):
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try: total += os.path.getsize(os.path.join(root, f))
            except OSError: pass
    return total

def blocks(path):
    """(bytes, chunk bytes, index bytes, samples, series, count) over persisted blocks."""
    b = c = x = s = ser = n = 0
    for meta in glob.glob(os.path.join(path, "*", "meta.json")):
        m = json.load(open(meta))
        bd = os.path.dirname(meta)
        b += dir_bytes(bd); c += dir_bytes(os.path.join(bd, "chunks"))
        x += os.path.getsize(os.path.join(bd, "index")) if os.path.exists(os.path.join(bd, "index")) else 0
        s += m["stats"]["numSamples"]; ser += m["stats"]["numSeries"]; n += 1
    return b, c, x, s, ser, n

sd = os.path.join(d, "targets.json")
simp = subprocess.Popen([f"{bin_dir}/osprey-fleet-sim", f"--targets={targets}", f"--series={series}", "--gzip",
                         f"--file-sd={sd}"], stdout=subprocess.PIPE, text=True)
print(simp.stdout.readline().strip())
pport, oport = free_port(), free_port()
open(f"{d}/prometheus.yml", "w").write(f"""global:
  scrape_interval: 1s
  scrape_timeout: 1s
scrape_configs:
  - job_name: fleet
    file_sd_configs:
      - files: ['{sd}']
""")
open(f"{d}/collector.toml", "w").write(f"""[global]
scrape_interval = "1s"
scrape_timeout = "1s"

[[scrape_configs]]
job_name = "fleet"
file_sd_configs = [{{ files = ["{sd}"] }}]
""")
logs = open(f"{d}/servers.log", "w")
promp = subprocess.Popen([prom, f"--config.file={d}/prometheus.yml", f"--storage.tsdb.path={d}/prom",
                          f"--web.listen-address=127.0.0.1:{pport}", "--storage.tsdb.min-block-duration=2m",
                          "--storage.tsdb.max-block-duration=2m"], stdout=logs, stderr=logs)
ourp = subprocess.Popen([f"{bin_dir}/osprey-collector", f"--config={d}/collector.toml", f"--data-dir={d}/osprey",
                         f"--web.listen-address=127.0.0.1:{oport}", "--storage.tsdb.min-block-duration=2m",
                         "--log.level=warn"], stdout=logs, stderr=logs)
procs = {"osprey": (ourp, oport), "prometheus": (promp, pport)}
try:
    for name, (p, port) in procs.items():
        for _ in range(240):
            try:
                if query(port, 'count(up{job="fleet"} == 1)') == targets: break
            except Exception: pass
            time.sleep(0.5)
        else:
            sys.exit(f"{name}: targets not all up after 120 s (log: {d}/servers.log)")
    time.sleep(20)  # past start-up and the first head chunks
    active = targets * (series + 5)
    c0 = {n: cpu_ticks(p.pid) for n, (p, _) in procs.items()}
    s0 = {"osprey": self_metric(oport, "osprey_tsdb_head_samples_appended_total"),
          "prometheus": self_metric(pport, "prometheus_tsdb_head_samples_appended_total")}
    sim0 = cpu_ticks(simp.pid)
    t0 = time.time()
    rss_samples = {n: [] for n in procs}
    while time.time() - t0 < duration:
        for n, (p, _) in procs.items():
            rss_samples[n].append(rss(p.pid))
        time.sleep(5)
    wall = time.time() - t0
    c1 = {n: cpu_ticks(p.pid) for n, (p, _) in procs.items()}
    s1 = {"osprey": self_metric(oport, "osprey_tsdb_head_samples_appended_total"),
          "prometheus": self_metric(pport, "prometheus_tsdb_head_samples_appended_total")}
    sim1 = cpu_ticks(simp.pid)
    win = int(wall)
    # Scrape counts are evaluated 5 s before the window's end: a scrape stamped just before
    # "now" may still be committing, and a query reading it in one selector and not the other
    # once printed -1 failed scrapes.
    at = t0 + wall - 5
    win -= 5
    res = {}
    for n, (p, port) in procs.items():
        r = {}
        r["cores"] = (c1[n] - c0[n]) / HZ / wall
        r["rss_mean"] = sum(rss_samples[n]) / len(rss_samples[n])
        r["rss_peak"] = max(rss_samples[n])
        r["rss_per_series"] = r["rss_mean"] / active
        r["ingest"] = (s1[n] - s0[n]) / wall
        r["scrapes"] = query(port, f'sum(count_over_time(up{{job="fleet"}}[{win}s]))', at=at)
        r["failed"] = query(port, f'sum(count_over_time(up{{job="fleet"}}[{win}s])) - sum(sum_over_time(up{{job="fleet"}}[{win}s]))', at=at)
        r["head_series"] = self_metric(port, "prometheus_tsdb_head_series")
        res[n] = r
    # Stop both cleanly (flushes), then look at their directories.
    for n, (p, _) in procs.items():
        p.terminate()
    for n, (p, _) in procs.items():
        p.wait(timeout=120)
    for n, sub in (("osprey", "osprey"), ("prometheus", "prom")):
        b, c, x, s, ser, k = blocks(f"{d}/{sub}")
        res[n]["blocks"] = k
        res[n]["block_bps"] = b / s if s else float("nan")
        # Prometheus' blocks keep chunks and index apart; ours are one `data` file.
        res[n]["chunk_bps"] = c / s if s and c else float("nan")
        res[n]["index_per_series"] = x / ser if ser and x else float("nan")
        res[n]["dir_bytes"] = dir_bytes(f"{d}/{sub}")
        res[n]["dir_bps"] = res[n]["dir_bytes"] / (res[n]["ingest"] * wall + 1e-9) if res[n]["ingest"] else float("nan")
    o, p = res["osprey"], res["prometheus"]
    print(f"fleet: {targets} targets x {series} series (+5 synthetic) = {active} active series, 1 s interval, "
          f"measured {wall:.0f} s, both running at once; simulator {(sim1 - sim0) / HZ / wall:.2f} cores")
    print(f"{'':28}{'osprey':>14}{'prometheus':>14}{'ratio':>10}")
    def row(label, key, fmt, scale=1.0):
        a, b = o[key] * scale, p[key] * scale
        ratio = a / b if b else float("nan")
        print(f"{label:28}{fmt.format(a):>14}{fmt.format(b):>14}{ratio:>10.2f}")
    row("CPU (cores)", "cores", "{:.3f}")
    row("RSS mean (MiB)", "rss_mean", "{:.1f}", 1 / 2**20)
    row("RSS peak (MiB)", "rss_peak", "{:.1f}", 1 / 2**20)
    row("RSS per active series (B)", "rss_per_series", "{:.0f}")
    row("samples ingested / s", "ingest", "{:.0f}")
    row("scrapes in window", "scrapes", "{:.0f}")
    row("failed scrapes", "failed", "{:.0f}")
    row("head series", "head_series", "{:.0f}")
    row("blocks written", "blocks", "{:.0f}")
    row("block bytes / sample (2m)", "block_bps", "{:.3f}")
    row("  of which chunks / sample", "chunk_bps", "{:.3f}")
    row("  index bytes / series", "index_per_series", "{:.0f}")
    row("data dir bytes / sample", "dir_bps", "{:.3f}")
    ok = lambda c: "met" if c else "MISSED"
    print(f"targets: CPU <= 0.5x Prometheus: {ok(o['cores'] <= 0.5 * p['cores'])} ({o['cores'] / p['cores']:.2f}x); "
          f"RSS <= 1 KB/series: {ok(o['rss_per_series'] <= 1024)} ({o['rss_per_series']:.0f} B); "
          f"disk <= 1.3 B/sample: {ok(o['block_bps'] <= 1.3)} ({o['block_bps']:.3f} B in the run's blocks, index included)")
finally:
    for p in (promp, ourp, simp):
        if p.poll() is None:
            p.terminate()
            try: p.wait(timeout=60)
            except Exception: p.kill()
    if os.environ.get("KEEP_DATA"):
        print(f"data kept in {d}")
    else:
        shutil.rmtree(d, ignore_errors=True)
PY
