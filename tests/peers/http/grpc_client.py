"""A real grpcio client for the metaproxy HTTP/gRPC tests.

Usage: grpc_client.py --target HOST:PORT --call unary|server_stream|stall|client_stream|fail
                      [--count N] [--meta key=value ...] [--payload TEXT] [--timeout S]
                      [--tls-ca CA.pem [--tls-name NAME]]
Prints one JSON line: {"ok": n, "errors": {CODE: n}, "details": [...],
"results": {text: n}, "initial_metadata": {...}, "received": [...]} (metadata
and streamed messages of the last call, received before any error too).
"""
import argparse
import json
from collections import Counter

import grpc


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--target", required=True)
    ap.add_argument("--call", default="unary")
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--meta", action="append", default=[])
    ap.add_argument("--payload", default="hello")
    ap.add_argument("--timeout", type=float, default=10.0)
    ap.add_argument("--tls-ca", help="PEM CA file: connect with TLS, verifying the server")
    ap.add_argument("--tls-name", help="server name to verify (and send as SNI)")
    args = ap.parse_args()
    metadata = tuple(tuple(m.split("=", 1)) for m in args.meta)
    ident = lambda b: b  # noqa: E731

    ok = 0
    errors = Counter()
    details = []
    results = Counter()
    initial = {}
    received = []
    if args.tls_ca:
        with open(args.tls_ca, "rb") as f:
            creds = grpc.ssl_channel_credentials(root_certificates=f.read())
        options = [("grpc.ssl_target_name_override", args.tls_name)] if args.tls_name else []
        channel = grpc.secure_channel(args.target, creds, options=options)
    else:
        channel = grpc.insecure_channel(args.target)
    with channel:
        for _ in range(args.count):
            try:
                if args.call == "unary":
                    stub = channel.unary_unary("/demo.Echo/Unary", request_serializer=ident, response_deserializer=ident)
                    resp, call = stub.with_call(args.payload.encode(), metadata=metadata, timeout=args.timeout)
                    initial = {k: v for k, v in call.initial_metadata()}
                    results[resp.decode()] += 1
                elif args.call == "server_stream":
                    stub = channel.unary_stream("/demo.Echo/ServerStream", request_serializer=ident, response_deserializer=ident)
                    msgs = [m.decode() for m in stub(args.payload.encode(), metadata=metadata, timeout=args.timeout)]
                    results["|".join(msgs)] += 1
                elif args.call == "stall":
                    stub = channel.unary_stream("/demo.Echo/Stall", request_serializer=ident, response_deserializer=ident)
                    received = []
                    call = stub(args.payload.encode(), metadata=metadata, timeout=args.timeout)
                    for m in call:
                        received.append(m.decode())
                    results["|".join(received)] += 1
                elif args.call == "client_stream":
                    stub = channel.stream_unary("/demo.Echo/ClientStream", request_serializer=ident, response_deserializer=ident)
                    chunks = (args.payload.encode() for _ in range(5))
                    results[stub(chunks, metadata=metadata, timeout=args.timeout).decode()] += 1
                elif args.call == "fail":
                    stub = channel.unary_unary("/demo.Echo/Fail", request_serializer=ident, response_deserializer=ident)
                    results[stub(args.payload.encode(), metadata=metadata, timeout=args.timeout).decode()] += 1
                else:
                    stub = channel.unary_unary("/" + args.call, request_serializer=ident, response_deserializer=ident)
                    results[stub(args.payload.encode(), metadata=metadata, timeout=args.timeout).decode()] += 1
                ok += 1
            except grpc.RpcError as e:
                errors[e.code().name] += 1
                details.append(e.details())
    print(json.dumps({"ok": ok, "errors": errors, "details": details[:5],
                      "results": results, "initial_metadata": initial,
                      "received": received}), flush=True)


if __name__ == "__main__":
    main()
