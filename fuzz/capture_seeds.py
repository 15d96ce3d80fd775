#!/usr/bin/env python3
"""Captures the bytes real clients send, as seed corpora for the fuzz targets.

Thrift: Apache Thrift's Python client (tests/peers/thrift/client.py) in every
transport x protocol, with THeader headers, a multiplexed call and a struct
with every type. Dubbo: sofa-rpc-node's client (tests/peers/dubbo/client.js).
A tiny server accepts one connection and records what arrives until the
client stops sending; the client's wait for an answer is cut short.

HTTP/1: curl's requests (GET, POST with a length, chunked upload with a
trailer, HTTP/1.0), Python http.server's answers (head of a 200 and a 404)
and a chunked answer; the chunked-body seeds are the bodies of the chunked
captures. Declarative: hand-written frames, each after the 20 layout bytes
the target reads (see fuzz_targets/declarative_decode.rs). Config: the
example configs under examples/.

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


def save_raw(target, name, data):
    """Saves a seed as it is (for targets without a split byte)."""
    path = os.path.join(ROOT, "fuzz/corpus", target, "seed-" + name)
    with open(path, "wb") as f:
        f.write(data)
    print(target, name, len(data), "bytes")


def save(target, name, data):
    if not data:
        print("no bytes captured for", target, name, file=sys.stderr)
        return
    path = os.path.join(ROOT, "fuzz/corpus", target, "seed-" + name)
    with open(path, "wb") as f:
        f.write(b"\xff" + data)
    print(target, name, len(data), "bytes")


def http_seeds():
    def curl(*args):
        return lambda port: ["curl", "-s", "-m", "1", *args, "http://127.0.0.1:%d/api/v1?q=1" % port]
    cases = [
        ("curl-get", curl("-H", "X-User: ann")),
        ("curl-post", curl("-d", "hello=world")),
        ("curl-chunked", curl("-H", "Transfer-Encoding: chunked", "-H", "Trailer: x-sum", "--data-binary", "abc" * 10)),
        ("curl-http10", curl("-0", "-H", "Connection: keep-alive")),
    ]
    chunked_bodies = []
    for name, cmd in cases:
        data = capture(cmd, idle=0.5, limit=3.0)
        save("h1_request_head", name, data)
        save_raw("h1_head_differential", name, data)
        end = data.find(b"\r\n\r\n")
        if b"chunked" in data[:end] and end >= 0:
            chunked_bodies.append((name, data[end + 4:]))
    # Answers: a real server's, for a request sent by hand.
    server = subprocess.Popen([sys.executable, "-m", "http.server", "0", "--bind", "127.0.0.1"],
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, cwd=ROOT, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split("port ")[1].split()[0])
        for name, path in (("python-200", "/README.md"), ("python-404", "/missing")):
            c = socket.create_connection(("127.0.0.1", port))
            c.sendall(b"GET " + path.encode() + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while True:
                chunk = c.recv(65536)
                if not chunk:
                    break
                data += chunk
            c.close()
            save("h1_response_head", name, data[: data.find(b"\r\n\r\n") + 4])
    finally:
        server.kill()
        server.wait()
    chunked_answer = b"5\r\nhello\r\n1a;ext=\"v\"\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\ngrpc-status: 0\r\n\r\n"
    save("h1_response_head", "chunked", b"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\nConnection: keep-alive\r\n\r\n")
    chunked_bodies.append(("hand", chunked_answer))
    for name, body in chunked_bodies:
        save("h1_chunked", name, body)


def declarative_seeds():
    # Layout bytes: split, flags (little, includes_header, magic, type, int field, string field),
    # header_length-1, length offset/width, id offset/width, magic offset/len-1, magic (4),
    # type offset/width, int field offset, string field offset, widths, max_frame/16, pad.
    # The layout of examples/declarative: magic cafe, type u8 at 2, tenant u8 at 3, id u64 at 4,
    # body length u32 at 12, service u16-prefixed string at 16.
    layout = bytes([0xff, 4 | 8 | 16 | 32, 15, 12, 2, 4, 3, 0, 1, 0xca, 0xfe, 0, 0, 2, 0, 3, 16, 0 | (1 << 2), 0xff, 0])
    def frame(kind, tenant, rid, service, payload):
        body = len(service).to_bytes(2, "big") + service + payload
        return bytes([0xca, 0xfe, kind, tenant]) + rid.to_bytes(8, "big") + len(body).to_bytes(4, "big") + body
    save_raw("declarative_decode", "request", layout + frame(0, 7, 42, b"orders", b"hello"))
    save_raw("declarative_decode", "two-frames", layout + frame(2, 1, 43, b"x", b"") + frame(3, 0, 44, b"", b""))
    # Little-endian, length counting the header, no magic or type: an 8-byte header.
    little = bytes([0xff, 1 | 2, 7, 0, 2, 4, 2, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10, 0])
    save_raw("declarative_decode", "little", little + (11).to_bytes(4, "little") + (9).to_bytes(4, "little") + b"abc")


def config_seeds():
    for dirpath, _, files in os.walk(os.path.join(ROOT, "examples")):
        for f in sorted(files):
            if f.endswith(".yaml"):
                with open(os.path.join(dirpath, f), "rb") as src:
                    rel = os.path.relpath(os.path.join(dirpath, f), os.path.join(ROOT, "examples"))
                    save_raw("config_load", rel.replace("/", "-")[: -len(".yaml")], src.read())


def main():
    http_seeds()
    declarative_seeds()
    config_seeds()
    if not os.path.exists(PY):
        print("tests/peers/thrift/.venv missing: Thrift and Dubbo seeds not captured", file=sys.stderr)
        return
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
