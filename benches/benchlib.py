"""Process and port helpers shared by the bench scripts (imported from their Python heredocs;
each script runs from the repository root with PYTHONPATH=benches)."""
import json, socket, urllib.parse, urllib.request


def free_port():
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    s = socket.socket(); s.bind(("127.0.0.1", 0)); p = s.getsockname()[1]; s.close(); return p


def cpu_ticks(pid):
    """utime + stime of a process, in clock ticks, from /proc/PID/stat."""
    f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(f[11]) + int(f[12])


def rss(pid):
    """Resident set size in bytes (0 when /proc/PID/status has no VmRSS)."""
    for l in open(f"/proc/{pid}/status"):
        if l.startswith("VmRSS:"):
            return int(l.split()[1]) * 1024
    return 0


def query(port, expr, timeout=30, at=None):
    """First value of an instant PromQL query against 127.0.0.1:port (0.0 when empty),
    evaluated at Unix time `at` (default: now)."""
    u = f"http://127.0.0.1:{port}/api/v1/query?query=" + urllib.parse.quote(expr)
    if at is not None:
        u += f"&time={at:.3f}"
    r = json.load(urllib.request.urlopen(u, timeout=timeout))["data"]["result"]
    return float(r[0]["value"][1]) if r else 0.0
