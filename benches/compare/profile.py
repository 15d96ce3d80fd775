#!/usr/bin/env python3
"""Where metaproxy's time goes under one of compare.py's HTTP/2 loads.

    python3 benches/compare/profile.py [h2-mux|h2-h2|grpc-unary] [seconds]
    python3 benches/compare/profile.py --report target/bench/perf-grpc-unary.data

Starts the case's echo upstream and metaproxy (one worker, core 1) exactly
as compare.py does, drives them with the case's h2load load from core 0,
and meanwhile samples metaproxy with `perf record --call-graph dwarf`
(software cpu-clock when the machine has no hardware counters). Prints the
share of samples by where the sampled function lives: the kernel, hyper,
the h2 crate, tokio, the allocator, the http/bytes crates, metaproxy's own
crates, libc, the rest (a memcpy/memmove counts for its caller: it is a
move of a frame or future there); then the top functions. Leaf functions
only: code that LTO inlined is counted in the function it was inlined
into. Same
environment as compare.py (METAPROXY_BIN, BIN, GO_BIN); `perf.data` and
the reports go to OUT (target/bench).
"""

import os
import re
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import compare  # noqa: E402

BUCKETS = [  # (label, pattern on the demangled symbol), first match wins
    ("h2 crate", r"(?<![\w:])h2::"),
    ("hyper / hyper-util", r"(?<![\w:])hyper(_util)?::"),
    ("tokio", r"(?<![\w:])tokio::"),
    ("allocator (mimalloc, alloc::)", r"\b(mi_|_mi_|mi_heap|alloc::)|\bmalloc|\bfree\b|realloc"),
    ("http / bytes crates", r"(?<![\w:])(http|bytes|http_body|http_body_util)::"),
    ("metaproxy", r"(?<![\w:])metaproxy"),
    ("libc (memcpy, ...)", r"^(__)?mem(cpy|move|set|cmp)|^__libc|^_int_"),
]


COPY = r"^(__)?mem(cpy|move)"


def bucket(sym, kernel):
    if kernel:
        return "kernel"
    # `<A as B>::f` is A's code: look at the implementing type first.
    m = re.match(r"<([^ ]+) as ", sym)
    for text in ([m.group(1)] if m else []) + [sym]:
        for label, pat in BUCKETS:
            if re.search(pat, text):
                return label
    return "other (std, core, unresolved)"


def main():
    case = sys.argv[1] if len(sys.argv) > 1 else "grpc-unary"
    secs = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    proto = {"h2-mux": "h2", "h2-h2": "h2up", "grpc-unary": "grpc"}[case]
    os.makedirs(compare.OUT, exist_ok=True)
    data = os.path.join(compare.OUT, f"perf-{case}.data")
    compare.DURATION = secs + 4
    with tempfile.TemporaryDirectory(prefix="metaproxy-profile-") as tmp:
        echo = compare.start_echo(proto)
        proxy = compare.start_proxy("metaproxy", proto, [("127.0.0.1", echo.port)], tmp)
        result = {}

        def load():
            if proto == "grpc":
                result.update(compare.grpc_h2load(proxy.port, compare.SMALL, tmp, 1))
            else:
                result.update(compare.h2load(proxy.port, compare.SMALL, tmp,
                                             conns=compare.H2_CONNS, streams=compare.H2_STREAMS))

        t = threading.Thread(target=load)
        try:
            t.start()
            time.sleep(2)
            subprocess.run(["perf", "record", "-q", "-F", "1999", "--call-graph", "dwarf,16384",
                            "-o", data, "-p", str(proxy.proc.pid), "--", "sleep", str(secs)],
                           check=True, capture_output=True)
            t.join()
        finally:
            proxy.stop()
            echo.stop()
    print(f"{case}: {result.get('requests_per_sec', 0):.0f} req/s during the profile (perf slows it)")
    report(data)


def report(data):
    # One block per sample, leaf frame first: "ip symbol (dso)".
    script = subprocess.run(["perf", "script", "-i", data, "--no-inline", "-F", "ip,sym,dso"],
                            capture_output=True, text=True).stdout
    shares, leaves, total = {}, {}, 0
    for block in script.split("\n\n"):
        frames = [m.groups() for m in re.finditer(r"^\s*[0-9a-f]+\s+(.*?)\s+\((.*)\)$", block, re.M)]
        if not frames:
            continue
        total += 1
        sym, dso = frames[0]
        if dso.startswith("[kernel"):
            b = "kernel"
        else:
            # memcpy/memmove (moves of frames and futures) count for the
            # code that called them.
            caller = next((f for f in frames if not re.match(COPY, f[0])), frames[0])
            b = bucket(caller[0], False)
            if caller is not frames[0]:
                b += " (via memcpy)"
        shares[b] = shares.get(b, 0) + 1
        leaves[sym] = leaves.get(sym, 0) + 1
    print("\n| where (leaf function; memcpy/memmove by caller) | share of samples |\n|---|---:|")
    for b, n in sorted(shares.items(), key=lambda kv: -kv[1]):
        print(f"| {b} | {100 * n / total:.1f}% |")
    print("\n| function | share | where |\n|---|---:|---|")
    for sym, n in sorted(leaves.items(), key=lambda kv: -kv[1])[:25]:
        print(f"| `{sym[:110]}` | {100 * n / total:.1f}% | {bucket(sym, False)} |")
    print(f"\nperf data: {data}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--report"]:
        report(sys.argv[2])
    else:
        main()
