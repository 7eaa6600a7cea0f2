#!/usr/bin/env python3
"""One wrk run against a ledge edge, with the CPU each side spent per request.

    wrk_cpu.py PORT HOST SECONDS CONNS [EDGE_PID DATA_DIR]

Prints one line: req/s, p50 µs, p99 µs, non-2xx responses; with EDGE_PID and DATA_DIR also the
CPU µs per request of the edge process (every thread), of its function workers (the processes
running a file under DATA_DIR, as each worker's bootstrap is), of wrk itself, and
the machine's idle share (%). CPU times come from /proc and from wrk's own rusage.
"""
import os
import re
import resource
import subprocess
import sys

TICK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid):
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / TICK
    except (FileNotFoundError, ProcessLookupError, IndexError):
        return 0.0


def workers(data_dir, edge_pid):
    """Processes running a file under DATA_DIR (a worker's bootstrap), the edge itself aside."""
    inside = data_dir.rstrip("/").encode() + b"/"
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                if int(pid) != edge_pid and inside in f.read():
                    found.append(int(pid))
        except OSError:
            pass
    return found


def idle():
    with open("/proc/stat") as f:
        cpu = [int(x) for x in f.readline().split()[1:9]]
    return cpu[3] + cpu[4], sum(cpu)


def us(value):
    m = re.match(r"([\d.]+)(us|ms|s)$", value)
    if not m:
        sys.exit(f"cannot parse the latency {value!r}")
    n, unit = m.groups()
    return float(n) * {"us": 1, "ms": 1e3, "s": 1e6}[unit]


def main():
    port, host, seconds, conns = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    edge_pid, data_dir = (int(sys.argv[5]), sys.argv[6]) if len(sys.argv) > 6 else (None, None)
    pids = workers(data_dir, edge_pid) if data_dir else []
    before = (proc_cpu(edge_pid) if edge_pid else 0, sum(map(proc_cpu, pids)), idle())
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    out = subprocess.run(
        ["wrk", f"-t{min(conns, 2)}", f"-c{conns}", f"-d{seconds}s", "--latency",
         "-H", f"Host: {host}", f"http://127.0.0.1:{port}/1k.txt"],
        check=True, capture_output=True, text=True).stdout
    after_children = resource.getrusage(resource.RUSAGE_CHILDREN)
    after = (proc_cpu(edge_pid) if edge_pid else 0, sum(map(proc_cpu, pids)), idle())
    requests = int(re.search(r"(\d+) requests in", out).group(1))
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    p50 = us(re.search(r"^\s+50%\s+(\S+)", out, re.M).group(1))
    p99 = us(re.search(r"^\s+99%\s+(\S+)", out, re.M).group(1))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    line = f"{rps:.0f} {p50:.0f} {p99:.0f} {errors.group(1) if errors else 0}"
    if edge_pid:
        per = 1e6 / max(requests, 1)
        wrk = (after_children.ru_utime + after_children.ru_stime
               - children.ru_utime - children.ru_stime)
        idle_share = 100 * (after[2][0] - before[2][0]) / max(after[2][1] - before[2][1], 1)
        line += (f" {(after[0] - before[0]) * per:.1f} {(after[1] - before[1]) * per:.1f}"
                 f" {wrk * per:.1f} {idle_share:.1f}")
    print(line)


if __name__ == "__main__":
    main()
