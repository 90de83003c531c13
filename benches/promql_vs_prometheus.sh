#!/usr/bin/env bash
# Times the issue's PromQL queries on the same data in Debian's Prometheus and in Osprey's
# API (collector/examples/api_serve.rs), one after the other on this machine, and prints the
# median latency of each, the ratio ours/Prometheus (target <= 0.5) and both peak RSS values.
# Data: SERIES counter series (job x instance) plus a 10-bucket histogram per job, one sample
# every 60 s for HOURS hours, written as OpenMetrics; Prometheus gets it through
# `promtool tsdb create-blocks-from openmetrics`, Osprey through `import_openmetrics`.
# Run by hand, not in CI:
#   bash benches/promql_vs_prometheus.sh [SERIES] [HOURS] [RUNS]      (default 10000 24 5)
set -euo pipefail
cd "$(dirname "$0")/.."
SERIES="${1:-10000}"
HOURS="${2:-24}"
RUNS="${3:-5}"
PROM="$(command -v prometheus || true)"
PROMTOOL="$(command -v promtool || true)"
[ -n "$PROM" ] && [ -n "$PROMTOOL" ] || { echo "prometheus/promtool not installed (apt-get install prometheus)" >&2; exit 1; }
cargo build --profile bench -q -p osprey-collector --example api_serve
OURS="${CARGO_TARGET_DIR:-$PWD/target}/release/examples/api_serve"

python3 - "$OURS" "$PROM" "$PROMTOOL" "$SERIES" "$HOURS" "$RUNS" <<'PY'
import json, os, shutil, socket, statistics, subprocess, sys, tempfile, time, urllib.parse, urllib.request

ours, prom, promtool, series, hours, runs = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
d = tempfile.mkdtemp(prefix="promql-bench-")
base = 1_699_999_200
points = hours * 60
end = base + (points - 1) * 60

def free_port():
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p

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

om = os.path.join(d, "data.om")
t0 = time.time()
with open(om, "w") as f:
    f.write("# TYPE x counter\n")
    jobs = 10
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
print(f"data: {series} series + {jobs * 10} buckets x {points} samples ({os.path.getsize(om) >> 20} MiB OpenMetrics, {time.time() - t0:.0f}s)")

prom_dir = os.path.join(d, "prom")
subprocess.run([promtool, "tsdb", "create-blocks-from", "openmetrics", om, prom_dir], check=True, stdout=subprocess.DEVNULL)
cfg = os.path.join(d, "prometheus.yml")
open(cfg, "w").write("global:\n  scrape_interval: 1h\n")
pp, op = free_port(), free_port()
log = open(os.path.join(d, "prom.log"), "w")
p = subprocess.Popen([prom, f"--config.file={cfg}", f"--storage.tsdb.path={prom_dir}", f"--web.listen-address=127.0.0.1:{pp}",
                      "--storage.tsdb.retention.time=100y"], stdout=log, stderr=log)
o = subprocess.Popen([ours, om, os.path.join(d, "osprey"), f"127.0.0.1:{op}"], stderr=open(os.path.join(d, "ours.log"), "w"))
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
    print(f"{'query':40} {'prometheus ms':>14} {'osprey ms':>10} {'ratio':>7}")
    for name, ep, params in queries:
        body = urllib.parse.urlencode(params).encode()
        res = {}
        for label, port in (("prom", pp), ("ours", op)):
            times = []
            for _ in range(runs):
                t1 = time.perf_counter()
                r = json.load(urllib.request.urlopen(f"http://127.0.0.1:{port}/api/v1/{ep}", data=body, timeout=600))
                times.append((time.perf_counter() - t1) * 1000)
                if r.get("status") != "success":
                    raise SystemExit(f"{label} {name}: {r}")
            res[label] = (statistics.median(times), len(r["data"]["result"]))
        if res["prom"][1] != res["ours"][1]:
            print(f"  WARNING {name}: result sizes differ: prometheus {res['prom'][1]} vs osprey {res['ours'][1]}")
        print(f"{name:40} {res['prom'][0]:14.1f} {res['ours'][0]:10.1f} {res['ours'][0] / res['prom'][0]:7.2f}")
    print(f"peak RSS: prometheus {peak_rss_mb(p.pid):.0f} MiB, osprey {peak_rss_mb(o.pid):.0f} MiB")
finally:
    p.terminate(); o.terminate(); p.wait(); o.wait()
    shutil.rmtree(d, ignore_errors=True)
PY
