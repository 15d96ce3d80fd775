"""An httpx client for the metaproxy HTTP tests (HTTP/1.1 keep-alive, many requests).

Usage: httpx_client.py --url URL [--count N] [--header k=v ...]
Prints one JSON line: {"statuses": {code: n}, "bodies": {first line of body: n}}.
"""
import argparse
import json
from collections import Counter

import httpx


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--url", required=True)
    ap.add_argument("--count", type=int, default=1)
    ap.add_argument("--header", action="append", default=[])
    args = ap.parse_args()
    headers = dict(h.split("=", 1) for h in args.header)
    statuses = Counter()
    bodies = Counter()
    with httpx.Client(timeout=10.0) as client:
        for _ in range(args.count):
            r = client.get(args.url, headers=headers)
            statuses[str(r.status_code)] += 1
            bodies[r.text.splitlines()[0] if r.text else ""] += 1
    print(json.dumps({"statuses": statuses, "bodies": bodies}), flush=True)


if __name__ == "__main__":
    main()
