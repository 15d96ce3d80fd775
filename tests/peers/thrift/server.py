#!/usr/bin/env python3
"""A Thrift test server built on Apache Thrift's Python library.

Usage: server.py --transport framed|buffered|header --protocol binary|compact
                 --tag NAME [--port 0] [--delay-ms 0]

Prints {"event":"listening","port":N} first, then one JSON line per call:
{"event":"call","method":..,"args":{..},"headers":{..},"tag":..}.
Serves Greeter (also as the default, non-multiplexed service) and
Calculator behind a TMultiplexedProcessor. One thread per connection, one
call at a time per connection (TThreadedServer). --delay-ms N makes every
`hello` answer N milliseconds late (a slow server).
"""

import argparse
import json
import os
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-py"))

from demo import Calculator, Greeter  # noqa: E402
from demo.ttypes import MyError  # noqa: E402
from thrift.TMultiplexedProcessor import TMultiplexedProcessor  # noqa: E402
from thrift.protocol import TBinaryProtocol, TCompactProtocol, THeaderProtocol  # noqa: E402
from thrift.server import TServer  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402
from thrift.transport.THeaderTransport import THeaderClientType  # noqa: E402

CURRENT = threading.local()
PRINT_LOCK = threading.Lock()


def emit(obj):
    with PRINT_LOCK:
        sys.stdout.write(json.dumps(obj, sort_keys=True) + "\n")
        sys.stdout.flush()


def text(v):
    return v.decode("utf-8", "replace") if isinstance(v, bytes) else v


def current_headers():
    iprot = getattr(CURRENT, "iprot", None)
    if iprot is None or not hasattr(iprot, "get_headers"):
        return {}
    return {text(k): text(v) for k, v in iprot.get_headers().items()}


class GreeterHandler:
    def __init__(self, tag, delay_ms=0):
        self.tag = tag
        self.delay_ms = delay_ms

    def _log(self, method, **args):
        # TThreadedServer serves each connection on its own thread: the
        # thread names the connection.
        emit({"event": "call", "method": method, "args": args, "headers": current_headers(), "tag": self.tag,
              "connection": threading.current_thread().name})

    def hello(self, name):
        self._log("hello", name=name)
        if self.delay_ms > 0:
            time.sleep(self.delay_ms / 1000.0)
        return "Hello %s, from %s" % (name, self.tag)

    def notify(self, msg):
        self._log("notify", msg=msg)

    def fail(self, msg):
        self._log("fail", msg=msg)
        raise MyError(message=msg, code=42)

    def header(self, key):
        self._log("header", key=key)
        return current_headers().get(key, "")

    def sleep(self, ms):
        self._log("sleep", ms=ms)
        time.sleep(ms / 1000.0)
        return ms

    def echo(self, item):
        self._log("echo", name=item.name)
        return item


class CalculatorHandler:
    def __init__(self, tag):
        self.tag = tag

    def add(self, a, b):
        emit({"event": "call", "method": "add", "args": {"a": a, "b": b}, "headers": current_headers(), "tag": self.tag})
        return a + b


class RecordingProcessor:
    """Remembers the input protocol of the call being served (for its THeader headers)."""

    def __init__(self, inner):
        self.inner = inner

    def process(self, iprot, oprot):
        CURRENT.iprot = iprot
        return self.inner.process(iprot, oprot)


def factories(transport, protocol):
    if transport == "header":
        allowed = (
            THeaderClientType.HEADERS,
            THeaderClientType.FRAMED_BINARY,
            THeaderClientType.UNFRAMED_BINARY,
            THeaderClientType.FRAMED_COMPACT,
            THeaderClientType.UNFRAMED_COMPACT,
        )
        return TTransport.TBufferedTransportFactory(), THeaderProtocol.THeaderProtocolFactory(allowed)
    tf = TTransport.TFramedTransportFactory() if transport == "framed" else TTransport.TBufferedTransportFactory()
    if protocol == "compact":
        pf = TCompactProtocol.TCompactProtocolFactory()
    else:
        pf = TBinaryProtocol.TBinaryProtocolFactory(strictRead=False, strictWrite=True)
    return tf, pf


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--transport", choices=["framed", "buffered", "header"], default="framed")
    ap.add_argument("--protocol", choices=["binary", "compact"], default="binary")
    ap.add_argument("--tag", default="server")
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--delay-ms", type=int, default=0)
    ap.add_argument("--tls-cert", default="", help="PEM certificate: serve TLS with TSSLServerSocket")
    ap.add_argument("--tls-key", default="")
    ap.add_argument("--tls-client-ca", default="", help="require client certificates signed by this CA")
    a = ap.parse_args()

    mux = TMultiplexedProcessor()
    greeter = Greeter.Processor(GreeterHandler(a.tag, a.delay_ms))
    mux.registerDefault(greeter)
    mux.registerProcessor("Greeter", greeter)
    mux.registerProcessor("Calculator", Calculator.Processor(CalculatorHandler(a.tag)))

    if a.tls_cert:
        import ssl
        from thrift.transport import TSSLSocket
        # A server context of our own: the one thrift builds from
        # `cert_reqs` checks host names, which a server cannot.
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(a.tls_cert, a.tls_key)
        if a.tls_client_ca:
            ctx.load_verify_locations(a.tls_client_ca)
            ctx.verify_mode = ssl.CERT_REQUIRED
        sock = TSSLSocket.TSSLServerSocket(host="127.0.0.1", port=a.port, ssl_context=ctx)
    else:
        sock = TSocket.TServerSocket(host="127.0.0.1", port=a.port)
    sock.listen()
    port = sock.handle.getsockname()[1]
    tf, pf = factories(a.transport, a.protocol)
    server = TServer.TThreadedServer(RecordingProcessor(mux), sock, tf, pf, daemon=True)
    # TServerSocket.listen() is idempotent enough: serve() calls it again; keep the bound socket.
    sock.listen = lambda: None
    emit({"event": "listening", "port": port})
    server.serve()


if __name__ == "__main__":
    main()
