#!/usr/bin/env python3
"""Two (or more) metaproxy binaries side by side: req/s and the proxy's CPU
per request, alternated over rounds so a noisy machine hits them alike.

    BIN=target/release python3 benches/compare/ab.py dubbo 60000 \\
        old=/path/to/old/metaproxy new=target/dist/metaproxy

For each round and binary: an echo upstream (benches/loadgen) on core 0,
the proxy with one worker on core 1, a 5 000-request warm-up, then
`loadgen -c 8 -n N` on core 0; CPU is the proxy's utime+stime over the
measured requests. Protocols: dubbo, thrift, http1.
"""

import os
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "callgrind"))
from instructions import free_port, write_config  # noqa: E402

TOOLS = os.environ.get("BIN", os.path.join(os.path.dirname(__file__), "..", "..", "target", "release"))
ROUNDS = int(os.environ.get("ROUNDS", 3))


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run(binary, proto, n, tmp):
    listener = "http" if proto == "http1" else proto
    upstream = subprocess.Popen(
        ["taskset", "-c", "0", os.path.join(TOOLS, "echo-upstream"), "-p", listener],
        stdout=subprocess.PIPE, text=True)
    address = upstream.stdout.readline().split("=", 1)[1].strip()
    port = free_port()
    config = write_config(tmp, proto, port, address)
    proxy = subprocess.Popen(
        ["taskset", "-c", "1", binary, "--workers", "1", "--log", "warn", "run", "-c", config],
        stdout=subprocess.PIPE, text=True)
    while proxy.stdout.readline().strip() not in ("ready", ""):
        pass
    load = [os.path.join(TOOLS, "loadgen"), "-p", proto, "-a", f"127.0.0.1:{port}", "-c", "8"]
    subprocess.run(load + ["-n", "5000"], capture_output=True, check=True)
    cpu0, t0 = cpu_seconds(proxy.pid), time.time()
    subprocess.run(["taskset", "-c", "0"] + load + ["-n", str(n)], capture_output=True, check=True)
    elapsed, cpu = time.time() - t0, cpu_seconds(proxy.pid) - cpu0
    proxy.terminate()
    proxy.wait()
    upstream.kill()
    return n / elapsed, cpu / n * 1e6


def main():
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    proto, n = sys.argv[1], int(sys.argv[2])
    binaries = dict(arg.split("=", 1) for arg in sys.argv[3:])
    results = {name: [] for name in binaries}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(ROUNDS):
            for name, binary in binaries.items():
                results[name].append(run(binary, proto, n, tmp))
    for name, runs in results.items():
        rates = sorted(r for r, _ in runs)
        cpus = sorted(c for _, c in runs)
        print(f"{proto:7} {name:12} median {rates[len(rates) // 2]:8.0f} req/s "
              f"{cpus[len(cpus) // 2]:5.1f} us CPU/req   rounds: "
              + "  ".join(f"{r:.0f}/{c:.1f}" for r, c in runs))


if __name__ == "__main__":
    main()
