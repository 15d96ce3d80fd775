"""WebSocket peers for the metaproxy upgrade tests, on the `websockets`
library (PyPI, not ours). Compression (permessage-deflate) is off on both
ends, so the bytes the proxy relays are the bytes sent.

  ws_peer.py server --tag T
      Listens on 127.0.0.1, a free port; prints {"port": N}. Each connection
      is greeted with "hello from T" (the server speaks first), then every
      text message M is answered "T: M"; a message "bye" makes the server
      close with code 1000. Each handshake is logged as one JSON line:
      {"path": ..., "x-forwarded-for": ...}.
  ws_peer.py client --url ws://HOST:PORT/PATH [--messages N] [--size BYTES]
                    [--client-close]
      Connects, reads the greeting, sends N messages ("m0", "m1", ...; or
      BYTES-long ones), reads each answer, sends "bye" and waits for the
      server's close (or, with --client-close, closes first, code 1000). Prints {"greeting": ..., "answers": [...],
      "close_code": ...}, or {"error": ...} when the handshake or the
      exchange fails.
"""
import argparse
import asyncio
import json
import logging
import sys

from websockets.asyncio.client import connect
from websockets.asyncio.server import serve


async def run_server(tag):
    async def handler(ws):
        print(json.dumps({"path": ws.request.path,
                          "x-forwarded-for": ws.request.headers.get("x-forwarded-for")}),
              flush=True)
        await ws.send(f"hello from {tag}")
        async for message in ws:
            if message == "bye":
                await ws.close(1000, "bye")
                return
            await ws.send(f"{tag}: {message}")

    async with serve(handler, "127.0.0.1", 0, max_size=2**24, compression=None) as server:
        port = server.sockets[0].getsockname()[1]
        print(json.dumps({"port": port}), flush=True)
        await server.serve_forever()


async def run_client(url, messages, size, client_close):
    out = {}
    try:
        async with connect(url, open_timeout=10, close_timeout=10, max_size=2**24,
                           compression=None) as ws:
            out["greeting"] = await asyncio.wait_for(ws.recv(), 10)
            answers = []
            for i in range(messages):
                text = f"m{i}" if size == 0 else (f"m{i}-" + "x" * size)[:size]
                await ws.send(text)
                answer = await asyncio.wait_for(ws.recv(), 10)
                answers.append(answer if size == 0 else len(answer))
            out["answers"] = answers
            if client_close:
                await asyncio.wait_for(ws.close(1000, "done"), 10)
                out["close_code"] = ws.close_code
                rcvd = ws.protocol.close_rcvd
                out["server_close_code"] = rcvd.code if rcvd else None
            else:
                await ws.send("bye")
                await asyncio.wait_for(ws.wait_closed(), 10)
                out["close_code"] = ws.close_code
    except Exception as e:  # the test reads what failed
        out["error"] = f"{type(e).__name__}: {e}"
    print(json.dumps(out), flush=True)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("mode", choices=["server", "client"])
    ap.add_argument("--tag", default="ws")
    ap.add_argument("--url")
    ap.add_argument("--messages", type=int, default=3)
    ap.add_argument("--size", type=int, default=0)
    ap.add_argument("--client-close", action="store_true")
    args = ap.parse_args()
    # A refused handshake is part of the tests: no traceback on stderr.
    logging.getLogger("websockets").setLevel(logging.CRITICAL)
    if args.mode == "server":
        asyncio.run(run_server(args.tag))
    else:
        asyncio.run(run_client(args.url, args.messages, args.size, args.client_close))
    sys.exit(0)


if __name__ == "__main__":
    main()
