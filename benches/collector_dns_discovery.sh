#!/usr/bin/env bash
# Discovery at fleet scale: a real dnsmasq serves NAMES SRV names × RECORDS records each
# (default 100 × 100 = 10 000 targets; one DNS answer cannot hold them all), osprey-collector
# discovers them through dns_sd_configs with `nameservers`, and the script prints the time from
# start until /api/v1/targets lists every target, the collector's CPU time and RSS. Run by hand:
#   bash benches/collector_dns_discovery.sh [NAMES] [RECORDS]
set -euo pipefail
cd "$(dirname "$0")/.."
NAMES="${1:-100}"
RECORDS="${2:-100}"
DNSMASQ="$(command -v dnsmasq || echo /usr/sbin/dnsmasq)"
[ -x "$DNSMASQ" ] || { echo "dnsmasq not installed (apt-get install dnsmasq-base)" >&2; exit 1; }
cargo build --release -q -p osprey-collector --bin osprey-collector
BIN="${CARGO_TARGET_DIR:-$PWD/target}/release/osprey-collector"
PYTHONPATH=benches python3 - "$BIN" "$DNSMASQ" "$NAMES" "$RECORDS" <<'PY'
import json, os, socket, subprocess, sys, tempfile, time, urllib.request
from benchlib import free_port

bin_, dnsmasq, names, records = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
HZ = os.sysconf("SC_CLK_TCK")

d = tempfile.mkdtemp(prefix="osprey-dns-bench-")
dns_port, web_port = free_port(), free_port()
with open(f"{d}/dnsmasq.conf", "w") as f:
    for n in range(names):
        for r in range(records):
            f.write(f"srv-host=_n{n}._tcp.fleet.test,h{n}-{r}.fleet.test,{9100 + r}\n")
dns = subprocess.Popen([dnsmasq, "--keep-in-foreground", "--no-resolv", "--no-hosts", f"--conf-file={d}/dnsmasq.conf",
                        "--pid-file=", "--bind-interfaces", "--listen-address=127.0.0.1", f"--port={dns_port}"])
time.sleep(1)
name_list = ", ".join(f'"_n{n}._tcp.fleet.test"' for n in range(names))
with open(f"{d}/collector.toml", "w") as f:
    f.write(f'[[scrape_configs]]\njob_name = "fleet"\ndns_sd_configs = [{{ names = [{name_list}], refresh_interval = "30s", nameservers = ["127.0.0.1:{dns_port}"] }}]\n')
want = names * records
t0 = time.monotonic()
col = subprocess.Popen([bin_, f"--config={d}/collector.toml", f"--data-dir={d}/data", f"--web.listen-address=127.0.0.1:{web_port}",
                        "--discovery.debounce=100ms", "--log.level=warn"])
found, elapsed = 0, None
try:
    while time.monotonic() - t0 < 120:
        try:
            body = urllib.request.urlopen(f"http://127.0.0.1:{web_port}/api/v1/targets", timeout=10).read()
            found = len(json.loads(body)["data"]["activeTargets"])
            if found == want:
                elapsed = time.monotonic() - t0
                break
        except Exception:
            pass
        time.sleep(0.2)
    st = open(f"/proc/{col.pid}/stat").read().rsplit(")", 1)[1].split()
    cpu = (int(st[11]) + int(st[12])) / HZ
    rss = next(int(l.split()[1]) for l in open(f"/proc/{col.pid}/status") if l.startswith("VmRSS:"))
finally:
    col.terminate(); dns.terminate(); col.wait(); dns.wait()
print(f"targets: {found}/{want} ({names} names x {records} SRV records)")
print(f"time to all targets listed: {elapsed:.2f} s" if elapsed else "time to all targets listed: not reached in 120 s")
print(f"collector CPU (user+sys): {cpu:.2f} s, RSS: {rss / 1024:.1f} MiB")
PY
