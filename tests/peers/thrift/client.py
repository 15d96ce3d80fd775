#!/usr/bin/env python3
"""A Thrift test client built on Apache Thrift's Python library.

Usage: client.py --port P [--transport framed|buffered|header]
                 [--protocol binary|compact] [--non-strict] [--method hello]
                 [--arg bob] [--count N] [--concurrency C] [--header k=v ...]
                 [--multiplexed SERVICE] [--zlib] [--tls-ca CA.pem [--tls-name NAME]]

Each call gets its own seqid and the client checks that the answer carries
it back. Prints one JSON summary line:
{"ok":N,"errors":N,"results":{..},"errorMessages":{..},"exceptionTypes":{..}}
where exceptionTypes counts TApplicationException types by number, declared
exceptions by class name and transport failures as "transport".
"""

import argparse
import json
import os
import sys
import threading
from collections import Counter

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "gen-py"))

from demo import Calculator, Greeter  # noqa: E402
from demo.ttypes import Item, MyError  # noqa: E402
from thrift.Thrift import TApplicationException  # noqa: E402
from thrift.protocol import TBinaryProtocol, TCompactProtocol, THeaderProtocol, TMultiplexedProtocol  # noqa: E402
from thrift.transport import TSocket, TTransport  # noqa: E402
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID, THeaderTransformID  # noqa: E402


def sample_item():
    child = Item(name="child", count=-1, flag=False, ratio=-0.5, values=[], tags={}, small=set())
    return Item(name="item", count=1 << 40, flag=True, ratio=3.25, values=[1, -2, 300000],
                tags={"k": "v", "x": ""}, small={1, -7}, child=child)


def open_client(a):
    if a.tls_ca:
        import ssl
        from thrift.transport import TSSLSocket
        ctx = ssl.create_default_context(cafile=a.tls_ca)
        sock = TSSLSocket.TSSLSocket("127.0.0.1", a.port, ssl_context=ctx, server_hostname=a.tls_name)
    else:
        sock = TSocket.TSocket("127.0.0.1", a.port)
    sock.setTimeout(a.timeout_ms)
    if a.transport == "header":
        allowed = (THeaderClientType.HEADERS, THeaderClientType.FRAMED_BINARY, THeaderClientType.UNFRAMED_BINARY,
                   THeaderClientType.FRAMED_COMPACT, THeaderClientType.UNFRAMED_COMPACT)
        sub = THeaderSubprotocolID.COMPACT if a.protocol == "compact" else THeaderSubprotocolID.BINARY
        proto = THeaderProtocol.THeaderProtocol(sock, allowed, sub)
        trans = proto.trans
    else:
        trans = TTransport.TFramedTransport(sock) if a.transport == "framed" else TTransport.TBufferedTransport(sock)
        if a.protocol == "compact":
            proto = TCompactProtocol.TCompactProtocol(trans)
        else:
            proto = TBinaryProtocol.TBinaryProtocol(trans, strictRead=False, strictWrite=not a.non_strict)
    trans.open()
    seen = {}
    inner_read = proto.readMessageBegin

    def read_message_begin():
        name, mtype, seqid = inner_read()
        seen["seqid"] = seqid
        return name, mtype, seqid

    proto.readMessageBegin = read_message_begin
    wire = proto
    if a.multiplexed:
        wire = TMultiplexedProtocol.TMultiplexedProtocol(proto, a.multiplexed)
        wire.readMessageBegin = read_message_begin
    service = Calculator if a.multiplexed == "Calculator" else Greeter
    return service.Client(wire), proto, trans, seen


