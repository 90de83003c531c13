#!/usr/bin/env bash
# Times the issue's PromQL queries on the same data in Debian's Prometheus and in Osprey's
# API (collector/examples/api_serve.rs), one after the other on this machine, and prints the
# median latency of each, the ratio ours/Prometheus (target <= 0.5) and both peak RSS values.
# Data: SERIES counter series (job x instance) plus a 10-bucket histogram per job, one sample
# every 60 s for HOURS hours, written as OpenMetrics; Prometheus gets it through
# `promtool tsdb create-blocks-from openmetrics`, Osprey through `import_openmetrics`.
# Each query runs once per side to warm up, then RUNS times alternating Prometheus and Osprey
# (so load from other processes on this shared machine hits both alike); the table shows the
# median wall time of each side, the ratio, and each side's median CPU time per query (from
# /proc/PID/task/*/schedstat, less sensitive to that load; a thread that ends mid-query drops
# out of the sum). Run by hand, not in CI:
#   bash benches/promql_vs_prometheus.sh [SERIES] [HOURS] [RUNS]      (default 10000 24 7)
# PROMQL_BENCH_DIR=DIR keeps the generated data (OpenMetrics file, both data directories) in DIR
# and reuses it on the next run with the same SERIES and HOURS.
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES="${1:-10000}"
HOURS="${2:-24}"
RUNS="${3:-7}"
PROM="$(command -v prometheus || true)"
PROMTOOL="$(command -v promtool || true)"
[ -n "$PROM" ] && [ -n "$PROMTOOL" ] || { echo "prometheus/promtool not installed (apt-get install prometheus)" >&2; exit 1; }
cargo build --profile bench -q -p osprey-collector --example api_serve
OURS="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/api_serve"

python3 - "$OURS" "$PROM" "$PROMTOOL" "$SERIES" "$HOURS" "$RUNS" <<'PY'
import http.client, json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.parse, urllib.request

ours, prom, promtool, series, hours, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
keep = os.environ.get("PROMQL_BENCH_DIR")
d = os.path.join(keep, f"{series}x{hours}h") if keep else tempfile.mkdtemp(prefix="promql-bench-")
os.makedirs(d, exist_ok=True)
base = 1_699_999_200
points = hours * 60
end = base + (points - 1) * 60

def free_ports(n):
    # Held open together, so the two servers never get the same port.
    socks = [socket.socket() for _ in range(n)]
    for s in socks:
        s.bind(("127.0.0.1", 0))
    ports = [s.getsockname()[1] for s in socks]
    for s in socks:
        s.close()
    return ports

def wait_ready(port, path):
    for _ in range(600):
        try:
            urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=2); return
        except Exception:
            time.sleep(0.5)
    raise SystemExit(f"port {port} never became ready")

def peak_rss_mb(pid):
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")

def cpu_ms(pid):
    # Nanoseconds on CPU summed over the process's threads (/proc/PID/stat counts 10 ms ticks,
    # too coarse for queries of a few ms).
    total = 0
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            total += int(open(f"/proc/{pid}/task/{tid}/schedstat").read().split()[0])
        except (OSError, ValueError):
            pass  # the thread ended
    return total / 1e6

om = os.path.join(d, "data.om")
t0 = time.time()
jobs = 10
if os.path.exists(om + ".done"):
    print(f"data: reusing {d}")
else:
  with open(om, "w") as f:
      f.write("# TYPE x counter\n")
      for s in range(series):
          job, inst = s % jobs, s // jobs
          slope = 1 + (s * 7919) % 97
          lines = [f'x_total{{instance="i{inst}",job="j{job}"}} {slope * i} {base + i * 60}\n' for i in range(points)]
          f.writelines(lines)
      f.write("# TYPE lat_seconds histogram\n")
      for job in range(jobs):
          for k, le in enumerate(["0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "+Inf"]):
              f.writelines(f'lat_seconds_bucket{{job="j{job}",le="{le}"}} {(k + 1) * (job + 1) * i} {base + i * 60}\n' for i in range(points))
      f.write("# EOF\n")
  open(om + ".done", "w").close()
  print(f"data: {series} series + {jobs * 10} buckets x {points} samples ({os.path.getsize(om) >> 20} MiB OpenMetrics, {time.time() - t0:.0f}s)")

prom_dir = os.path.join(d, "prom")
if not os.path.exists(prom_dir):
    subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, prom_dir + ".tmp"], check=True, stdout=subprocess.DEVNULL)
    os.rename(prom_dir + ".tmp", prom_dir)
