#!/usr/bin/env python3
"""Runs sovereign (the Python xDS control plane) as a test peer.

    .venv/bin/python serve.py DATA_FILE [--refresh SECONDS]

Binds 127.0.0.1 on a port the system picks, serves sovereign's ASGI app on it
(Envoy's REST-JSON xDS: POST /v3/discovery:{listeners,routes,clusters,endpoints})
and prints one line on stdout, {"event":"listening","port":N}, once a
discovery request is answered. Everything else (sovereign's JSON logs, errors)
goes to stderr. The resources are rendered by the templates in ./templates
from DATA_FILE, which sovereign re-reads every --refresh seconds (default 1).

Exits on SIGTERM or SIGINT, and when stdin is a pipe or socket that reaches
end of file (stdin from /dev/null or a terminal is not watched). It is a single
process: SIGKILL leaves nothing behind.
"""

import argparse
import asyncio
import json
import os
import socket
import stat
import sys
import threading
import urllib.error
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))

# Environment variables sovereign's pydantic settings would read (case
# insensitively) besides SOVEREIGN_*: the field names that have no alias.
# A stray one in the caller's environment (LOG_LEVEL, ENDPOINT, ...) would
# change or break the configuration, so they are dropped before the import.
SETTINGS_NAMES = {
    # SovereignConfigv2
    "templates", "template_context", "authentication", "logging", "statsd",
    "discovery_cache", "tracing", "sources", "source_config", "matching",
    "modifiers", "global_modifiers", "legacy_fields",
    "expected_service_clusters",
    # nested settings classes built from defaults
    "context", "cache_strategy", "application_logs", "access_logs",
    "enabled", "collector", "endpoint", "trace_id_128bit", "tags", "regions",
    "eds_priority_matrix",
    # SovereignAsgiConfig (unused here, but parsed at import)
    "reuse_port", "log_level", "worker_class", "graceful_timeout",
}


def log(msg):
    print(f"sovereign-peer: {msg}", file=sys.stderr, flush=True)


def stdin_is_watchable():
    try:
        mode = os.fstat(0).st_mode
    except OSError:
        return False
    return stat.S_ISFIFO(mode) or stat.S_ISSOCK(mode)


def watch_stdin(loop, server):
    """Ends the server when stdin reaches end of file (the parent went away)."""
    try:
        while os.read(0, 65536):
            pass
    except OSError:
        pass
    log("stdin closed: stopping")
    loop.call_soon_threadsafe(setattr, server, "should_exit", True)


def probe(port):
    """One discovery request, as a client would send it: its HTTP status."""
    body = json.dumps({
        "version_info": "",
        "node": {"id": "sovereign-peer-probe", "cluster": "probe"},
        "resource_names": [],
        "type_url": "type.googleapis.com/envoy.config.cluster.v3.Cluster",
    }).encode()
    req = urllib.request.Request(
        f"http://127.0.0.1:{port}/v3/discovery:clusters",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    try:
        with opener.open(req, timeout=10) as r:
            return r.status
    except urllib.error.HTTPError as e:
        return e.code


async def run(app, sock, listening_out):
    import uvicorn

    config = uvicorn.Config(
        app,
        lifespan="on",
        log_level="warning",
        access_log=False,  # sovereign writes its own access log
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if serving.done():
            await serving  # raises what stopped it
            raise SystemExit("sovereign-peer: the server stopped before starting")
        await asyncio.sleep(0.01)

    port = sock.getsockname()[1]
    status = await asyncio.to_thread(probe, port)
    if status >= 500:
        server.should_exit = True
        await serving
        raise SystemExit(f"sovereign-peer: the first discovery request got HTTP {status}")
    # 200 with the data file's clusters; 404 when the data file could not be
    # read yet (sovereign answers 404 to an empty result).
    log(f"ready on 127.0.0.1:{port} (probe: HTTP {status})")
    listening_out.write(json.dumps({"event": "listening", "port": port}, separators=(",", ":")) + "\n")
    listening_out.flush()

    if stdin_is_watchable():
        threading.Thread(
            target=watch_stdin, args=(asyncio.get_running_loop(), server), daemon=True
        ).start()
    await serving


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("data_file", help="the JSON data file the templates render")
    parser.add_argument(
        "--refresh", type=int, default=1, metavar="SECONDS",
        help="how often sovereign re-reads the data file (integer >= 1, default 1)",
    )
    args = parser.parse_args()
    if args.refresh < 1:
        parser.error("--refresh must be at least 1 (sovereign takes whole seconds)")
    data_path = os.path.abspath(args.data_file)

    # stdout carries only the listening line: everything else that writes to
    # fd 1 or sys.stdout (sovereign's structlog logs) goes to stderr.
    listening_out = os.fdopen(os.dup(1), "w")
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    for name in list(os.environ):
        if name.upper().startswith("SOVEREIGN_") or name.lower() in SETTINGS_NAMES:
            del os.environ[name]
    overlay = {
        "template_context": {
            "context": {"data": {"protocol": "file", "serialization": "json", "path": data_path}},
            "refresh_rate": args.refresh,
        },
    }
    os.environ["SOVEREIGN_PEER_OVERLAY"] = json.dumps(overlay)
    # sovereign merges the comma-separated sources in order.
    os.environ["SOVEREIGN_CONFIG"] = f"file://{HERE}/sovereign.yaml,env://SOVEREIGN_PEER_OVERLAY"
    os.chdir(HERE)  # template paths in sovereign.yaml are relative

    if not os.path.exists(data_path):
        log(f"{data_path} does not exist yet: answers are 404 until it does")

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)

    # Importing sovereign.app parses the configuration and reads the data file
    # once (synchronously), so the first request already sees it.
    from sovereign.app import app

    try:
        asyncio.run(run(app, sock, listening_out))
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":
    main()
