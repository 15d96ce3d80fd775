"""A real grpcio server for the metaproxy HTTP/gRPC tests.

Generic handlers with raw-bytes (de)serializers, so no protoc is needed.
Service `demo.Echo`:
  Unary(bytes) -> b"<tag>:" + request; echoes request metadata back as
                  initial metadata `x-seen-<key>` for keys starting with `x-`.
  ServerStream(b"N") -> N messages b"<tag>:<i>".
  ClientStream(stream) -> b"<tag>:<count>:<total bytes>".
  Fail(bytes) -> aborts with NOT_FOUND and the details "no such thing: <request>".
  Sleep(b"MS") -> waits MS milliseconds, then b"<tag>:slept <MS>".
  Stall(b"N") -> sends its initial metadata and N messages b"<tag>:<i>",
                 then stays silent until the call is cancelled (30 s at most).
Prints one JSON line {"event": "listening", "port": N}, then one line per call.
--delay-ms N makes every Unary answer N milliseconds late (a slow server).
--health serves grpc.health.v1.Health (grpcio-health-checking, the
reference implementation): "" and "demo.Echo" SERVING; a stdin line
"set SERVICE STATUS" (STATUS: SERVING, NOT_SERVING) changes one, answered
{"event": "health", ...}. Health calls are not logged as calls.
Usage: grpc_server.py --tag TAG [--port 0] [--delay-ms 0] [--health]
"""
import argparse
import json
import sys
import threading
import time
from concurrent import futures

import grpc


_OUT = threading.Lock()


def emit(obj):
    """One JSON line, whole: the server's worker threads never interleave."""
    text = json.dumps(obj) + "\n"
    with _OUT:
        sys.stdout.write(text)
        sys.stdout.flush()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", default="grpc")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--tls-cert", help="PEM certificate: serve TLS (with --tls-key)")
    ap.add_argument("--tls-key")
    ap.add_argument("--health", action="store_true")
    args = ap.parse_args()
    tag = args.tag.encode()

    def log(method, context, request=None):
        md = {k: v for k, v in context.invocation_metadata() if not k.endswith("-bin")}
        line = {"method": method, "metadata": md}
        if request is not None:
            line["request"] = request.decode(errors="replace")
        emit(line)

    def unary(request, context):
        log("Unary", context, request)
        if args.delay_ms > 0:
            time.sleep(args.delay_ms / 1000.0)
        echoed = [("x-seen-" + k, v) for k, v in context.invocation_metadata()
                  if k.startswith("x-") and not k.endswith("-bin")]
        context.send_initial_metadata(tuple(echoed))
        return tag + b":" + request

    def sleep(request, context):
        log("Sleep", context)
        ms = int(request.decode() or "0")
        time.sleep(ms / 1000.0)
        return tag + b":slept " + str(ms).encode()

    def server_stream(request, context):
        log("ServerStream", context)
        n = int(request.decode() or "0")
        for i in range(n):
            yield tag + b":" + str(i).encode()

    def stall(request, context):
        log("Stall", context)
        context.send_initial_metadata((("x-stalling", "yes"),))
        for i in range(int(request.decode() or "0")):
            yield tag + b":" + str(i).encode()
        give_up = time.monotonic() + 30
        while context.is_active() and time.monotonic() < give_up:
            time.sleep(0.02)
        emit({"event": "stall-ended", "cancelled": not context.is_active()})

    def client_stream(request_iterator, context):
        log("ClientStream", context)
        count = 0
        total = 0
        for req in request_iterator:
            count += 1
            total += len(req)
        return tag + b":" + str(count).encode() + b":" + str(total).encode()

    def fail(request, context):
        log("Fail", context)
        context.abort(grpc.StatusCode.NOT_FOUND, "no such thing: " + request.decode(errors="replace"))

    handlers = {
        "Unary": grpc.unary_unary_rpc_method_handler(unary),
        "ServerStream": grpc.unary_stream_rpc_method_handler(server_stream),
        "ClientStream": grpc.stream_unary_rpc_method_handler(client_stream),
        "Fail": grpc.unary_unary_rpc_method_handler(fail),
        "Sleep": grpc.unary_unary_rpc_method_handler(sleep),
        "Stall": grpc.unary_stream_rpc_method_handler(stall),
    }
    server = grpc.server(futures.ThreadPoolExecutor(max_workers=8))
    server.add_generic_rpc_handlers((grpc.method_handlers_generic_handler("demo.Echo", handlers),))
    health = None
    if args.health:
        from grpc_health.v1 import health as health_lib
        from grpc_health.v1 import health_pb2, health_pb2_grpc

        health = health_lib.HealthServicer()
        for service in ("", "demo.Echo"):
            health.set(service, health_pb2.HealthCheckResponse.SERVING)
        health_pb2_grpc.add_HealthServicer_to_server(health, server)
    if args.tls_cert:
        with open(args.tls_cert, "rb") as c, open(args.tls_key, "rb") as k:
            creds = grpc.ssl_server_credentials([(k.read(), c.read())])
        port = server.add_secure_port("127.0.0.1:%d" % args.port, creds)
    else:
        port = server.add_insecure_port("127.0.0.1:%d" % args.port)
    server.start()
    emit({"event": "listening", "port": port})
    try:
        # Ends when the test closes our stdin (or kills us).
        for line in sys.stdin:
            words = line.split()
            if health is not None and len(words) == 3 and words[0] == "set":
                service = "" if words[1] == '""' else words[1]
                status = health_pb2.HealthCheckResponse.ServingStatus.Value(words[2])
                health.set(service, status)
                emit({"event": "health", "service": service, "status": words[2]})
    finally:
        server.stop(0)


if __name__ == "__main__":
    main()
