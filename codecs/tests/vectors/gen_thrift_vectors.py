#!/usr/bin/env python3
"""Writes thrift_vectors.json: frames encoded by Apache Thrift's Python library
(thrift==0.25.0, tests/peers/thrift/requirements.txt) for the codec's unit tests.

Run: tests/peers/thrift/.venv/bin/python codecs/tests/vectors/gen_thrift_vectors.py
"""

import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "..", "tests", "peers", "thrift", "gen-py"))

from demo import Greeter  # noqa: E402
from demo.ttypes import Item  # noqa: E402
from thrift.Thrift import TApplicationException, TMessageType  # noqa: E402
from thrift.protocol import TBinaryProtocol, TCompactProtocol  # noqa: E402
from thrift.transport import TTransport  # noqa: E402
from thrift.transport.THeaderTransport import THeaderClientType, THeaderSubprotocolID, THeaderTransport  # noqa: E402

SEQID = 7



def encode(transport, protocol, write, headers=None, non_strict=False, header_seqid=0):
    sink = TTransport.TMemoryBuffer()
    if transport == "header":
        sub = THeaderSubprotocolID.COMPACT if protocol == "compact" else THeaderSubprotocolID.BINARY
        trans = THeaderTransport(sink, (THeaderClientType.HEADERS,), sub)
        trans.sequence_id = header_seqid
        for k, v in (headers or {}).items():
            trans.set_header(k.encode(), v.encode())
    elif transport == "framed":
        trans = TTransport.TFramedTransport(sink)
    else:
        trans = TTransport.TBufferedTransport(sink)
    if protocol == "compact":
        proto = TCompactProtocol.TCompactProtocol(trans)
    else:
        proto = TBinaryProtocol.TBinaryProtocol(trans, strictWrite=not non_strict)
    write(proto)
    trans.flush()
    return sink.getvalue().hex()


def hello_call(name="hello", mtype=TMessageType.CALL):
    def w(p):
        p.writeMessageBegin(name, mtype, SEQID)
        Greeter.hello_args(name="bob").write(p)
        p.writeMessageEnd()
    return w


def hello_reply(p):
    p.writeMessageBegin("hello", TMessageType.REPLY, SEQID)
    Greeter.hello_result(success="Hello bob").write(p)
    p.writeMessageEnd()


def exception(name, message, etype):
    def w(p):
        p.writeMessageBegin(name, TMessageType.EXCEPTION, SEQID)
        TApplicationException(etype, message).write(p)
        p.writeMessageEnd()
    return w


def echo_call(p):
    child = Item(name="child", count=-1, flag=False, ratio=-0.5, values=[], tags={}, small=set())
    item = Item(name="item", count=1 << 40, flag=True, ratio=3.25, values=[1, -2, 300000],
                tags={"k": "v"}, small={-7}, child=child)
    p.writeMessageBegin("echo", TMessageType.CALL, SEQID)
    Greeter.echo_args(item=item).write(p)
    p.writeMessageEnd()


def main():
    vectors = []
    formats = [(t, p) for t in ("framed", "buffered", "header") for p in ("binary", "compact")]
    for t, p in formats:
        vectors.append({"case": "call", "transport": t, "protocol": p, "method": "hello",
                        "hex": encode(t, p, hello_call())})
        vectors.append({"case": "reply", "transport": t, "protocol": p, "method": "hello",
                        "hex": encode(t, p, hello_reply)})
        vectors.append({"case": "echo", "transport": t, "protocol": p, "method": "echo",
                        "hex": encode(t, p, echo_call)})
        vectors.append({"case": "exception", "transport": t, "protocol": p, "method": "hello",
                        "message": "metaproxy: route not found: no route", "type": 1,
                        "hex": encode(t, p, exception("hello", "metaproxy: route not found: no route", 1))})
    for t in ("framed", "buffered"):
        vectors.append({"case": "call", "transport": t, "protocol": "binary-nonstrict", "method": "hello",
                        "hex": encode(t, "binary", hello_call(), non_strict=True)})
    for p in ("binary", "compact"):
        vectors.append({"case": "call-headers", "transport": "header", "protocol": p, "method": "hello",
                        "headers": {"user": "alice", "x-Trace": "t1"},
                        "hex": encode("header", p, hello_call(), headers={"user": "alice", "x-Trace": "t1"})})
    vectors.append({"case": "oneway", "transport": "framed", "protocol": "binary", "method": "notify",
                    "hex": encode("framed", "binary", hello_call("notify", TMessageType.ONEWAY))})
    vectors.append({"case": "call", "transport": "framed", "protocol": "binary", "method": "Calculator:add",
                    "hex": encode("framed", "binary", hello_call("Calculator:add"))})
    with open(os.path.join(HERE, "thrift_vectors.json"), "w") as f:
        json.dump({"seqid": SEQID, "vectors": vectors}, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
