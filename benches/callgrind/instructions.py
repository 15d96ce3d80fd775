#!/usr/bin/env python3
"""Instructions per proxied request, counted by callgrind: stable on a
noisy machine, so two builds can be compared to the percent.

    cargo build --profile dist -p metaproxy && cargo build --release -p metaproxy-loadgen
    python3 benches/callgrind/instructions.py --bin new=target/dist/metaproxy \\
        --bin old=/path/to/other/metaproxy dubbo thrift http1

For each binary and protocol: an echo upstream (benches/loadgen), the proxy
under `valgrind --tool=callgrind` with one worker, and `loadgen -c 8 -n N`
for N = 2000 and N = 6000; the difference of the two totals divided by 4000
is the cost of one request, start-up and shutdown cancelled out.
"""

import argparse
import glob
import os
import signal
import socket
import subprocess
import tempfile

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
TOOLS = os.environ.get("BIN", os.path.join(ROOT, "target", "release"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def write_config(tmp, proto, port, address):
    """A one-route config: listener on `port`, one cluster at `address`."""
    config = os.path.join(tmp, f"{proto}.yaml")
    with open(config, "w") as f:
        f.write(f"""listeners:
  - name: bench
    address: 127.0.0.1:{port}
    protocol: {"http" if proto == "http1" else proto}
    routes: [ {{ route: {{ cluster: echo }} }} ]
clusters:
  - {{ name: echo, protocol: {proto}, endpoints: [ {{ address: "{address}" }} ] }}
""")
    return config


def total_instructions(binary, proto, n, tmp):
    upstream = subprocess.Popen(
        [os.path.join(TOOLS, "echo-upstream"), "-p", "http" if proto == "http1" else proto],
        stdout=subprocess.PIPE, text=True)
    address = upstream.stdout.readline().split("=", 1)[1].strip()
    port = free_port()
    config = write_config(tmp, proto, port, address)
    out = os.path.join(tmp, f"callgrind.{proto}.{n}")
    proxy = subprocess.Popen(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", binary,
         "--workers", "1", "--log", "warn", "run", "-c", config],
        stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    while True:
        line = proxy.stdout.readline()
        if not line or line.strip() == "ready":
            break
    subprocess.run([os.path.join(TOOLS, "loadgen"), "-p", proto, "-a", f"127.0.0.1:{port}",
                    "-c", "8", "-n", str(n), "--json"], capture_output=True, check=True)
    proxy.send_signal(signal.SIGTERM)
    proxy.wait()
    upstream.kill()
    total = 0
    for path in glob.glob(out + "*"):
        with open(path) as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total = max(total, int(line.split()[1]))
    return total


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--bin", action="append", default=[],
                   help="NAME=PATH of a metaproxy binary (repeat to compare; default: target/dist)")
    p.add_argument("protocols", nargs="*", default=["dubbo", "thrift", "http1"])
    a = p.parse_args()
    bins = [b.split("=", 1) for b in a.bin] or [["dist", os.path.join(ROOT, "target", "dist", "metaproxy")]]
    with tempfile.TemporaryDirectory() as tmp:
        for proto in a.protocols:
            for name, path in bins:
                low = total_instructions(path, proto, 2000, tmp)
                high = total_instructions(path, proto, 6000, tmp)
                print(f"{proto:7} {name:8} {(high - low) / 4000:9.0f} instructions/request", flush=True)


if __name__ == "__main__":
    main()
