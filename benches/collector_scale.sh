#!/usr/bin/env bash
# osprey-collector at fleet scale (issue 7's scale run): the fleet simulator serves
# NAMES x RECORDS targets (default 100 x 100 = 10 000) x SERIES series (default 100); a real
# dnsmasq serves them as NAMES SRV names of RECORDS records each (one DNS answer cannot hold
# 10 000), the SRV targets being `localhost:<port>`; the collector discovers them through
# dns_sd_configs with `nameservers` and scrapes every 15 s for MINUTES (default 5). Prints:
#   discovery time (start until /api/v1/targets lists every target), time until every target
#   has been scraped (count(up == 1) through the query API), scrape-schedule jitter over the
#   measured window from the collector's `osprey_scrape_start_lateness_seconds` histogram
#   (p50/p99/p99.9, linear within buckets as histogram_quantile), skipped ticks, failed scrapes,
#   scrapes per second, CPU cores, RSS (and per active series).
# Descriptors: the collector holds one keep-alive connection per target, a simulator two per
# target (listener and connection), so the fleet is split over several simulators; the script
# raises the soft limit to the hard one and needs it above targets + 1000.
# Run by hand, not in CI:
#   bash benches/collector_scale.sh [NAMES] [RECORDS] [SERIES] [MINUTES]
set -euo pipefail
cd "$(dirname "$0")/.."
NAMES="${1:-100}"
RECORDS="${2:-100}"
SERIES="${3:-100}"
MINUTES="${4:-5}"
DNSMASQ="$(command -v dnsmasq || echo /usr/sbin/dnsmasq)"
[ -x "$DNSMASQ" ] || { echo "dnsmasq not installed (apt-get install dnsmasq-base)" >&2; exit 1; }
need=$(( NAMES * RECORDS + 1000 ))  # the collector's connections; simulators are split
ulimit -n "$(ulimit -Hn)"
[ "$(ulimit -n)" = unlimited ] || [ "$(ulimit -n)" -ge "$need" ] || {
  echo "file descriptor limit $(ulimit -n) is below $need (raise the hard limit: ulimit -Hn)" >&2; exit 1; }
cargo build --profile bench -q -p osprey-collector --bin osprey-collector -p osprey-scrape --bin osprey-fleet-sim
BIN_DIR="${CARGO_TARGET_DIR:-$PWD/target}/release"

PYTHONPATH=benches python3 - "$BIN_DIR" "$DNSMASQ" "$NAMES" "$RECORDS" "$SERIES" "$MINUTES" <<'PY'
import json, os, shutil, socket, subprocess, sys, tempfile, time, urllib.parse, urllib.request
from benchlib import free_port, cpu_ticks

bin_dir, dnsmasq, names, records, series, minutes = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), float(sys.argv[6])
HZ = os.sysconf("SC_CLK_TCK")
want = names * records
d = tempfile.mkdtemp(prefix="osprey-scale-")

def rss(pid):
    return next(int(l.split()[1]) * 1024 for l in open(f"/proc/{pid}/status") if l.startswith("VmRSS:"))

def get(port, path, timeout=60):
    return urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=timeout).read()

def query(port, expr):
    r = json.loads(get(port, "/api/v1/query?query=" + urllib.parse.quote(expr)))["data"]["result"]
    return float(r[0]["value"][1]) if r else 0.0

def metrics(port):
    """name{labels} -> value of the collector's /metrics."""
    out = {}
    for l in get(port, "/metrics").decode().splitlines():
        if l and not l.startswith("#"):
            k, v = l.rsplit(" ", 1)
            out[k] = float(v)
    return out

def lateness(m):
    b = {k: v for k, v in m.items() if k.startswith("osprey_scrape_start_lateness_seconds_bucket")}
    return sorted((float(k.split('le="')[1].split('"')[0]), v) for k, v in b.items())

def quantile(q, buckets):
    """histogram_quantile over cumulative (le, count) pairs."""
    total = buckets[-1][1]
    if total <= 0: return float("nan")
    rank, prev_le, prev_c = q * total, 0.0, 0.0
    for le, c in buckets:
        if c >= rank:
            if le == float("inf"): return prev_le
            return prev_le + (le - prev_le) * ((rank - prev_c) / (c - prev_c) if c > prev_c else 0)
        prev_le, prev_c = le, c
    return prev_le

