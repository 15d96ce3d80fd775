#!/usr/bin/env python3
"""Discovery benchmark (not a test): what following a ZooKeeper registry
costs. Run through `bash benches/discovery.sh`, which builds the tools.

One metaproxy (one worker, core 1) with two Dubbo listeners: `other-in` in
front of a static cluster, `demo-in` in front of cluster `demo`, whose
endpoints come from a real ZooKeeper server (Debian's, on a free port).
Echo upstreams and the load tool run on core 0, and so do ZooKeeper and
the process that writes the bulk change, at nice 19 so that they never
delay the load tool. Three measures:

1. Registration to first routed call: a provider node for an echo
   upstream is created with kazoo while a client calls `demo-in` in a tight
   loop (each call answered "no healthy upstream" until the node is seen);
   the time from the end of the create to the first answer from the
   upstream. ROUNDS times, the node deleted in between.
2. A 10 000-endpoint change: a kazoo process creates 10 000 provider nodes
   (as fast as it can, asynchronously), then another deletes them. Reported: the proxy's CPU
   seconds (utime+stime from /proc) from the start of the change until the
   cluster shows all of them (and none), the wall time, and the lists
   applied (`metaproxy_discovery_updates_total`).
3. Latency on the other cluster: an open-loop load (RATE req/s) on
   `other-in` for DURATION seconds with no change, then the same load while
   the 10 000-endpoint change runs; the percentiles of both.

Environment: ROUNDS (20), RATE (5000), DURATION (6), BULK (10000), BIN
(loadgen, echo-upstream), METAPROXY_BIN, OUT (target/bench).
"""

import json
import os
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from urllib.parse import quote

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "compare"))
import compare  # noqa: E402

ROOT = compare.ROOT
ROUNDS = compare.env_int("ROUNDS", 20)
RATE = compare.env_int("RATE", 5000)
DURATION = float(os.environ.get("DURATION", 6))
BULK = compare.env_int("BULK", 10000)
INTERFACE = "org.apache.dubbo.samples.DemoService"
PROVIDERS = f"/dubbo/{INTERFACE}/providers"
ZK_JAR = "/usr/share/java/zookeeper.jar"

from kazoo.client import KazooClient  # noqa: E402  (the tests' kazoo venv runs this)