osprey_dir = os.path.join(d, "osprey")
if not os.path.exists(osprey_dir + ".done"):
    shutil.rmtree(osprey_dir, ignore_errors=True)
    subprocess.run([ours, om, osprey_dir, "import-only"], check=True, stderr=subprocess.DEVNULL)
    open(osprey_dir + ".done", "w").close()
cfg = os.path.join(d, "prometheus.yml")
open(cfg, "w").write("global:\n  scrape_interval: 1h\n")
pp, op = free_ports(2)
log = open(os.path.join(d, "prom.log"), "w")
p = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={prom_dir}", f"--web.listen-address=127.0.0.1:{pp}",
                      "--storage.tsdb.retention.time=100y"], stdout=log, stderr=log)
o = subprocess.Popen([ours, "-", osprey_dir, f"127.0.0.1:{op}"], stderr=open(os.path.join(d, "ours.log"), "w"))
try:
    wait_ready(pp, "/-/ready")
    wait_ready(op, "/api/v1/status/buildinfo")
    t = end - 30
    queries = [
        ("rate(x[5m]) instant", "query", {"query": "rate(x_total[5m])", "time": t}),
        ("sum by (job) (rate) instant", "query", {"query": "sum by (job) (rate(x_total[5m]))", "time": t}),
        ("histogram_quantile 0.99", "query", {"query": "histogram_quantile(0.99, sum by (le) (rate(lat_seconds_bucket[5m])))", "time": t}),
        ("topk(10, rate) instant", "query", {"query": "topk(10, rate(x_total[5m]))", "time": t}),
        (f"sum by (job) (rate) {hours}h range @60s", "query_range",
         {"query": "sum by (job) (rate(x_total[5m]))", "start": base + 600 + 30, "end": t, "step": 60}),
    ]
    print(f"{'query':40} {'prometheus ms':>14} {'osprey ms':>10} {'ratio':>7} {'prom cpu ms':>12} {'osprey cpu ms':>14}")
    procs = (("prom", pp, p.pid), ("ours", op, o.pid))
    # One kept-alive connection per server, as Grafana's data source uses: connection setup
    # would otherwise be a large share of the ~1 ms queries.
    conns = {label: http.client.HTTPConnection("127.0.0.1", port, timeout=600) for label, port, _ in procs}
    for name, ep, params in queries:
        body = urllib.parse.urlencode(params).encode()
        times = {"prom": [], "ours": []}
        cpus = {"prom": [], "ours": []}
        sizes = {}
        for rep in range(runs + 1):
            for label, port, pid in procs:
                c0 = cpu_ms(pid)
                t1 = time.perf_counter()
                c = conns[label]
                c.request("POST", f"/api/v1/{ep}", body, {"Content-Type": "application/x-www-form-urlencoded"})
                raw = c.getresponse().read()
                dt = (time.perf_counter() - t1) * 1000  # until the last byte; parsing is not timed
                r = json.loads(raw)
                if r.get("status") != "success":
                    raise SystemExit(f"{label} {name}: {r}")
                sizes[label] = len(r["data"]["result"])
                if rep > 0:  # the first round warms caches
                    times[label].append(dt)
                    cpus[label].append(cpu_ms(pid) - c0)
        if sizes["prom"] != sizes["ours"]:
            print(f"  WARNING {name}: result sizes differ: prometheus {sizes['prom']} vs osprey {sizes['ours']}")
        mp, mo = statistics.median(times["prom"]), statistics.median(times["ours"])
        cp, co = statistics.median(cpus["prom"]), statistics.median(cpus["ours"])
        print(f"{name:40} {mp:14.1f} {mo:10.1f} {mo / mp:7.2f} {cp:12.1f} {co:14.1f}", flush=True)
    print(f"peak RSS: prometheus {peak_rss_mb(p.pid):.0f} MiB, osprey {peak_rss_mb(o.pid):.0f} MiB")
finally:
    p.terminate(); o.terminate(); p.wait(); o.wait()
    if not keep:
        shutil.rmtree(d, ignore_errors=True)
PY