def call(client, a):
    if a.multiplexed == "Calculator":
        x, y = (int(v) for v in a.arg.split(","))
        return str(client.add(x, y))
    if a.method == "hello":
        return client.hello(a.arg)
    if a.method == "notify":
        client.notify(a.arg)
        return "sent"
    if a.method == "fail":
        client.fail(a.arg)
        return "no error"
    if a.method == "header":
        return client.header(a.arg)
    if a.method == "sleep":
        return str(client.sleep(int(a.arg)))
    if a.method == "echo":
        item = sample_item()
        return "echo-ok" if client.echo(item) == item else "echo-mismatch"
    # Any other name: a method the server does not know (sent as hello's args).
    client._oprot.writeMessageBegin(a.method, 1, client._seqid)
    Greeter.hello_args(name=a.arg).write(client._oprot)
    client._oprot.writeMessageEnd()
    client._oprot.trans.flush()
    return client.recv_hello()


def worker(a, index, calls, out, lock):
    stats = {"ok": 0, "errors": 0, "results": Counter(), "errorMessages": Counter(), "exceptionTypes": Counter()}
    try:
        client, proto, trans, seen = open_client(a)
    except Exception as e:  # noqa: BLE001
        stats["errors"] += calls
        stats["errorMessages"]["connect: %s" % e] += calls
        stats["exceptionTypes"]["transport"] += calls
        calls = 0
        client = None
    for i in range(calls):
        seqid = (index * 100003 + i * 7 + 11) % (1 << 31)
        client._seqid = seqid
        seen.clear()
        if a.transport == "header":
            for kv in a.header:
                k, _, v = kv.partition("=")
                proto.set_header(k.encode(), v.encode())
            if a.zlib:
                proto.trans._write_transforms = [THeaderTransformID.ZLIB]
        try:
            result = call(client, a)
            if a.method != "notify" and seen.get("seqid") != seqid:
                raise RuntimeError("seqid mismatch: sent %d, got %s" % (seqid, seen.get("seqid")))
            stats["ok"] += 1
            stats["results"][result] += 1
        except TApplicationException as e:
            stats["errors"] += 1
            stats["errorMessages"][e.message or ""] += 1
            stats["exceptionTypes"][str(e.type)] += 1
        except MyError as e:
            stats["errors"] += 1
            stats["errorMessages"][e.message] += 1
            stats["exceptionTypes"]["MyError"] += 1
        except Exception as e:  # noqa: BLE001
            stats["errors"] += 1
            stats["errorMessages"]["%s: %s" % (type(e).__name__, e)] += 1
            stats["exceptionTypes"]["transport"] += 1
            try:
                trans.close()
                client, proto, trans, seen = open_client(a)
            except Exception:  # noqa: BLE001
                pass
    if client is not None:
        try:
            trans.close()
        except Exception:  # noqa: BLE001
            pass
    with lock:
        for k in ("ok", "errors"):
            out[k] += stats[k]
        for k in ("results", "errorMessages", "exceptionTypes"):
            out[k].update(stats[k])


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--transport", choices=["framed", "buffered", "header"], default="framed")
    ap.add_argument("--protocol", choices=["binary", "compact"], default="binary")
    ap.add_argument("--non-strict", action="store_true")
    ap.add_argument("--method", default="hello")
    ap.add_argument("--arg", default="bob")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--concurrency", type=int, default=1)
    ap.add_argument("--header", action="append", default=[])
    ap.add_argument("--multiplexed", default="")
    ap.add_argument("--zlib", action="store_true")
    ap.add_argument("--timeout-ms", type=int, default=10000)
    ap.add_argument("--tls-ca", default="", help="PEM CA file: connect with TSSLSocket, verifying the server")
    ap.add_argument("--tls-name", default="localhost", help="server name to verify and send as SNI")
    a = ap.parse_args()

    out = {"ok": 0, "errors": 0, "results": Counter(), "errorMessages": Counter(), "exceptionTypes": Counter()}
    lock = threading.Lock()
    n = max(1, min(a.concurrency, a.count))
    threads = []
    for i in range(n):
        calls = a.count // n + (1 if i < a.count % n else 0)
        t = threading.Thread(target=worker, args=(a, i, calls, out, lock))
        t.start()
        threads.append(t)
    for t in threads:
        t.join()
    print(json.dumps({k: (dict(v) if isinstance(v, Counter) else v) for k, v in out.items()}, sort_keys=True))


if __name__ == "__main__":
    main()
