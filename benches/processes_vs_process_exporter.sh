#!/usr/bin/env bash
# Process groups: osprey-agent's `processes` collector beside Debian's
# prometheus-process-exporter on the same 200 processes in 10 groups (20 each, matched by comm),
# same machine, same moment. Scrapes each N times interleaved and prints CPU time per scrape
# (utime+stime from /proc/PID/stat), wall time per scrape, RSS after and the ratios.
# process-exporter runs twice: with its defaults (-gather-smaps=true: reads smaps_rollup per
# process) and with -gather-smaps=false, which is the same work as the agent's default.
# Run by hand, not in CI:
#   bash benches/processes_vs_process_exporter.sh [SCRAPES]        (default 300)
set -euo pipefail
cd "$(dirname "$0")/.."
SCRAPES="${1:-300}"
PE="$(command -v prometheus-process-exporter || true)"
[ -n "$PE" ] || { echo "prometheus-process-exporter not installed (apt-get install prometheus-process-exporter)" >&2; exit 1; }
cargo build --release -q -p exporters --bin osprey-agent
TARGET="${CARGO_TARGET_DIR:-$PWD/target}"
AGENT="$TARGET/release/osprey-agent"

PYTHONPATH=benches python3 - "$AGENT" "$PE" "$SCRAPES" <<'PY'
import os, shutil, signal, socket, subprocess, sys, tempfile, time, urllib.request
from benchlib import free_port, cpu_ticks, rss

agent, pe, scrapes = sys.argv[1], sys.argv[2], int(sys.argv[3])
HZ = os.sysconf("SC_CLK_TCK")
GROUPS, PER_GROUP = 10, 20
tmp = tempfile.mkdtemp(prefix="osprey-bench-proc-")

def scrape(port):
    t = time.perf_counter()
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=30) as r:
        body = r.read()
    return time.perf_counter() - t, body

kids = []
names = [f"ospbench{g}" for g in range(GROUPS)]
for n in names:
    exe = os.path.join(tmp, n)
    shutil.copy("/bin/sleep", exe)
    for _ in range(PER_GROUP):
        kids.append(subprocess.Popen([exe, "3600"]))
toml = "".join(f'[[processes.group]]\nname = "{{{{.Comm}}}}"\ncomm = ["{n}"]\n\n' for n in names)
yml = "process_names:\n" + "".join(f'  - name: "{{{{.Comm}}}}"\n    comm: [{n}]\n' for n in names)
open(os.path.join(tmp, "agent.toml"), "w").write(toml)
open(os.path.join(tmp, "pe.yml"), "w").write(yml)

runs = {
    "osprey-agent": lambda port: [agent, "--collector.disable-defaults", f"--config={tmp}/agent.toml",
                                  f"--web.listen-address=127.0.0.1:{port}"],
    "process-exporter": lambda port: [pe, f"-config.path={tmp}/pe.yml", f"-web.listen-address=127.0.0.1:{port}"],
    "process-exporter -gather-smaps=false": lambda port: [pe, f"-config.path={tmp}/pe.yml", "-gather-smaps=false",
                                                          f"-web.listen-address=127.0.0.1:{port}"],
}
procs = {}
try:
    for name, argv in runs.items():
        port = free_port()
        p = subprocess.Popen(argv(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(200):
            try:
                scrape(port); break
            except Exception:
                time.sleep(0.05)
        procs[name] = (p, port)
    for _ in range(5):
        for p, port in procs.values():
            scrape(port)
    # Sanity: every exporter sees 10 groups of 20.
    for name, (p, port) in procs.items():
        body = scrape(port)[1].decode()
        counts = [l for l in body.splitlines() if l.startswith("namedprocess_namegroup_num_procs{")]
        assert len(counts) == GROUPS and all(l.endswith(f" {PER_GROUP}") for l in counts), (name, counts)
    nprocs = len([d for d in os.listdir("/proc") if d.isdigit()])
    stats = {n: {"cpu0": cpu_ticks(p.pid), "wall": 0.0} for n, (p, _) in procs.items()}
    for _ in range(scrapes):
        for n, (p, port) in procs.items():
            stats[n]["wall"] += scrape(port)[0]
    res = {}
    for n, (p, port) in procs.items():
        cpu = (cpu_ticks(p.pid) - stats[n]["cpu0"]) / HZ / scrapes
        res[n] = (cpu * 1000, stats[n]["wall"] / scrapes * 1000, rss(p.pid) / 1e6)
finally:
    for p, _ in procs.values():
        p.terminate(); p.wait()
    for k in kids:
        k.kill(); k.wait()
    shutil.rmtree(tmp, ignore_errors=True)

print(f"{GROUPS} groups x {PER_GROUP} processes (matched by comm), {nprocs} processes on the host; "
      f"{scrapes} scrapes each, interleaved\n")
print(f"| {'':<52} | {'CPU ms/scrape':>13} | {'wall ms/scrape':>14} | {'RSS MB after':>12} |")
print(f"|{'-'*54}|{'-'*15}|{'-'*16}|{'-'*14}|")
for n, (c, w, r) in res.items():
    print(f"| {n:<52} | {c:>13.3f} | {w:>14.3f} | {r:>12.1f} |")
a = res["osprey-agent"]
for n in list(res)[1:]:
    e = res[n]
    ratio = lambda x, y: (x / y) if y else float("nan")
    print(f"| {'ratio agent / ' + n:<52} | {ratio(a[0], e[0]):>12.3f}x | {ratio(a[1], e[1]):>13.3f}x | {ratio(a[2], e[2]):>11.3f}x |")
PY
