#!/usr/bin/env python3
"""Instructions per proxied request, counted by callgrind: stable on a
noisy machine, so two builds can be compared to the percent.

    cargo build --profile dist -p metaproxy && cargo build --release -p metaproxy-loadgen
    python3 benches/callgrind/instructions.py --bin new=target/dist/metaproxy \\
        --bin old=/path/to/other/metaproxy dubbo thrift http1 h2 h2h2

For each binary and protocol: an echo upstream (benches/loadgen), the proxy
under `valgrind --tool=callgrind` with one worker, and `loadgen -c 8 -n N`
for N = 2000 and N = 6000; the difference of the two totals divided by 4000
is the cost of one request, start-up and shutdown cancelled out.

`h2` and `h2h2` load the proxy with h2load (4 connections x 32 streams, a
100 B POST body echoed) instead of loadgen: `h2` with an HTTP/1.1 upstream
(compare.py's h2-mux case), `h2h2` with an h2c upstream (h2-h2). `grpc` is
compare.py's grpc-unary case: h2load (4 x 32) calling bench.Echo/Unary
with a 100 B BytesValue on the grpc-go echo server (GO_BIN, default
target/go-bench/bin; benches/compare.sh builds it). `h2solo` is `h2` one
request at a time on one connection: what a request costs when nothing
else is in flight to share its wake-ups.
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
GO_BIN = os.environ.get("GO_BIN", os.path.join(ROOT, "target", "go-bench", "bin"))
H2LOAD = ("h2", "h2h2", "grpc", "h2solo")
# h2load's connections and streams per connection: 4 x 32, but for
# `h2solo`, one request at a time on one connection (the low-rate shape:
# nothing to batch, every request pays its own wake-ups).
H2LOAD_SHAPE = {"h2solo": ("1", "1")}


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# case -> (listener protocol, cluster protocol, echo-upstream protocol)
PROTOCOLS = {
    "http1": ("http", "http", "http"),
    "dubbo": ("dubbo", "dubbo", "dubbo"),
    "thrift": ("thrift", "thrift", "thrift"),
    "h2": ("http", "http1", "http"),
    "h2h2": ("http", "http2", "http"),
    "grpc": ("http", "http2", "grpc"),
    "h2solo": ("http", "http1", "http"),
}


def write_config(tmp, proto, port, address):
    """A one-route config: listener on `port`, one cluster at `address`."""
    listener, cluster, _ = PROTOCOLS[proto]
    config = os.path.join(tmp, f"{proto}.yaml")
    with open(config, "w") as f:
        f.write(f"""listeners:
  - name: bench
    address: 127.0.0.1:{port}
    protocol: {listener}
    routes: [ {{ route: {{ cluster: echo }} }} ]
clusters:
  - {{ name: echo, protocol: {cluster}, endpoints: [ {{ address: "{address}" }} ] }}
""")
    return config


def load(proto, port, n, tmp):
    """Sends `n` requests through the proxy listening on `port`."""
    if proto in H2LOAD:
        body = os.path.join(tmp, "body")
        path = "/echo"
        headers = []
        with open(body, "wb") as f:
            if proto == "grpc":
                # One gRPC message: a google.protobuf.BytesValue of 100 bytes.
                message = b"\x0a\x64" + b"x" * 100
                f.write(b"\x00" + len(message).to_bytes(4, "big") + message)
                path = "/bench.Echo/Unary"
                headers = ["-H", "content-type: application/grpc", "-H", "te: trailers"]
            else:
                f.write(b"x" * 100)
        conns, streams = H2LOAD_SHAPE.get(proto, ("4", "32"))
        cmd = ["h2load", "-n", str(n), "-c", conns, "-m", streams, "-d", body, *headers,
               f"http://127.0.0.1:{port}{path}"]
    else:
        cmd = [os.path.join(TOOLS, "loadgen"), "-p", proto, "-a", f"127.0.0.1:{port}",
               "-c", "8", "-n", str(n), "--json"]
    done = subprocess.run(cmd, capture_output=True, check=True, text=True)
    if proto in H2LOAD and f"{n} succeeded" not in done.stdout:
        raise SystemExit(f"h2load: not every request succeeded:\n{done.stdout}")


def total_instructions(binary, proto, n, tmp):
    echo = PROTOCOLS[proto][2]
    upstream = subprocess.Popen(
        [os.path.join(GO_BIN, "grpc-echo")] if echo == "grpc"
        else [os.path.join(TOOLS, "echo-upstream"), "-p", echo],
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
    load(proto, port, n, tmp)
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
    p.add_argument("protocols", nargs="*", default=["dubbo", "thrift", "http1"],
                   choices=sorted(PROTOCOLS))
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
