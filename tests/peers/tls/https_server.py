"""An HTTPS server from Python's standard library (http.server + ssl),
optionally requiring client certificates: the upstream of the cluster-TLS
tests. Each answer names the client certificate's subject.

Usage: https_server.py --cert C.pem --key K.pem [--client-ca CA.pem] [--tag T]
Prints {"event": "listening", "port": N}.
"""
import argparse
import json
import ssl
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cert", required=True)
    ap.add_argument("--key", required=True)
    ap.add_argument("--client-ca")
    ap.add_argument("--tag", default="https")
    args = ap.parse_args()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):
            peer = self.connection.getpeercert() or {}
            subject = ",".join("%s=%s" % kv for rdn in peer.get("subject", ()) for kv in rdn)
            body = ("%s %s peer=%s\n" % (args.tag, self.path, subject or "-")).encode()
            self.send_response(200)
            self.send_header("content-length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *a):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(args.cert, args.key)
    if args.client_ca:
        ctx.load_verify_locations(args.client_ca)
        ctx.verify_mode = ssl.CERT_REQUIRED
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    print(json.dumps({"event": "listening", "port": server.server_address[1]}), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        sys.exit(0)


if __name__ == "__main__":
    main()
