"""A discovery URL for tests: serves the endpoint list in FILE at any path,
with an ETag (a hash of the content) and 304 Not Modified on If-None-Match.
Python's own http.server (no dependency).

usage: endpoints_server.py FILE [--tls CERT KEY [--client-ca CA]]
  --tls:       serve HTTPS (Python's ssl module, OpenSSL) with CERT and KEY
  --client-ca: and require a client certificate signed by CA
stdout: {"port": N} once, then one JSON line per request:
        {"status": 200|304|503, "if_none_match": ...}
A FILE whose content is `fail` is answered 503.
"""
import hashlib
import http.server
import json
import ssl
import sys

PATH = sys.argv[1]


class Handler(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(PATH, "rb") as f:
            body = f.read()
        tag = '"' + hashlib.sha256(body).hexdigest()[:16] + '"'
        seen = self.headers.get("If-None-Match")
        if body.strip() == b"fail":
            status = 503
        elif seen == tag:
            status = 304
        else:
            status = 200
        self.send_response(status)
        self.send_header("ETag", tag)
        if status == 200:
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
        else:
            self.send_header("Content-Length", "0")
            self.end_headers()
        # One write per line: the server's threads never interleave halves.
        sys.stdout.write(json.dumps({"status": status, "if_none_match": seen}) + "\n")
        sys.stdout.flush()

    def log_message(self, *args):
        pass


server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
args = sys.argv[2:]
if args[:1] == ["--tls"]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(args[1], args[2])
    if args[3:4] == ["--client-ca"]:
        context.verify_mode = ssl.CERT_REQUIRED
        context.load_verify_locations(args[4])
    server.socket = context.wrap_socket(server.socket, server_side=True)
print(json.dumps({"port": server.server_address[1]}), flush=True)
server.serve_forever()
