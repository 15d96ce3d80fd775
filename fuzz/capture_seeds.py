#!/usr/bin/env python3
"""Captures the bytes real clients send, as seed corpora for the fuzz targets.

Thrift: Apache Thrift's Python client (tests/peers/thrift/client.py) in every
transport x protocol, with THeader headers, a multiplexed call and a struct
with every type. Dubbo: sofa-rpc-node's client (tests/peers/dubbo/client.js).
A tiny server accepts one connection and records what arrives until the
client stops sending; the client's wait for an answer is cut short.

Run from the repo root after installing the peers:
  tests/peers/thrift/.venv/bin/python fuzz/capture_seeds.py
Each file starts with one extra byte (0xff): the fuzz targets use the first
byte as the point where the input is split into two reads.
"""

import os
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PY = os.path.join(ROOT, "tests/peers/thrift/.venv/bin/python")


def capture(cmd_for_port, idle=0.7, limit=10.0):
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    proc = subprocess.Popen(cmd_for_port(port), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    srv.settimeout(limit)
    data = b""
    try:
        conn, _ = srv.accept()
        conn.settimeout(idle)
        start = time.time()
        while time.time() - start < limit:
            try:
                chunk = conn.recv(65536)
            except socket.timeout:
                break
            if not chunk:
                break
            data += chunk
        conn.close()
    finally:
        proc.kill()
        proc.wait()
        srv.close()
    return data


def save(target, name, data):
    if not data:
        print("no bytes captured for", target, name, file=sys.stderr)
        return
    path = os.path.join(ROOT, "fuzz/corpus", target, "seed-" + name)
    with open(path, "wb") as f:
        f.write(b"\xff" + data)
    print(target, name, len(data), "bytes")


def main():
    client = os.path.join(ROOT, "tests/peers/thrift/client.py")
    cases = []
    for t in ("framed", "buffered", "header"):
        for p in ("binary", "compact"):
            cases.append(("%s-%s-hello" % (t, p), ["--transport", t, "--protocol", p]))
            cases.append(("%s-%s-echo" % (t, p), ["--transport", t, "--protocol", p, "--method", "echo"]))
        cases.append(("%s-mux" % t, ["--transport", t, "--multiplexed", "Calculator", "--arg", "2,3"]))
    cases.append(("header-headers", ["--transport", "header", "--header", "user=alice", "--header", "x-canary=true"]))
    cases.append(("header-zlib", ["--transport", "header", "--zlib"]))
    cases.append(("buffered-nonstrict", ["--transport", "buffered", "--non-strict"]))
    cases.append(("framed-oneway", ["--method", "notify", "--arg", "n"]))
    for name, args in cases:
        save("thrift_decode", name, capture(lambda port, a=args: [PY, client, "--port", str(port), "--timeout-ms", "1000"] + a))

    dubbo = os.path.join(ROOT, "tests/peers/dubbo/client.js")
    if os.path.exists(os.path.join(ROOT, "tests/peers/dubbo/node_modules")):
        for name, args in (("hello", []), ("attach", ["--attach", "batchJob=true"])):
            save("dubbo_decode", name, capture(lambda port, a=args: ["node", dubbo, "--port", str(port)] + a, idle=1.5))
    else:
        print("tests/peers/dubbo/node_modules missing: run npm ci --prefix tests/peers/dubbo", file=sys.stderr)


if __name__ == "__main__":
    main()
