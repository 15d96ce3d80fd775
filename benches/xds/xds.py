#!/usr/bin/env python3
"""What following an xDS control plane costs, metaproxy beside Envoy:

  - push to first routed request: a snapshot adds a route; the time until
    a request to it is answered by the upstream (median and max of ROUNDS);
  - a large update: 10 000 routes over 1 000 static clusters in one
    snapshot; the time until the last route answers, and the proxy's CPU
    (utime + stime) and RSS growth for it.

    cargo build --release -p metaproxy -p metaproxy-loadgen
    bash tests/peers/xds/build.sh
    python3 benches/xds/xds.py          # ROUNDS=20 ROUTES=10000 CLUSTERS=1000

Both proxies follow the same go-control-plane server (tests/peers/xds),
each with its own node id, one worker each; the upstream is the benchmarks'
HTTP echo server. Envoy comes from ENVOY_BIN, else tests/peers/envoy/.venv
or the benchmarks' cached venv; without it only metaproxy is measured.
"""

import http.client
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
BIN = os.environ.get("BIN", os.path.join(ROOT, "target", "release"))
METAPROXY = os.environ.get("METAPROXY_BIN", os.path.join(BIN, "metaproxy"))
ROUNDS = int(os.environ.get("ROUNDS", 20))
ROUTES = int(os.environ.get("ROUTES", 10000))
CLUSTERS = int(os.environ.get("CLUSTERS", 1000))


def envoy_bin():
    for c in (os.environ.get("ENVOY_BIN"),
              os.path.join(ROOT, "tests/peers/envoy/.venv/bin/envoy"),
              os.path.expanduser("~/.cache/metaproxy-bench/envoy-venv/bin/envoy"),
              shutil.which("envoy")):
        if c and os.path.exists(c):
            return c
    return None


def get(port, path):
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        c.request("GET", path)
        status = c.getresponse().status
        c.close()
        return status
    except OSError:
        return 0


def sock(port):
    return {"socket_address": {"address": "127.0.0.1", "port_value": port}}


def listener(rds):
    return {"name": "in", "address": sock(0), "filter_chains": [{"filters": [{
        "name": "hcm", "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
            "stat_prefix": "in",
            "rds": {"route_config_name": rds, "config_source": {"ads": {}, "resource_api_version": "V3"}},
            "http_filters": [{"name": "router", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}]}}]}]}


def route_config(paths):
    return {"name": "r", "virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [
        {"match": {"path": p}, "route": {"cluster": c}} for p, c in paths]}]}


def cluster(name, port):
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [
                {"lb_endpoints": [{"endpoint": {"address": sock(port)}}]}]}}


class ControlPlane:
    def __init__(self):
        self.p = subprocess.Popen([os.path.join(ROOT, "tests/peers/xds/target/xds-server")],
                                  stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                  stderr=subprocess.DEVNULL, text=True)
        self.port = json.loads(self.p.stdout.readline())["grpc"]

    def push(self, node, version, res):
        self.p.stdin.write(json.dumps({"op": "snapshot", "node": node, "version": version,
                                       "resources": res}) + "\n")
        self.p.stdin.flush()
        while True:
            line = self.p.stdout.readline()
            if '"event":"snapshot"' in line:
                assert '"ok":true' in line, line
                return


def cpu_rss(pid):
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    cpu = (int(fields[11]) + int(fields[12])) / ticks
    rss = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
    return cpu, rss


def start_metaproxy(tmp, xds_port):
    cfg = os.path.join(tmp, "metaproxy.yaml")
    with open(cfg, "w") as f:
        f.write(f"admin: {{ address: 127.0.0.1:0 }}\nxds: {{ server: \"127.0.0.1:{xds_port}\", node_id: mp }}\nlisteners: []\n")
    p = subprocess.Popen([METAPROXY, "--workers", "1", "--log", "warn", "run", "-c", cfg],
                         stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    admin = None
    while True:
        line = p.stdout.readline().strip()
        if line.startswith("admin address="):
            admin = line.split("=", 1)[1]
        if line == "ready" or not line:
            break

    def port():
        host, p_ = admin.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(p_), timeout=2)
        c.request("GET", "/listeners")
        body = json.loads(c.getresponse().read())
        for l in body["listeners"]:
            if l["name"] == "in":
                return int(l["address"].rsplit(":", 1)[1])
        return 0
    return p, port


