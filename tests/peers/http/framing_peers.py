#!/usr/bin/env python3
"""Measures what HAProxy and nginx do with each request-framing case of
framing_cases.json, in front of the same strict upstream the Rust test uses
(Node's `http` server, framing_upstream.js), and writes their verdicts into
the `haproxy` and `nginx` fields of that file.

    python3 tests/peers/http/framing_peers.py      # needs node, haproxy, nginx

A verdict is the list of statuses the client got for the case (the probe
request sent afterwards on a connection left open is not counted); an empty
list means the connection was closed without an answer. `haproxy_passed` /
`nginx_passed` say whether the peer passed anything of the case to the
upstream (which logged a request or a parse error for it): a 4xx the
upstream gave is not the peer's refusal. `tests/http_framing.rs` then checks
that metaproxy refuses every case that either peer refuses itself.
This is a measurement script, not a test: it takes free ports the system
hands out and lets them go before the peers bind them.
"""

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
CASES = os.path.join(HERE, "framing_cases.json")
LIMIT = 10.0


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port):
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.05)
    sys.exit(f"nothing listens on {port}")


def parse_answer(data):
    """The first complete answer in `data`: (status, body, bytes used)."""
    end = data.find(b"\r\n\r\n")
    if end < 0:
        return None
    head = data[:end].decode("latin-1").lower()
    try:
        status = int(head[9:12])
    except ValueError:
        return None
    at = end + 4
    body = b""
    if "\r\ntransfer-encoding: chunked" in head:
        while True:
            line = data.find(b"\r\n", at)
            if line < 0:
                return None
            size = int(data[at:line].split(b";")[0], 16)
            at = line + 2
            if size == 0:
                trailer_end = data.find(b"\r\n", at)
                if trailer_end < 0:
                    return None
                at = trailer_end + 2
                break
            if len(data) < at + size + 2:
                return None
            body += data[at:at + size]
            at += size + 2
    else:
        length = 0
        for line in head.split("\r\n"):
            if line.startswith("content-length:"):
                length = int(line.split(":", 1)[1])
        if len(data) < at + length:
            return None
        body = data[at:at + length]
        at += length
    return status, body.decode("latin-1"), at


def exchange(port, raw, expected, probe):
    """Statuses the client gets for `raw` (the probe's answer left out)."""
    s = socket.create_connection(("127.0.0.1", port))
    s.settimeout(LIMIT)
    s.sendall(raw)
    got, answers, probed = b"", [], False
    while True:
        while True:
            parsed = parse_answer(got)
            if not parsed:
                break
            status, body, used = parsed
            answers.append((status, body))
            got = got[used:]
        if len(answers) >= expected and not probed:
            probed = True
            try:
                s.sendall(f"GET {probe} HTTP/1.1\r\nHost: h\r\nConnection: close\r\n\r\n".encode())
            except OSError:
                pass
        try:
            chunk = s.recv(65536)
        except (ConnectionResetError, socket.timeout):
            break
        if not chunk:
            break
        got += chunk
    s.close()
    return [status for status, body in answers if probe not in body]


def haproxy(dir, port, upstream):
    cfg = os.path.join(dir, "haproxy.cfg")
    with open(cfg, "w") as f:
        f.write(f"""global
  maxconn 100
defaults
  mode http
  timeout connect 5s
  timeout client 5s
  timeout server 5s
frontend in
  bind 127.0.0.1:{port}
  default_backend up
backend up
  server s1 127.0.0.1:{upstream}
""")
    return subprocess.Popen(["haproxy", "-f", cfg, "-db"], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def nginx(dir, port, upstream):
    cfg = os.path.join(dir, "nginx.conf")
    with open(cfg, "w") as f:
        f.write(f"""daemon off;
master_process off;
pid {dir}/nginx.pid;
error_log {dir}/nginx-error.log;
events {{}}
http {{
  access_log off;
  client_body_temp_path {dir}/body;
  proxy_temp_path {dir}/proxy;
  fastcgi_temp_path {dir}/fastcgi;
  uwsgi_temp_path {dir}/uwsgi;
  scgi_temp_path {dir}/scgi;
  server {{
    listen 127.0.0.1:{port};
    location / {{
      proxy_pass http://127.0.0.1:{upstream};
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_set_header Host $http_host;
    }}
  }}
}}
""")
    return subprocess.Popen(["nginx", "-p", dir, "-c", cfg], stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)


def main():
    for tool in ("node", "haproxy", "nginx"):
        if not shutil.which(tool):
            sys.exit(f"{tool} is needed (apt-get install haproxy nginx nodejs)")
    cases = json.load(open(CASES))
    dir = tempfile.mkdtemp(prefix="framing-peers-")
    # The upstream runs until its stdin closes.
    up = subprocess.Popen(["node", os.path.join(HERE, "framing_upstream.js")],
                          stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                          stderr=subprocess.DEVNULL, text=True)
    upstream = json.loads(up.stdout.readline())["port"]
    events = []
    def collect():
        for line in up.stdout:
            events.append(json.loads(line))
    threading.Thread(target=collect, daemon=True).start()
    peers = {}
    versions = {
        "haproxy": subprocess.run(["haproxy", "-v"], capture_output=True, text=True)
        .stdout.splitlines()[0],
        "nginx": subprocess.run(["nginx", "-v"], capture_output=True, text=True).stderr.strip(),
    }
    try:
        for name, start in (("haproxy", haproxy), ("nginx", nginx)):
            port = free_port()
            peers[name] = (start(dir, port, upstream), port)
            wait_port(port)
        for i, case in enumerate(cases):
            for name, (_, port) in peers.items():
                prefix = f"/c{i:02}{name[0]}"
                raw = case["bytes"].replace("{p}", prefix).encode("latin-1")
                seen = len(events)
                verdict = exchange(port, raw, len(case["lean"]), f"{prefix}-probe")
                # The upstream's events of this case (its probe left out).
                time.sleep(0.2)
                mine = events[seen:]
                probes = sum(1 for e in mine
                             if e["event"] == "request" and e["path"].endswith("-probe"))
                opens = sum(1 for e in mine if e["event"] == "open")
                # A request or parse error of the case, or a connection
                # opened for it (nginx opens one per request; Node answers
                # a request without a host 400 on it without an event).
                passed = opens > probes or any(
                    e["event"] == "error"
                    or (e["event"] == "request" and not e["path"].endswith("-probe"))
                    for e in mine
                )
                case[name] = verdict
                case[f"{name}_passed"] = passed
                print(f"{case['name']:<55} {name:<8} {verdict} passed={passed}")
    finally:
        for proc, _ in peers.values():
            proc.terminate()
        up.terminate()
        shutil.rmtree(dir, ignore_errors=True)
    with open(CASES, "w") as f:
        f.write("[\n")
        f.write(",\n".join("  " + json.dumps(c) for c in cases))
        f.write("\n]\n")
    print(f"measured with {versions['haproxy']} and {versions['nginx']}")


if __name__ == "__main__":
    main()
