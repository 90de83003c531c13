#!/usr/bin/env bash
# The systemd collector's cost: osprey-agent and Debian's prometheus-node-exporter, each with
# only its systemd collector, reading the same fake systemd (tests/fake_systemd.rs) with
# UNITS generated units on a private dbus-daemon (node_exporter via DBUS_SYSTEM_BUS_ADDRESS).
# Each exporter is scraped SCRAPES times in its own phase, so the CPU the bus daemon and the
# fake service spend answering it can be told apart too. Prints CPU per scrape (utime+stime
# from /proc/PID/stat), wall time per scrape and the ratios. Run by hand, not in CI:
#   bash benches/systemd_vs_node_exporter.sh [SCRAPES] [UNITS]     (defaults 100, 1000)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRAPES="${1:-100}"
UNITS="${2:-1000}"
NE="$(command -v prometheus-node-exporter || true)"
[ -n "$NE" ] || { echo "prometheus-node-exporter not installed (apt-get install prometheus-node-exporter)" >&2; exit 1; }
command -v dbus-daemon >/dev/null || { echo "dbus-daemon not installed (apt-get install dbus)" >&2; exit 1; }
cargo build --release -q -p exporters --bin osprey-agent -p osprey-tests --bin fake-systemd
TARGET="${CARGO_TARGET_DIR:-$PWD/target}/release"

PYTHONPATH=benches python3 - "$TARGET" "$NE" "$SCRAPES" "$UNITS" <<'PY'
import os, shutil, socket, subprocess, sys, tempfile, time, urllib.request
from benchlib import free_port

target, ne, scrapes, units = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
HZ = os.sysconf("SC_CLK_TCK")

def cpu(pid):
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / HZ

def scrape(port):
    t = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=60) as r:
        body = r.read().decode()
    return time.perf_counter() - t, body

tmp = tempfile.mkdtemp(prefix="osprey-bench-systemd-")
sock = os.path.join(tmp, "bus")
addr = f"unix:path={sock}"
procs = []
try:
    bus = subprocess.Popen(["dbus-daemon", "--session", "--nofork", "--nopidfile", f"--address={addr}"],
                           stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    procs.append(bus)
    while not os.path.exists(sock):
        time.sleep(0.02)
    fake = subprocess.Popen([f"{target}/fake-systemd", "--address", addr, "--units", str(units)],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    procs.append(fake)
    assert fake.stdout.readline().strip() == "READY"
    # Same unit selection for both (Debian's build adds `target` to the default exclude).
    flags = ["--collector.disable-defaults", "--collector.systemd",
             "--collector.systemd.unit-exclude=.+\\.(automount|device|mount|scope|slice)"]
    exporters = {
        "osprey-agent": ([f"{target}/osprey-agent", *flags, f"--collector.systemd.bus={addr}"], {}),
        "node_exporter": ([ne, *flags], {"DBUS_SYSTEM_BUS_ADDRESS": addr}),
    }
    res = {}
    for name, (argv, env) in exporters.items():
        port = free_port()
        p = subprocess.Popen([*argv, f"--web.listen-address=127.0.0.1:{port}"], env={**os.environ, **env},
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(p)
        for _ in range(400):
            try:
                scrape(port); break
            except Exception:
                time.sleep(0.05)
        for _ in range(3):
            _, body = scrape(port)
        ok = 'node_scrape_collector_success{collector="systemd"} 1' in body
        series = sum(1 for l in body.splitlines() if l.startswith("node_systemd_unit_state{"))
        c0 = {k: cpu(x.pid) for k, x in (("exporter", p), ("bus", bus), ("fake", fake))}
        wall = 0.0
        for _ in range(scrapes):
            w, _ = scrape(port)
            wall += w
        c1 = {k: cpu(x.pid) for k, x in (("exporter", p), ("bus", bus), ("fake", fake))}
        res[name] = {k: (c1[k] - c0[k]) / scrapes * 1000 for k in c0}
        res[name]["wall"] = wall / scrapes * 1000
        res[name]["ok"], res[name]["series"] = ok, series
        p.terminate(); p.wait()
    print(f"{units} generated units (+17 fixed), {scrapes} scrapes per exporter, systemd collector only\n")
    print(f"| {'':<14} | {'exporter CPU ms/scrape':>22} | {'dbus-daemon CPU ms':>18} | {'fake systemd CPU ms':>19} | {'wall ms/scrape':>14} | success | unit_state series |")
    print(f"|{'-'*16}|{'-'*24}|{'-'*20}|{'-'*21}|{'-'*16}|---------|-------------------|")
    for n in exporters:
        r = res[n]
        print(f"| {n:<14} | {r['exporter']:>22.2f} | {r['bus']:>18.2f} | {r['fake']:>19.2f} | {r['wall']:>14.2f} | {str(r['ok']):>7} | {r['series']:>17} |")
    a, e = res["osprey-agent"], res["node_exporter"]
    ratio = lambda x, y: (x / y) if y else float("nan")
    print(f"\nratio osprey/node_exporter: exporter CPU {ratio(a['exporter'], e['exporter']):.3f}x, "
          f"whole system CPU {ratio(a['exporter'] + a['bus'] + a['fake'], e['exporter'] + e['bus'] + e['fake']):.3f}x, "
          f"wall {ratio(a['wall'], e['wall']):.3f}x  (target: exporter CPU <= 0.2x)")
finally:
    for p in reversed(procs):
        p.terminate()
        try:
            p.wait(timeout=5)
        except Exception:
            p.kill()
    shutil.rmtree(tmp, ignore_errors=True)
PY
