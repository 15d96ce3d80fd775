#!/usr/bin/env python3
"""Side-by-side benchmark: direct vs metaproxy vs Envoy vs HAProxy vs nginx.

Run through `bash benches/compare.sh` (which installs the peers and builds
the tools). Method (design.md section 6, docs/benchmarks.md):

- echo upstreams (`echo-upstream`) and the load tool run on core 0, each
  proxy on core 1 (`taskset`) with one worker thread;
- for each case, fresh proxies start, then the targets run interleaved
  (direct, metaproxy, Envoy, ... then again) for ROUNDS rounds;
- reported per target: median req/s, ratios to direct and to Envoy, the
  proxy's CPU seconds per 100k requests (utime+stime from /proc/PID/stat,
  also shown split into user and kernel µs per request),
  latency percentiles, peak RSS (VmHWM), and for the idle case memory per
  connection (VmRSS delta over 1000 idle connections);
- the `-rate` cases send at a fixed RATE, open loop (loadgen `-r`; h2load
  `--rps` per connection for h2-rate and grpc-rate, percentiles from its
  per-request log) and report latency percentiles at that rate.

Environment: NICE (-10 as root), ROUNDS (3), DURATION (seconds per run, 5), WARMUP (1),
CONNS (32), INFLIGHT (1), RATE (open-loop req/s for the latency cases,
5000), IDLE (1000), CASES (comma list of case ids or protocol prefixes,
default all), TARGETS (comma list, default all), OUT (target/bench),
BIN (where loadgen/echo-upstream are), METAPROXY_BIN (the metaproxy
binary, default BIN/metaproxy; compare.sh builds the `dist` profile),
BASELINE_BIN (another metaproxy binary, such as the build before a
change: run as target `metaproxy-baseline` beside `metaproxy` in the same
interleaved rounds, so a before/after ratio shares the machine's state),
ENVOY_BIN.

HTTP/2 and gRPC: H2_CONNS (4) connections x H2_STREAMS (32) streams for the
h2load many-streams cases (h2-mux, h2-h2, grpc-unary, grpc-bidi),
GHZ_CONNS (4) x GHZ_CALLS (32) concurrent calls for the ghz cases,
STREAM_MSGS (10) messages each way per streaming call, GO_BIN (where ghz
and grpc-echo are, default target/go-bench/bin; compare.sh builds them).

WORKERS (1): worker threads (processes for nginx) of every proxy; a comma
list such as `1,2` runs each proxy once per count, interleaved in the same
rounds (targets `metaproxy@2`, ...). A proxy with one worker is pinned to
core 1; with as many workers as cores it is not pinned (the load tool and
upstream stay on core 0, so the second worker shares that core with them).
"""

import json
import os
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import configs  # noqa: E402
import report  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def env_int(name, default):
    return int(os.environ.get(name, default))


ROUNDS = env_int("ROUNDS", 3)
DURATION = float(os.environ.get("DURATION", 5))
WARMUP = float(os.environ.get("WARMUP", 1))
CONNS = env_int("CONNS", 32)
INFLIGHT = env_int("INFLIGHT", 1)
RATE = env_int("RATE", 5000)
IDLE = env_int("IDLE", 1000)
OUT = os.environ.get("OUT", os.path.join(ROOT, "target", "bench"))
BIN = os.environ.get("BIN", os.path.join(ROOT, "target", "release"))
METAPROXY_BIN = os.environ.get("METAPROXY_BIN", os.path.join(BIN, "metaproxy"))
BASELINE_BIN = os.environ.get("BASELINE_BIN")
ENVOY = os.environ.get("ENVOY_BIN") or shutil.which("envoy")
PIN = (os.cpu_count() or 1) >= 2 and shutil.which("taskset") is not None
SMALL, LARGE = 100, 16 * 1024
H2_CONNS = env_int("H2_CONNS", 4)
H2_STREAMS = env_int("H2_STREAMS", 32)
GHZ_CONNS = env_int("GHZ_CONNS", 4)
GHZ_CALLS = env_int("GHZ_CALLS", 32)
STREAM_MSGS = env_int("STREAM_MSGS", 10)
GO_BIN = os.environ.get("GO_BIN", os.path.join(ROOT, "target", "go-bench", "bin"))
GRPC_PROTO = os.path.join(ROOT, "benches", "grpc-echo", "echo.proto")
WORKERS = [int(w) for w in os.environ.get("WORKERS", "1").split(",") if w]