def start_zookeeper(tmp):
    port = compare.free_port()
    proc = subprocess.Popen(
        background(["java", "-Xmx512m", "-Dzookeeper.admin.enableServer=false",
                           "-cp", f"/etc/zookeeper/conf:{ZK_JAR}",
                           "org.apache.zookeeper.server.ZooKeeperServerMain",
                           str(port), os.path.join(tmp, "zk"), "200"]),
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    compare.wait_port(port, proc, "zookeeper", timeout=60)
    return proc, port


def config(zk_port, other_port, demo_port, other_upstream, admin_port):
    return f"""
listeners:
  - name: other-in
    address: 127.0.0.1:{other_port}
    protocol: dubbo
    routes: [{{ route: {{ cluster: other }} }}]
  - name: demo-in
    address: 127.0.0.1:{demo_port}
    protocol: dubbo
    routes: [{{ route: {{ cluster: demo }} }}]
clusters:
  - name: other
    protocol: dubbo
    endpoints: [{{ address: 127.0.0.1:{other_upstream} }}]
  - name: demo
    protocol: dubbo
    discovery:
      max_endpoints: {BULK + 10}
      zookeeper: {{ servers: [127.0.0.1:{zk_port}], interface: {INTERFACE}, session_timeout: 4s }}
admin: {{ address: 127.0.0.1:{admin_port} }}
"""


def hessian_str(s):
    b = s.encode()
    if len(b) < 32:
        return bytes([len(b)]) + b
    return bytes([0x30 + (len(b) >> 8), len(b) & 0xFF]) + b


def dubbo_request(call_id):
    """A hessian2 `DemoService.sayHello("bob")` two-way request."""
    body = b"".join(hessian_str(s) for s in
                    ("2.0.2", INTERFACE, "1.0.0", "sayHello", "Ljava/lang/String;", "bob"))
    body += b"H" + hessian_str("path") + hessian_str(INTERFACE) + b"Z"
    return struct.pack(">HBBqi", 0xDABB, 0xC2, 0, call_id, len(body)) + body


def read_exact(sock, n):
    out = b""
    while len(out) < n:
        chunk = sock.recv(n - len(out))
        if not chunk:
            raise ConnectionError("closed")
        out += chunk
    return out


def call(sock, call_id):
    """One call; the answer's status (20 = OK)."""
    sock.sendall(dubbo_request(call_id))
    head = read_exact(sock, 16)
    status = head[3]
    read_exact(sock, struct.unpack(">i", head[12:16])[0])
    return status


def provider_node(port, n):
    url = (f"dubbo://127.0.0.1:{port}/{INTERFACE}?application=bench&side=provider"
           f"&interface={INTERFACE}&n={n}")
    return f"{PROVIDERS}/{quote(url, safe='')}"


def metric(admin, name):
    with urllib.request.urlopen(f"http://127.0.0.1:{admin}/metrics", timeout=5) as r:
        text = r.read().decode()
    total = 0.0
    for line in text.splitlines():
        if line.startswith(name) and 'cluster="demo"' in line:
            total += float(line.rsplit(" ", 1)[1])
    return total


def registration_rounds(zk, demo_port, upstream_port):
    times = []
    sock = socket.create_connection(("127.0.0.1", demo_port))
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    call_id = 0
    for n in range(ROUNDS):
        node = provider_node(upstream_port, n)
        zk.create(node, b"", ephemeral=True)
        created = time.perf_counter()
        while True:
            call_id += 1
            if call(sock, call_id) == 20:
                times.append((time.perf_counter() - created) * 1000)
                break
            if time.perf_counter() - created > 10:
                raise RuntimeError("the registered provider was never called")
        zk.delete(node)
        # Wait until calls fail again: the endpoint is gone; then let the
        # source's min_interval (100 ms) pass, so the next registration is a
        # lone change, read at once.
        while True:
            call_id += 1
            if call(sock, call_id) != 20:
                break
        time.sleep(0.3)
    sock.close()
    return times


def bulk_nodes():
    return [f"{PROVIDERS}/" + quote(
        f"dubbo://10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}:20880/{INTERFACE}"
        f"?application=bulk&side=provider&weight=100", safe="") for i in range(BULK)]


def background(cmd):
    """`cmd` on core 0 at the lowest priority: ZooKeeper and the writer of
    the bulk change make the change happen, but must not take the CPU from
    the load tool that measures the latency (also on core 0)."""
    return ["nice", "-n", "19"] + (["taskset", "-c", "0"] if compare.PIN else []) + cmd


def write_bulk(zk_port, phase):
    """Run as `discovery.py --write PORT add|remove` (a niced process): makes
    or deletes the BULK nodes as fast as ZooKeeper takes them."""
    zk = KazooClient(hosts=f"127.0.0.1:{zk_port}", timeout=10)
    zk.start(timeout=10)
    if phase == "add":
        pending = [zk.create_async(n, b"") for n in bulk_nodes()]
    else:
        pending = [zk.delete_async(n) for n in bulk_nodes()]
    for p in pending:
        p.get(timeout=60)
    zk.stop()


def bulk_change(zk_port, admin, proxy_pid):
    """Creates BULK nodes, then deletes them; CPU and wall time of each half."""
    out = {}
    for phase, want in (("add", BULK), ("remove", 0)):
        updates0 = metric(admin, "metaproxy_discovery_updates_total")
        cpu0 = sum(compare.cpu_times(proxy_pid))
        t0 = time.perf_counter()
        subprocess.run(background([sys.executable, os.path.abspath(__file__), "--write",
                                   str(zk_port), phase]), check=True)
        zk_done = time.perf_counter()
        while metric(admin, "metaproxy_discovered_endpoints") != want:
            if time.perf_counter() - t0 > 60:
                raise RuntimeError(f"{phase}: the cluster never showed {want} endpoints")
            time.sleep(0.02)
        seen = time.perf_counter()
        cpu = sum(compare.cpu_times(proxy_pid)) - cpu0
        out[phase] = {
            "zookeeper_s": round(zk_done - t0, 3),
            "seen_after_zookeeper_ms": round((seen - zk_done) * 1000, 1),
            "proxy_cpu_s": round(cpu, 3),
            "lists_applied": int(metric(admin, "metaproxy_discovery_updates_total") - updates0),
        }
    return out


def latency(other_port, during=None):
    """Open-loop load on `other-in`; `during` runs alongside it."""
    cmd = [f"{compare.BIN}/loadgen", "-p", "dubbo", "-a", f"127.0.0.1:{other_port}",
           "--json", "-c", "8", "-r", str(RATE), "-d", f"{DURATION}s", "--warmup", "0.5s"]
    proc = subprocess.Popen(compare.pinned(0, cmd), stdout=subprocess.PIPE, text=True)
    extra = None
    if during:
        time.sleep(1.0)
        extra = during()
    stdout, _ = proc.communicate()
    r = json.loads(stdout)
    return r, extra


def main():
    os.makedirs(compare.OUT, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="mp-discovery-")
    zk_proc, zk_port = start_zookeeper(tmp)
    servers = [zk_proc]
    try:
        other = compare.start_echo("dubbo")
        demo_up = compare.start_echo("dubbo")
        servers += [other.proc, demo_up.proc]
        ports = [compare.free_port() for _ in range(3)]
        path = os.path.join(tmp, "metaproxy.yaml")
        with open(path, "w") as f:
            f.write(config(zk_port, ports[0], ports[1], other.port, ports[2]))
        proxy = compare.Server("metaproxy", compare.pinned(1, [
            compare.METAPROXY_BIN, "run", "--workers", "1", "--log", "warn", "-c", path]),
            port=ports[0])
        servers.append(proxy.proc)
        compare.wait_port(ports[1], proxy.proc, "metaproxy")
        compare.wait_port(ports[2], proxy.proc, "metaproxy admin")
        zk = KazooClient(hosts=f"127.0.0.1:{zk_port}", timeout=10)
        zk.start(timeout=10)
        zk.ensure_path(PROVIDERS)

        reg = registration_rounds(zk, ports[1], demo_up.port)
        base, _ = latency(ports[0])
        loaded, bulk = latency(ports[0], lambda: bulk_change(zk_port, ports[2], proxy.proc.pid))
        zk.stop()
        result = {
            "registration_to_first_call_ms": {
                "rounds": len(reg),
                "median": round(statistics.median(reg), 2),
                "p90": round(sorted(reg)[int(len(reg) * 0.9) - 1], 2),
                "max": round(max(reg), 2),
            },
            "bulk_change": bulk,
            "other_cluster_latency_us": {
                "rate": RATE,
                "baseline": base["latency_us"],
                "during_bulk_change": loaded["latency_us"],
                "errors": {"baseline": base["errors"] + base["timeouts"],
                           "during": loaded["errors"] + loaded["timeouts"]},
            },
        }
        text = json.dumps(result, indent=2)
        print(text)
        with open(os.path.join(compare.OUT, "discovery.json"), "w") as f:
            f.write(text + "\n")
    finally:
        for p in reversed(servers):
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--write"]:
        write_bulk(int(sys.argv[2]), sys.argv[3])
    else:
        main()
