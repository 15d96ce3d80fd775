#!/usr/bin/env python3
"""Smoke check of the sovereign peer (stdlib only).

    tests/peers/sovereign/.venv/bin/python tests/peers/sovereign/smoke.py

Starts serve.py on a temporary data file, asks for each of the four resource
types with metaproxy's node, shows the 304 and the resource_names filter,
then rewrites the data file (weights 100/0 -> 50/50, one more endpoint) and
polls until the answers change. Exits non-zero on any unexpected answer.
"""

import json
import os
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
TYPES = {
    "listeners": "type.googleapis.com/envoy.config.listener.v3.Listener",
    "routes": "type.googleapis.com/envoy.config.route.v3.RouteConfiguration",
    "clusters": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    "endpoints": "type.googleapis.com/envoy.config.endpoint.v3.ClusterLoadAssignment",
}
NODE = {
    "id": "gateway-1",
    "cluster": "gateways",
    "user_agent_name": "metaproxy",
    "user_agent_version": "0.1.0",
}
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def write_data(path, data):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        json.dump(data, f)
    os.replace(tmp, path)  # atomic: sovereign never reads half a file


def discover(port, kind, version="", names=()):
    """POSTs a DiscoveryRequest: (HTTP status, parsed body or None)."""
    body = json.dumps({
        "version_info": version,
        "node": NODE,
        "resource_names": list(names),
        "type_url": TYPES[kind],
        "response_nonce": "",
    }).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v3/discovery:{kind}",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    try:
        with OPENER.open(req, timeout=10) as r:
            return r.status, json.loads(r.read())
    except urllib.error.HTTPError as e:
        raw = e.read()
        return e.code, (json.loads(raw) if raw.strip() else None)


def expect(cond, what):
    if not cond:
        raise SystemExit(f"FAIL: {what}")


def main():
    python = os.path.join(HERE, ".venv", "bin", "python")
    if not os.path.exists(python):
        python = sys.executable
    tmp = tempfile.mkdtemp(prefix="sovereign-smoke-")
    data_path = os.path.join(tmp, "data.json")
    log_path = os.path.join(tmp, "serve.log")
    write_data(data_path, {
        "listener_port": 0,
        "clusters": [
            {"name": "blue", "weight": 100, "endpoints": ["127.0.0.1:4001"]},
            {"name": "green", "weight": 0, "endpoints": ["127.0.0.1:4002", "127.0.0.1:4003"]},
        ],
    })

    started = time.monotonic()
    with open(log_path, "w") as log:
        proc = subprocess.Popen(
            [python, os.path.join(HERE, "serve.py"), data_path],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True,
        )
    try:
        line = []
        reader = threading.Thread(target=lambda: line.append(proc.stdout.readline()), daemon=True)
        reader.start()
        reader.join(30)
        expect(line and line[0], f"no listening line within 30 s (log: {log_path})")
        event = json.loads(line[0])
        expect(event.get("event") == "listening", f"unexpected first line {line[0]!r}")
        port = event["port"]
        print(f"serve.py listening on port {port} after {time.monotonic() - started:.2f} s")

        versions = {}
        for kind in TYPES:
            status, body = discover(port, kind)
            print(f"\n== {kind}: HTTP {status}\n{json.dumps(body)}")
            expect(status == 200, f"{kind}: HTTP {status}")
            expect(all(r.get("@type") == TYPES[kind] for r in body["resources"]), f"{kind}: @type")
            versions[kind] = body["version_info"]

        status, _ = discover(port, "routes", versions["routes"], ["sov-routes"])
        print(f"\nroutes again with version_info {versions['routes']}: HTTP {status}")
        expect(status == 304, "unchanged version should be 304")
        status, body = discover(port, "endpoints", names=["green"])
        print(f"endpoints with resource_names [green]: HTTP {status}, "
              f"{[r['cluster_name'] for r in body['resources']]}")
        expect([r["cluster_name"] for r in body["resources"]] == ["green"], "EDS filter")
        status, _ = discover(port, "endpoints", names=["nosuch"])
        print(f"endpoints with resource_names [nosuch]: HTTP {status}")

        # What a client polls: RDS for sov-routes, EDS for blue (the version
        # depends on the names asked for), with the version it holds.
        pending = {}
        for kind, names in (("routes", ["sov-routes"]), ("endpoints", ["blue"])):
            status, body = discover(port, kind, names=names)
            expect(status == 200, f"{kind} {names}: HTTP {status}")
            pending[kind] = (names, body["version_info"])
        write_data(data_path, {
            "listener_port": 0,
            "clusters": [
                {"name": "blue", "weight": 50, "endpoints": ["127.0.0.1:4001", "127.0.0.1:4004"]},
                {"name": "green", "weight": 50, "endpoints": ["127.0.0.1:4002", "127.0.0.1:4003"]},
            ],
        })
        changed = time.monotonic()
        print("\ndata file rewritten: weights 50/50, blue gets 127.0.0.1:4004")
        while pending:
            expect(time.monotonic() - changed < 15, f"no change within 15 s for {list(pending)}")
            for kind, (names, version) in list(pending.items()):
                status, body = discover(port, kind, version, names)
                if status == 304:
                    continue
                expect(status == 200, f"{kind}: HTTP {status}")
                print(f"{kind} {names} changed after {time.monotonic() - changed:.2f} s: "
                      f"version {version} -> {body['version_info']}\n"
                      f"{json.dumps(body['resources'])}")
                del pending[kind]
            time.sleep(0.05)
        print("\nOK")
    finally:
        proc.stdin.close()  # serve.py exits when its stdin closes
        try:
            code = proc.wait(10)
            print(f"serve.py exited with status {code} after stdin closed")
        except subprocess.TimeoutExpired:
            proc.kill()
            print("serve.py did not exit after stdin closed: killed")


if __name__ == "__main__":
    main()