# Every benchmark process runs at this niceness (root only), so that other
# work on a shared machine (builds) disturbs the runs less.
NICE = env_int("NICE", -10 if os.geteuid() == 0 else 0)


def pinned(core, cmd):
    """`cmd` on `core` (a taskset core list; None: not pinned)."""
    if PIN and core is not None:
        cmd = ["taskset", "-c", str(core)] + cmd
    return ["nice", "-n", str(NICE)] + cmd if NICE else cmd


def raise_nofile():
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what, timeout=30):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            err = proc.stderr.read()[-3000:] if proc.stderr else ""
            raise RuntimeError(f"{what} exited with {proc.returncode}: {err}")
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return
        except OSError:
            time.sleep(0.05)
    raise RuntimeError(f"{what} did not listen on {port} within {timeout}s")


def family(pid):
    """`pid` and its descendants (nginx's workers under its master)."""
    children = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
            children.setdefault(ppid, []).append(int(d))
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        todo += children.get(p, [])
    return out


def cpu_times(pid):
    """(utime, stime) seconds of a process and its descendants: their own
    code, and the kernel's work for them (system calls, the TCP stack)."""
    ticks = os.sysconf("SC_CLK_TCK")
    u = s = 0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        u, s = u + int(fields[11]), s + int(fields[12])
    return u / ticks, s / ticks


def proc_stat(pid):
    """(utime+stime seconds, VmRSS KiB, VmHWM KiB) of a process and its
    descendants (memory summed)."""
    cpu = sum(cpu_times(pid))
    rss = hwm = 0
    for p in family(pid):
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss += int(line.split()[1])
                    elif line.startswith("VmHWM:"):
                        hwm += int(line.split()[1])
        except OSError:
            continue
    return cpu, rss, hwm


class Server:
    """A started process (echo upstream or proxy) and its port."""

    def __init__(self, name, cmd, port=None, stdin=None):
        self.name = name
        self.proc = subprocess.Popen(
            cmd,
            stdout=subprocess.PIPE if port is None else subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            stdin=stdin,
            preexec_fn=raise_nofile,
            text=True,
        )
        if port is None:
            line = self.proc.stdout.readline()
            m = re.search(r"address=\S+:(\d+)", line)
            if not m:
                raise RuntimeError(f"{name}: no address line ({line!r}): {self.proc.stderr.read()}")
            port = int(m.group(1))
        self.port = port

    def stat(self):
        return proc_stat(self.proc.pid)

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


def base(proto):
    """The protocol family: thrift-header-compact is served and proxied as thrift."""
    return "thrift" if proto.startswith("thrift") else proto


def start_echo(proto):
    if proto == "grpc":
        return Server("grpc-echo", pinned(0, [f"{GO_BIN}/grpc-echo"]))
    kind = {"http1": "http", "h2": "http", "https": "http", "h2up": "http"}.get(base(proto), base(proto))
    return Server(f"echo-{kind}", pinned(0, [f"{BIN}/echo-upstream", "-p", kind]))


def split_target(target):
    """`metaproxy@2` -> ("metaproxy", 2); `envoy` -> ("envoy", 1)."""
    name, _, w = target.partition("@")
    return name, int(w) if w else 1


def proxy_cores(workers):
    """Core 1 for one worker; cores 1..N while the machine has more; else
    not pinned."""
    n = os.cpu_count() or 1
    if workers == 1:
        return 1
    return f"1-{workers}" if workers < n else None


def start_proxy(target, proto, ups, tmp):
    """Starts `target` (a proxy, `@N` for N workers) in front of `ups`;
    returns a Server."""
    proto = base(proto)
    target, workers = split_target(target)
    port = free_port()
    ext = "yaml" if target == "envoy" or target.startswith("metaproxy") else "conf"
    path = os.path.join(tmp, f"{target}-{workers}-{proto}-{port}.{ext}")
    if target.startswith("metaproxy"):
        mode = "multiplex" if target == "metaproxy-mux" else None
        text = configs.metaproxy(proto, port, ups, mode)
        binary = BASELINE_BIN if target == "metaproxy-baseline" else METAPROXY_BIN
        cmd = [binary, "run", "--workers", str(workers), "--log", "error", "-c", path]
    elif target == "envoy":
        text = configs.envoy(proto, port, ups)
        cmd = [ENVOY, "--concurrency", str(workers), "--log-level", "error",
               "--disable-hot-restart", "-c", path]
    elif target == "haproxy":
        text = configs.haproxy(proto, port, ups, workers)
        cmd = ["haproxy", "-db", "-f", path]
    elif target == "nginx":
        tmp = os.path.join(tmp, f"nginx-{port}")
        for d in ("body", "proxy", "fastcgi", "uwsgi", "scgi"):
            os.makedirs(os.path.join(tmp, d), exist_ok=True)
        text = configs.nginx(proto, port, ups, tmp, workers)
        cmd = ["nginx", "-p", tmp, "-c", path]
    else:
        raise ValueError(target)
    with open(path, "w") as f:
        f.write(text)
    server = Server(target, pinned(proxy_cores(workers), cmd), port=port)
    wait_port(port, server.proc, target)
    return server