def start_envoy(tmp, xds_port):
    bin_ = envoy_bin()
    if not bin_:
        return None, None
    boot = os.path.join(tmp, "envoy.yaml")
    template = os.path.join(ROOT, "tests/peers/envoy/ads-bootstrap.yaml")
    text = open(template).read()
    for key, value in (("NODE_ID", "envoy"), ("NODE_CLUSTER", "bench"), ("XDS_PORT", str(xds_port))):
        text = text.replace(key, value)
    with open(boot, "w") as f:
        f.write(text)
    admin_file = os.path.join(tmp, "envoy-admin")
    p = subprocess.Popen([bin_, "-c", boot, "--admin-address-path", admin_file, "--disable-hot-restart",
                          "--concurrency", "1", "-l", "error"],
                         stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    while not (os.path.exists(admin_file) and open(admin_file).read().strip()):
        time.sleep(0.02)
    admin = open(admin_file).read().strip()

    def port():
        host, p_ = admin.rsplit(":", 1)
        c = http.client.HTTPConnection(host, int(p_), timeout=2)
        c.request("GET", "/listeners?format=json")
        body = json.loads(c.getresponse().read())
        for l in body.get("listener_statuses", []):
            if l["name"] == "in":
                return l["local_address"]["socket_address"].get("port_value", 0)
        return 0
    return p, port


def wait(pred, limit=120):
    start = time.monotonic()
    while not pred():
        if time.monotonic() - start > limit:
            raise SystemExit("timed out")
        time.sleep(0.0005)
    return time.monotonic() - start


def measure(name, node, proc, port_of, cp, echo_port):
    paths = [("/base", "c0")]
    res = lambda: {"listeners": [listener("r")], "routes": [route_config(paths)],
                   "clusters": [cluster(c, echo_port) for c in sorted({c for _, c in paths})]}
    cp.push(node, "base", res())
    wait(lambda: port_of() != 0)
    port = port_of()
    wait(lambda: get(port, "/base") == 200)
    pushes = []
    for i in range(ROUNDS):
        paths.append((f"/new{i}", "c0"))
        start = time.monotonic()
        cp.push(node, f"p{i}", res())
        wait(lambda: get(port, f"/new{i}") == 200)
        pushes.append((time.monotonic() - start) * 1000)
    cpu0, rss0 = cpu_rss(proc.pid)
    paths = [(f"/r{j}", f"c{j % CLUSTERS}") for j in range(ROUTES)]
    start = time.monotonic()
    cp.push(node, "big", res())
    wait(lambda: get(port, f"/r{ROUTES - 1}") == 200, limit=600)
    took = time.monotonic() - start
    time.sleep(1)
    cpu1, rss1 = cpu_rss(proc.pid)
    print(f"{name:10} push→first request: median {statistics.median(pushes):6.1f} ms, max {max(pushes):6.1f} ms"
          f" | {ROUTES} routes + {CLUSTERS} clusters: routed after {took:5.2f} s, CPU {cpu1 - cpu0:5.2f} s,"
          f" RSS +{(rss1 - rss0) / 1024:.0f} MiB", flush=True)


def main():
    echo = subprocess.Popen([os.path.join(BIN, "echo-upstream"), "-p", "http"], stdout=subprocess.PIPE, text=True)
    echo_port = int(echo.stdout.readline().rsplit(":", 1)[1])
    cp = ControlPlane()
    with tempfile.TemporaryDirectory() as tmp:
        mp, mp_port = start_metaproxy(tmp, cp.port)
        try:
            measure("metaproxy", "mp", mp, mp_port, cp, echo_port)
        finally:
            mp.terminate()
        ev, ev_port = start_envoy(tmp, cp.port)
        if ev:
            try:
                measure("envoy", "envoy", ev, ev_port, cp, echo_port)
            finally:
                ev.terminate()
        else:
            print("envoy: not found (ENVOY_BIN), not measured", file=sys.stderr)
    cp.p.terminate()
    echo.kill()


if __name__ == "__main__":
    main()