# Each simulated target costs its simulator two descriptors (listener and the collector's
# keep-alive connection): split the fleet so that every simulator stays under the limit.
import resource
per_sim = max(1, (resource.getrlimit(resource.RLIMIT_NOFILE)[0] - 1000) // 2)
sims, ports = [], []
for i, start in enumerate(range(0, want, per_sim)):
    n = min(per_sim, want - start)
    p = subprocess.Popen([f"{bin_dir}/osprey-fleet-sim", f"--targets={n}", f"--series={series}",
                          f"--file-sd={d}/sim{i}.json"], stdout=subprocess.PIPE, text=True)
    print(p.stdout.readline().strip())
    for _ in range(600):
        if os.path.exists(f"{d}/sim{i}.json"): break
        time.sleep(0.1)
    ports += [int(t.rsplit(":", 1)[1]) for g in json.load(open(f"{d}/sim{i}.json")) for t in g["targets"]]
    sims.append(p)
dns_port, web_port = free_port(), free_port()
with open(f"{d}/dnsmasq.conf", "w") as f:
    for i, p in enumerate(ports):
        f.write(f"srv-host=_n{i // records}._tcp.fleet.test,localhost,{p}\n")
dns = subprocess.Popen([dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--conf-file={d}/dnsmasq.conf",
                        "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1", f"--port={dns_port}"])
time.sleep(1)
name_list = ", ".join(f'"_n{n}._tcp.fleet.test"' for n in range(names))
open(f"{d}/collector.toml", "w").write(f"""[global]
scrape_interval = "15s"
scrape_timeout = "10s"

[[scrape_configs]]
job_name = "fleet"
dns_sd_configs = [{{ names = [{name_list}], refresh_interval = "30s", nameservers = ["127.0.0.1:{dns_port}"] }}]
""")
log = open(f"{d}/collector.log", "w")
t0 = time.monotonic()
col = subprocess.Popen([f"{bin_dir}/osprey-collector", f"--config={d}/collector.toml", f"--data-dir={d}/data",
                        f"--web.listen-address=127.0.0.1:{web_port}", "--log.level=warn"], stdout=log, stderr=log)
try:
    t_disc = t_up = None
    while time.monotonic() - t0 < 300 and t_disc is None:
        if col.poll() is not None:
            sys.exit(f"the collector exited: {open(f'{d}/collector.log').read()[-2000:]}")
        try:
            if len(json.loads(get(web_port, "/api/v1/targets"))["data"]["activeTargets"]) == want:
                t_disc = time.monotonic() - t0
        except Exception: pass
        time.sleep(0.25)
    if t_disc is None: sys.exit(f"not all {want} targets discovered in 300 s (log {d}/collector.log)")
    while time.monotonic() - t0 < 300:
        try:
            if query(web_port, 'count(up{job="fleet"} == 1)') == want:
                t_up = time.monotonic() - t0; break
        except Exception: pass
        time.sleep(0.5)
    print(f"targets: {want} ({names} SRV names x {records} records) x {series} series at 15 s")
    print(f"discovery: all targets listed after {t_disc:.2f} s; all scraped and up after "
          + (f"{t_up:.1f} s" if t_up else "NOT within 300 s"))
    time.sleep(20)
    m0, c0, w0 = metrics(web_port), cpu_ticks(col.pid), time.time()
    rss_s = []
    while time.time() - w0 < minutes * 60:
        rss_s.append(rss(col.pid)); time.sleep(5)
    m1, c1, wall = metrics(web_port), cpu_ticks(col.pid), time.time() - w0
    l0, l1 = dict(lateness(m0)), lateness(m1)
    window = [(le, c - l0.get(le, 0)) for le, c in l1]
    scrapes = m1["osprey_scrapes_total"] - m0["osprey_scrapes_total"]
    failed = m1["osprey_scrapes_failed_total"] - m0["osprey_scrapes_failed_total"]
    skipped = m1["osprey_scrape_skipped_ticks_total"] - m0["osprey_scrape_skipped_ticks_total"]
    active = m1.get("prometheus_tsdb_head_series", 0)
    print(f"window: {wall:.0f} s; scrapes {scrapes:.0f} ({scrapes / wall:.1f}/s, expected {want / 15:.1f}/s), "
          f"failed {failed:.0f}, skipped ticks {skipped:.0f}")
    print("schedule lateness: p50 {:.1f} ms, p99 {:.1f} ms, p99.9 {:.1f} ms, max bucket {}".format(
        quantile(0.5, window) * 1e3, quantile(0.99, window) * 1e3, quantile(0.999, window) * 1e3,
        next((f"<= {le} s" for le, c in window if c >= window[-1][1]), "?")))
    print(f"collector: {(c1 - c0) / HZ / wall:.3f} cores; RSS mean {sum(rss_s) / len(rss_s) / 2**20:.0f} MiB, "
          f"peak {max(rss_s) / 2**20:.0f} MiB; head series {active:.0f} "
          f"({sum(rss_s) / len(rss_s) / max(active, 1):.0f} B RSS per series)")
    print(f"simulators: {sum(cpu_ticks(p.pid) for p in sims) / HZ:.1f} s CPU in all")
finally:
    for p in [col, dns] + sims:
        if p.poll() is None:
            p.terminate()
            try: p.wait(timeout=60)
            except Exception: p.kill()
    if os.environ.get("KEEP_DATA"): print(f"data kept in {d}")
    else: shutil.rmtree(d, ignore_errors=True)
PY