def loadgen(proto, port, payload, extra=(), in_flight=INFLIGHT):
    cmd = [f"{BIN}/loadgen", "-a", f"127.0.0.1:{port}", "--json",
           "-c", str(CONNS), "-m", str(in_flight), "-s", str(payload),
           "-d", f"{DURATION}s", "--warmup", f"{WARMUP}s"]
    if proto == "dubbo":
        cmd += ["-p", "dubbo"]
    elif proto.startswith("thrift"):
        cmd += ["-p", "thrift"]
        if proto == "thrift-header-compact":
            cmd += ["--transport", "header", "--thrift-protocol", "compact"]
    else:
        cmd += ["-p", "http1"]
    cmd += list(extra)
    out = subprocess.run(pinned(0, cmd), capture_output=True, text=True)
    if not out.stdout.strip():
        return {"requests_per_sec": 0.0, "answered": 0, "errors": -1,
                "latency_us": {}, "stderr": out.stderr.strip()}
    r = json.loads(out.stdout)
    r["errors_total"] = r["errors"] + r["timeouts"] + r["io_errors"] + r["connect_errors"]
    return r


def body(payload):
    return (b"abcdefghijklmnopqrstuvwxyz0123456789" * (payload // 36 + 1))[:payload]


def grpc_body(tmp, payload, messages):
    """A file holding `messages` gRPC messages (5-byte prefix + a
    google.protobuf.BytesValue of `payload` bytes): the request body of a
    unary call (1) or of a bidi call sending them all at once."""
    path = os.path.join(tmp, f"grpc-{payload}-{messages}")
    if not os.path.exists(path):
        value = body(payload)
        msg = b"\x0a" + varint(len(value)) + value
        with open(path, "wb") as f:
            f.write((b"\x00" + len(msg).to_bytes(4, "big") + msg) * messages)
    return path


def varint(n):
    out = bytearray()
    while True:
        b, n = n & 0x7F, n >> 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def h2load(port, payload, tmp, h1=False, method_get=False, scheme="http",
           conns=CONNS, streams=INFLIGHT, path="/echo", data=None, headers=(), extra=()):
    if data is None:
        data = os.path.join(tmp, f"payload-{payload}")
        if not os.path.exists(data):
            with open(data, "wb") as f:
                f.write(body(payload))
    cmd = ["h2load", "-c", str(conns), "-m", str(streams), "-t", "1",
           "-D", str(int(DURATION)), "--warm-up-time", f"{int(WARMUP * 1000)}ms"]
    if h1:
        cmd.append("--h1")
    if not method_get:
        cmd += ["-d", data]
    for h in headers:
        cmd += ["-H", h]
    cmd += extra
    cmd.append(f"{scheme}://127.0.0.1:{port}{path}")
    out = subprocess.run(pinned(0, cmd), capture_output=True, text=True).stdout
    rps = float(re.search(r"finished in [\d.]+s, ([\d.]+) req/s", out).group(1)) if "req/s" in out else 0.0
    m = re.search(r"requests: (\d+) total.*?(\d+) succeeded, (\d+) failed, (\d+) errored, (\d+) timeout", out)
    status = re.search(r"status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out)
    lat = re.search(r"time for request:\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)\s+([\d.]+)(us|ms|s)", out)

    def us(v, unit):
        return float(v) * {"us": 1, "ms": 1000, "s": 1e6}[unit]

    errors = 0
    if m:
        errors = int(m.group(3)) + int(m.group(4)) + int(m.group(5))
    if status:
        errors += int(status.group(3)) + int(status.group(4))
    return {
        "requests_per_sec": rps,
        # h2load's own counts exclude the warm-up; the proxy's CPU covers it.
        "answered": int(rps * (DURATION + WARMUP)),
        "errors_total": errors,
        "latency_us": {"mean": us(lat.group(5), lat.group(6))} if lat else {},
    }


def h2load_rate(port, payload, tmp, grpc):
    """HTTP/2 requests (POST, echoed) or gRPC unary calls at a fixed RATE
    per second, open loop: H2_CONNS h2load clients, each at RATE / H2_CONNS
    (`--rps`) with up to H2_STREAMS in flight, so a slow answer does not
    hold back the next send. Latency percentiles come from h2load's
    per-request log (its third column: microseconds until the answer was
    complete), the warm-up's requests left out."""
    log = os.path.join(tmp, f"h2load-rate-{port}.log")
    if os.path.exists(log):
        os.remove(log)
    extra = ["--rps", str(max(1, RATE // H2_CONNS)), "--log-file", log]
    if grpc:
        r = h2load(port, payload, tmp, conns=H2_CONNS, streams=H2_STREAMS,
                   path="/bench.Echo/Unary", data=grpc_body(tmp, payload, 1),
                   headers=("content-type: application/grpc", "te: trailers"), extra=extra)
    else:
        r = h2load(port, payload, tmp, conns=H2_CONNS, streams=H2_STREAMS, extra=extra)
    rows = []
    if os.path.exists(log):
        with open(log) as f:
            for line in f:
                cols = line.split()
                if len(cols) >= 3:
                    rows.append((int(cols[0]), int(cols[2])))
    if rows:
        first = min(start for start, _ in rows)
        kept = sorted(d for start, d in rows if start >= first + WARMUP * 1e6) or \
            sorted(d for _, d in rows)
        at = lambda q: kept[min(len(kept) - 1, int(q * len(kept)))]
        r["latency_us"] = {"p50": at(0.50), "p90": at(0.90), "p99": at(0.99),
                           "p999": at(0.999), "max": kept[-1]}
    return r


def grpc_h2load(port, payload, tmp, messages):
    """gRPC calls driven by h2load (C, far lighter than ghz): a unary call
    (messages=1, bench.Echo/Unary) or a bidi call whose request body holds
    `messages` messages (bench.Echo/Bidi echoes each). h2load checks the
    HTTP status only, not `grpc-status`; the ghz cases check that."""
    method = "Unary" if messages == 1 else "Bidi"
    r = h2load(port, payload, tmp, conns=H2_CONNS, streams=H2_STREAMS,
               path=f"/bench.Echo/{method}", data=grpc_body(tmp, payload, messages),
               headers=("content-type: application/grpc", "te: trailers"))
    r["calls_per_sec"] = r["requests_per_sec"]
    r["requests_per_sec"] *= messages
    r["answered"] *= messages
    return r


def ghz(port, payload, messages):
    """gRPC calls with ghz (a gRPC client: checks every status, reports
    latency percentiles): bench.Echo/Unary, or bench.Echo/Bidi sending
    `messages` messages per call. A warm-up run first (its calls count for
    CPU per request, as the loadgen's do). req/s counts messages: calls/s x
    `messages`; latency is per call."""
    value = json.dumps(__import__("base64").b64encode(body(payload)).decode())
    cmd = [f"{GO_BIN}/ghz", "--insecure", "--proto", GRPC_PROTO, "-d", value,
           "--connections", str(GHZ_CONNS), "-c", str(GHZ_CALLS), "-O", "json"]
    cmd += ["--call", "bench.Echo/Unary"] if messages == 1 else \
        ["--call", "bench.Echo/Bidi", "--stream-call-count", str(messages)]

    def run(secs):
        out = subprocess.run(pinned(0, cmd + ["-z", f"{secs:g}s", f"127.0.0.1:{port}"]),
                             capture_output=True, text=True)
        try:
            return json.loads(out.stdout)
        except ValueError:
            return {"count": 0, "rps": 0.0, "errorDistribution": {out.stderr[-300:]: 1}}

    warm = run(WARMUP) if WARMUP > 0 else {"count": 0}
    r = run(DURATION)
    # Calls still open when ghz's window closes end as Canceled or
    # Unavailable ("closing", "closed network connection"): not errors.
    cut = ("client connection is closing", "use of closed network connection")
    errors = sum(n for e, n in (r.get("errorDistribution") or {}).items()
                 if not any(c in e for c in cut))
    lat = {f"p{d['percentage']}": d["latency"] / 1000 for d in r.get("latencyDistribution") or []}
    return {
        "requests_per_sec": r.get("rps", 0.0) * messages,
        "calls_per_sec": r.get("rps", 0.0),
        "answered": (warm.get("count", 0) + r.get("count", 0)) * messages,
        "errors_total": errors,
        "status": r.get("statusCodeDistribution", {}),
        "latency_us": lat,
    }


def s_time(port):
    """Full TLS handshakes per second (`openssl s_time -new`, one client)."""
    cmd = ["openssl", "s_time", "-connect", f"127.0.0.1:{port}", "-new",
           "-time", str(int(DURATION))]
    out = subprocess.run(pinned(0, cmd), capture_output=True, text=True).stdout
    m = re.search(r"(\d+) connections in (\d+) real seconds", out)
    n, secs = (int(m.group(1)), int(m.group(2))) if m else (0, 1)
    return {"requests_per_sec": n / max(secs, 1), "answered": n, "errors_total": 0 if m else 1,
            "latency_us": {}}


def ensure_cert(tmp):
    """A self-signed P-256 certificate for the `https` cases."""
    cert, key, pem = (os.path.join(tmp, n) for n in ("bench.pem", "bench.key", "bench-both.pem"))
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "7", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1",
                    "-keyout", key, "-out", cert], check=True, capture_output=True)
    with open(pem, "w") as out:
        for f in (cert, key):
            with open(f) as part:
                out.write(part.read())
    configs.TLS_CERT, configs.TLS_KEY, configs.TLS_PEM = cert, key, pem


def wrk(port):
    cmd = ["wrk", "-t1", f"-c{CONNS}", f"-d{int(DURATION)}s", f"http://127.0.0.1:{port}/echo"]
    out = subprocess.run(pinned(0, cmd), capture_output=True, text=True).stdout
    m = re.search(r"Requests/sec:\s+([\d.]+)", out)
    return {"requests_per_sec": float(m.group(1)) if m else 0.0, "errors_total": 0,
            "answered": 0, "latency_us": {}}


# Case id -> (title, protocol, kind, payload, upstream count, targets)
HTTP_PEERS = ["direct", "metaproxy", "envoy", "haproxy", "nginx"]
# nginx has no plain HTTP/2 upstream (only grpc_pass).
H2UP_PEERS = ["direct", "metaproxy", "envoy", "haproxy"]
RPC_PEERS = ["direct", "metaproxy", "envoy", "haproxy"]
# TLS cases have no direct peer: the echo upstream speaks plain HTTP.
TLS_PEERS = HTTP_PEERS[1:]
THRIFT_PEERS = ["direct", "metaproxy", "metaproxy-mux", "envoy", "haproxy"]
CASES = [
    ("tools", "Load tools on a direct connection (HTTP/1.1 GET)", "http1", "tools", 0, 1,
     ["loadgen", "wrk", "h2load --h1"]),
    ("http1-small", "HTTP/1.1 POST, 100 B body echoed", "http1", "load", SMALL, 1, HTTP_PEERS),
    ("http1-16k", "HTTP/1.1 POST, 16 KiB body echoed", "http1", "load", LARGE, 1, HTTP_PEERS),
    ("http1-weighted", "HTTP/1.1 POST 100 B, 50/50 split over two upstreams", "http1", "load", SMALL, 2, HTTP_PEERS),
    ("h2-small", "HTTP/2 (h2c, h2load) POST, 100 B body echoed; HTTP/1.1 upstream", "h2", "load", SMALL, 1, HTTP_PEERS),
    ("h2-mux", f"HTTP/2 (h2c, h2load {H2_CONNS} connections x {H2_STREAMS} streams) POST 100 B echoed; HTTP/1.1 upstream", "h2", "mux", SMALL, 1, HTTP_PEERS),
    ("h2-h2", f"HTTP/2 on both sides (h2load {H2_CONNS} x {H2_STREAMS} streams, h2c upstream) POST 100 B echoed", "h2up", "mux", SMALL, 1, H2UP_PEERS),
    ("grpc-unary", f"gRPC unary (h2load {H2_CONNS} x {H2_STREAMS} streams), 100 B BytesValue echoed by a grpc-go server", "grpc", "grpc-unary", SMALL, 1, HTTP_PEERS),
    ("grpc-unary-ghz", f"gRPC unary (ghz {GHZ_CONNS} connections x {GHZ_CALLS} calls), 100 B BytesValue echoed by a grpc-go server", "grpc", "ghz-unary", SMALL, 1, HTTP_PEERS),
    ("grpc-bidi", f"gRPC bidi streaming (h2load {H2_CONNS} x {H2_STREAMS} streams), {STREAM_MSGS} x 100 B messages sent at once per call, each echoed; req/s counts messages", "grpc", "grpc-bidi", SMALL, 1, HTTP_PEERS),
    ("grpc-bidi-ghz", f"gRPC bidi streaming (ghz {GHZ_CONNS} x {GHZ_CALLS} calls), {STREAM_MSGS} x 100 B messages per call, each echoed; req/s counts messages", "grpc", "ghz-bidi", SMALL, 1, HTTP_PEERS),
    ("https-h2", "HTTPS keep-alive: HTTP/2 by ALPN (h2load), POST 100 B echoed; HTTP/1.1 upstream", "https", "load", SMALL, 1, TLS_PEERS),
    ("https-handshake", "TLS full handshakes per second (openssl s_time -new, one client)", "https", "handshake", 0, 1, TLS_PEERS),
    ("dubbo-small", "Dubbo hessian2 sayHello, 100 B argument echoed", "dubbo", "load", SMALL, 1, RPC_PEERS),
    ("dubbo-16k", "Dubbo hessian2 sayHello, 16 KiB argument echoed", "dubbo", "load", LARGE, 1, RPC_PEERS),
    ("dubbo-weighted", "Dubbo 100 B, 50/50 split over two providers", "dubbo", "load", SMALL, 2, RPC_PEERS),
    ("thrift-small", "Thrift framed/binary echo, 100 B string", "thrift", "load", SMALL, 1, THRIFT_PEERS),
    ("thrift-16k", "Thrift framed/binary echo, 16 KiB string", "thrift", "load", LARGE, 1, THRIFT_PEERS),
    ("thrift-header-compact", "Thrift THeader/compact echo, 100 B string", "thrift-header-compact", "load", SMALL, 1, THRIFT_PEERS),
    ("thrift-weighted", "Thrift framed/binary 100 B, 50/50 split over two servers", "thrift", "load", SMALL, 2, THRIFT_PEERS),
    ("http1-rate", f"HTTP/1.1 POST 100 B at a fixed {RATE} req/s (open loop, latency)", "http1", "rate", SMALL, 1, HTTP_PEERS),
    ("h2-rate", f"HTTP/2 (h2c, h2load {H2_CONNS} connections) POST 100 B at a fixed {RATE} req/s (open loop, latency); HTTP/1.1 upstream", "h2", "rate", SMALL, 1, HTTP_PEERS),
    ("grpc-rate", f"gRPC unary (h2load {H2_CONNS} connections) at a fixed {RATE} calls/s (open loop, latency), grpc-go server", "grpc", "rate", SMALL, 1, HTTP_PEERS),
    ("dubbo-rate", f"Dubbo 100 B at a fixed {RATE} req/s (open loop, latency)", "dubbo", "rate", SMALL, 1, RPC_PEERS),
    ("thrift-rate", f"Thrift framed/binary 100 B at a fixed {RATE} req/s (open loop, latency)", "thrift", "rate", SMALL, 1, THRIFT_PEERS),
    ("http1-idle", f"HTTP/1.1: {IDLE} idle keep-alive connections (one request each)", "http1", "idle", SMALL, 1, HTTP_PEERS[1:]),
    ("dubbo-idle", f"Dubbo: {IDLE} idle connections (one request each)", "dubbo", "idle", SMALL, 1, RPC_PEERS[1:]),
    ("thrift-idle", f"Thrift: {IDLE} idle connections (one request each)", "thrift", "idle", SMALL, 1, THRIFT_PEERS[1:]),
]


def available(target):
    if target in ("direct", "loadgen") or target.startswith("metaproxy"):
        return True
    if target == "envoy":
        return ENVOY is not None
    if target == "h2load --h1":
        return shutil.which("h2load") is not None
    return shutil.which(split_target(target)[0]) is not None


def needs_go(case):
    return case[2] == "grpc"


def with_workers(targets):
    """Each proxy once per WORKERS count (`name@N` for N > 1)."""
    out = []
    for t in targets:
        if t in ("direct", "loadgen", "wrk", "h2load --h1"):
            out.append(t)
            continue
        out += [t if w == 1 else f"{t}@{w}" for w in WORKERS]
    return out


def selected(cases):
    want = [w for w in os.environ.get("CASES", "").split(",") if w]
    only = [t for t in os.environ.get("TARGETS", "").split(",") if t]
    out = []
    for c in cases:
        if want and not any(c[0] == w or c[0].startswith(w + "-") or c[0].startswith(w) for w in want):
            continue
        # Direct and the tool cross-check always run; TARGETS picks the proxies.
        always = ("direct", "loadgen", "wrk", "h2load --h1")
        if needs_go(c) and not all(os.path.exists(f"{GO_BIN}/{b}") for b in ("ghz", "grpc-echo")):
            print(f"{c[0]}: skipped, no ghz/grpc-echo in {GO_BIN} (benches/compare.sh builds them)")
            continue
        peers = c[6]
        if BASELINE_BIN and "metaproxy" in peers:
            at = peers.index("metaproxy") + 1
            peers = peers[:at] + ["metaproxy-baseline"] + peers[at:]
        targets = [t for t in peers if available(t) and (not only or t in only or t in always
                                                         or t == "metaproxy-baseline")]
        out.append(c[:6] + (with_workers(targets),))
    return out


def one_run(kind, proto, payload, port, tmp, target):
    if kind == "tools":
        if target == "loadgen":
            return loadgen("http1", port, 0)
        if target == "wrk":
            return wrk(port)
        return h2load(port, 0, tmp, h1=True, method_get=True)
    if kind == "handshake":
        return s_time(port)
    if kind == "mux":
        return h2load(port, payload, tmp, conns=H2_CONNS, streams=H2_STREAMS)
    if kind == "grpc-unary":
        return grpc_h2load(port, payload, tmp, 1)
    if kind == "grpc-bidi":
        return grpc_h2load(port, payload, tmp, STREAM_MSGS)
    if kind == "ghz-unary":
        return ghz(port, payload, 1)
    if kind == "ghz-bidi":
        return ghz(port, payload, STREAM_MSGS)
    if kind == "rate" and proto in ("h2", "grpc"):
        return h2load_rate(port, payload, tmp, grpc=proto == "grpc")
    if proto == "h2":
        return h2load(port, payload, tmp)
    if proto == "https":
        return h2load(port, payload, tmp, scheme="https")
    if kind == "rate":
        # Up to 16 in flight per connection, so a slow answer delays no later send.
        return loadgen(proto, port, payload, ["-r", str(RATE)], in_flight=16)
    return loadgen(proto, port, payload)


def idle_run(proto, server):
    """RSS growth of `server` while IDLE connections sit open on it."""
    _, before, _ = server.stat()
    cmd = [f"{BIN}/loadgen", "-a", f"127.0.0.1:{server.port}", "--json", "--idle", str(IDLE),
           "-p", "thrift" if proto.startswith("thrift") else ("dubbo" if proto == "dubbo" else "http1"),
           "-s", str(SMALL)]
    holder = subprocess.Popen(pinned(0, cmd), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True, preexec_fn=raise_nofile)
    held = json.loads(holder.stdout.readline() or '{"held": 0, "failed": -1}')
    # Poll until RSS stops growing (lazy allocations settle), at most 3 s.
    after, deadline = server.stat()[1], time.monotonic() + 3
    while time.monotonic() < deadline:
        time.sleep(0.2)
        now = server.stat()[1]
        if now == after:
            break
        after = now
    holder.stdin.close()
    holder.wait()
    per = (after - before) / max(held["held"], 1)
    return {"rss_before_kib": before, "rss_after_kib": after, "held": held["held"],
            "failed": held["failed"], "kib_per_connection": per}


def run_case(case, tmp, log):
    cid, title, proto, kind, payload, nups, targets = case
    echos = [start_echo(proto) for _ in range(nups)]
    ups = [("127.0.0.1", e.port) for e in echos]
    servers = {}
    results = {t: [] for t in targets}
    try:
        for t in targets:
            if t in ("direct", "loadgen", "wrk", "h2load --h1"):
                continue
            servers[t] = start_proxy(t, proto, ups, tmp)
        if kind == "idle":
            for t in targets:
                r = idle_run(proto, servers[t])
                results[t].append(r)
                log(f"  {t:<14} {r['kib_per_connection']:8.1f} KiB/connection ({r['held']} held)")
        else:
            for rnd in range(ROUNDS):
                # Each round starts one target later, so no target always
                # runs right after the same neighbour.
                shift = rnd % len(targets)
                for t in targets[shift:] + targets[:shift]:
                    port = servers[t].port if t in servers else ups[0][1]
                    cpu0 = servers[t].stat()[0] if t in servers else None
                    split0 = cpu_times(servers[t].proc.pid) if t in servers else None
                    r = one_run(kind, proto, payload, port, tmp, t)
                    if cpu0 is not None:
                        cpu1, _, hwm = servers[t].stat()
                        split1 = cpu_times(servers[t].proc.pid)
                        answered = max(r.get("answered", 0), 1)
                        r["cpu_s"] = cpu1 - cpu0
                        r["cpu_s_per_100k"] = (cpu1 - cpu0) * 1e5 / answered
                        r["user_us_per_req"] = (split1[0] - split0[0]) * 1e6 / answered
                        r["sys_us_per_req"] = (split1[1] - split0[1]) * 1e6 / answered
                        r["peak_rss_kib"] = hwm
                    results[t].append(r)
                    lat = r.get("latency_us", {})
                    log(f"  round {rnd + 1} {t:<14} {r['requests_per_sec']:>10.0f} req/s"
                        f"  p99 {lat.get('p99', float('nan')):>8.1f} us"
                        f"  cpu/100k {r.get('cpu_s_per_100k', float('nan')):6.2f} s"
                        f" (user {r.get('user_us_per_req', float('nan')):5.1f}"
                        f" + kernel {r.get('sys_us_per_req', float('nan')):5.1f} us/req)"
                        f"  errors {r.get('errors_total', 0)}")
    finally:
        for s in list(servers.values()) + echos:
            s.stop()
    return {"id": cid, "title": title, "protocol": proto, "kind": kind, "payload": payload,
            "targets": targets, "runs": results}


def machine():
    model = ""
    try:
        out = subprocess.run(["lscpu"], capture_output=True, text=True).stdout
        model = re.search(r"Model name:\s+(.*)", out).group(1).strip()
    except Exception:
        pass

    def version(cmd):
        try:
            p = subprocess.run(cmd, capture_output=True, text=True)
            return (p.stdout + p.stderr).strip().splitlines()[0]
        except Exception:
            return "not found"

    return {
        "nproc": os.cpu_count(),
        "cpu": model,
        "kernel": os.uname().release,
        "pinned": PIN,
        "nice": NICE,
        "metaproxy": METAPROXY_BIN,
        "baseline": BASELINE_BIN,
        "envoy": version([ENVOY, "--version"]) if ENVOY else "not found",
        "haproxy": version(["haproxy", "-v"]),
        "nginx": version(["nginx", "-v"]),
        "wrk": version(["wrk", "--version"]),
        "h2load": version(["h2load", "--version"]),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "ghz": ghz_version(),
        "settings": {"rounds": ROUNDS, "duration_s": DURATION, "warmup_s": WARMUP,
                     "connections": CONNS, "in_flight": INFLIGHT, "rate": RATE, "idle": IDLE,
                     "h2_connections": H2_CONNS, "h2_streams": H2_STREAMS,
                     "ghz_connections": GHZ_CONNS, "ghz_calls": GHZ_CALLS,
                     "stream_messages": STREAM_MSGS, "workers": WORKERS},
    }


def ghz_version():
    """ghz's module version (`go install` leaves its --version at "dev")."""
    try:
        out = subprocess.run(["go", "version", "-m", f"{GO_BIN}/ghz"], capture_output=True, text=True).stdout
        return "ghz " + re.search(r"mod\s+github.com/bojand/ghz\s+(\S+)", out).group(1)
    except Exception:
        return "ghz ?"


def main():
    # Stop the servers (the `finally` in run_case) on SIGTERM and SIGINT too.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    signal.signal(signal.SIGINT, signal.default_int_handler)
    os.makedirs(OUT, exist_ok=True)
    cases = selected(CASES)
    if not cases:
        sys.exit(f"no case matches CASES={os.environ.get('CASES')}")
    logf = open(os.path.join(OUT, "compare.log"), "w")

    def log(msg):
        print(msg, flush=True)
        logf.write(msg + "\n")

    info = machine()
    log(f"machine: {info['nproc']} cores, {info['cpu']}; proxies pinned to core 1: {PIN}")
    if not ENVOY:
        log("envoy not found (set ENVOY_BIN or run benches/compare.sh): envoy columns skipped")
    results = []
    with tempfile.TemporaryDirectory(prefix="metaproxy-compare-") as tmp:
        if any(c[2] == "https" for c in cases):
            ensure_cert(tmp)
        for case in cases:
            log(f"\n== {case[0]}: {case[1]}")
            try:
                results.append(run_case(case, tmp, log))
            except Exception as e:  # keep going: one broken peer must not lose the rest
                log(f"  case failed: {e}")
    data = {"machine": info, "cases": results}
    with open(os.path.join(OUT, "compare.json"), "w") as f:
        json.dump(data, f, indent=1)
    md = report.markdown(data)
    with open(os.path.join(OUT, "compare.md"), "w") as f:
        f.write(md)
    log("\n" + md)
    log(f"written: {OUT}/compare.md, {OUT}/compare.json")


if __name__ == "__main__":
    main()
