"""Turns compare.py's results into Markdown tables (medians over rounds)
and checks design.md's performance targets."""

import statistics

NAMES = {
    "direct": "direct",
    "metaproxy": "metaproxy",
    "metaproxy-mux": "metaproxy (multiplex)",
    "metaproxy-baseline": "metaproxy (baseline)",
    "envoy": "Envoy",
    "haproxy": "HAProxy",
    "nginx": "nginx",
}


def med(runs, *path):
    vals = []
    for r in runs:
        v = r
        for p in path:
            v = v.get(p) if isinstance(v, dict) else None
        if isinstance(v, (int, float)):
            vals.append(v)
    return statistics.median(vals) if vals else None


def fmt(v, spec="{:.0f}"):
    return "–" if v is None else spec.format(v)


def split(runs):
    """Median user and kernel CPU µs per request, as `u + k`."""
    u, k = med(runs, "user_us_per_req"), med(runs, "sys_us_per_req")
    return "–" if u is None or k is None else f"{u:.1f} + {k:.1f}"


def split_target(target):
    """`metaproxy@2` -> ("metaproxy", 2)."""
    n, _, w = target.partition("@")
    return n, int(w) if w else 1


def name(case, target):
    base, workers = split_target(target)
    n = NAMES.get(base, base)
    if base == "haproxy" and not case["protocol"].startswith(("http", "h2", "grpc")):
        n += " (tcp mode)"
    if workers > 1:
        n += f", {workers} workers"
    return n


def at(base, workers):
    return base if workers == 1 else f"{base}@{workers}"


def load_table(case):
    runs = case["runs"]
    d = med(runs.get("direct", []), "requests_per_sec")
    rows = [
        "| target | req/s | × direct | × Envoy | CPU s /100k req | user + kernel µs/req | mean µs | p50 µs | p99 µs | p99.9 µs | errors | peak RSS MiB |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in case["targets"]:
        rs = runs.get(t, [])
        # × Envoy: Envoy with the same number of workers.
        e = med(runs.get(at("envoy", split_target(t)[1]), []), "requests_per_sec")
        rps = med(rs, "requests_per_sec")
        errors = sum(max(r.get("errors_total", 0), 0) for r in rs)
        hwm = max((r.get("peak_rss_kib", 0) for r in rs), default=0)
        rows.append(
            f"| {name(case, t)} | {fmt(rps)} | {fmt(rps / d if rps and d else None, '{:.2f}')} "
            f"| {fmt(rps / e if rps and e else None, '{:.2f}')} "
            f"| {fmt(med(rs, 'cpu_s_per_100k'), '{:.2f}')} "
            f"| {split(rs)} "
            f"| {fmt(med(rs, 'latency_us', 'mean'), '{:.0f}')} "
            f"| {fmt(med(rs, 'latency_us', 'p50'), '{:.0f}')} "
            f"| {fmt(med(rs, 'latency_us', 'p99'), '{:.0f}')} "
            f"| {fmt(med(rs, 'latency_us', 'p999'), '{:.0f}')} "
            f"| {errors} | {fmt(hwm / 1024 if hwm else None, '{:.1f}')} |"
        )
    return rows


def rate_table(case):
    runs = case["runs"]
    rows = [
        "| target | achieved req/s | p50 µs | p90 µs | p99 µs | p99.9 µs | max µs | CPU s /100k req | errors |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for t in case["targets"]:
        rs = runs.get(t, [])
        errors = sum(max(r.get("errors_total", 0), 0) for r in rs)
        rows.append(
            f"| {name(case, t)} | {fmt(med(rs, 'requests_per_sec'))} "
            + " ".join(
                f"| {fmt(med(rs, 'latency_us', q))}" for q in ("p50", "p90", "p99", "p999", "max")
            )
            + f" | {fmt(med(rs, 'cpu_s_per_100k'), '{:.2f}')} | {errors} |"
        )
    return rows


def idle_table(case):
    rows = [
        "| target | RSS before MiB | RSS with connections MiB | KiB per connection | held |",
        "|---|---:|---:|---:|---:|",
    ]
    for t in case["targets"]:
        rs = case["runs"].get(t, [])
        if not rs:
            continue
        r = rs[0]
        rows.append(
            f"| {name(case, t)} | {r['rss_before_kib'] / 1024:.1f} | {r['rss_after_kib'] / 1024:.1f} "
            f"| {r['kib_per_connection']:.1f} | {r['held']} |"
        )
    return rows


def tools_table(case):
    rows = ["| tool | req/s (median) |", "|---|---:|"]
    for t in case["targets"]:
        rows.append(f"| {t} | {fmt(med(case['runs'].get(t, []), 'requests_per_sec'))} |")
    return rows


def workers_table(case):
    """Each proxy with N workers next to itself with one (same rounds), and
    metaproxy with N workers against each peer with N."""
    runs = case["runs"]
    counts = sorted({split_target(t)[1] for t in case["targets"] if "@" in t})
    if not counts:
        return []
    rows = ["| proxy | workers | req/s | × itself with 1 | × metaproxy's with as many | CPU s /100k req |",
            "|---|---:|---:|---:|---:|---:|"]
    for base in dict.fromkeys(split_target(t)[0] for t in case["targets"] if t != "direct"):
        one = med(runs.get(base, []), "requests_per_sec")
        for w in [1] + counts:
            rs = runs.get(at(base, w), [])
            if not rs:
                continue
            rps = med(rs, "requests_per_sec")
            mine = med(runs.get(at("metaproxy", w), []), "requests_per_sec")
            rows.append(
                f"| {NAMES.get(base, base)} | {w} | {fmt(rps)} "
                f"| {fmt(rps / one if rps and one else None, '{:.2f}')} "
                f"| {fmt(mine / rps if mine and rps and base != 'metaproxy' else None, '{:.2f}')} "
                f"| {fmt(med(rs, 'cpu_s_per_100k'), '{:.2f}')} |"
            )
    return rows


def find(data, cid):
    return next((c for c in data["cases"] if c["id"] == cid), None)


def targets(data):
    """design.md section 6 targets, each with the measured value and a verdict."""
    out = []

    def check(what, value, ok):
        if value is not None:
            out.append(f"| {what} | {value} | {'met' if ok else '**missed**'} |")

    c = find(data, "http1-small")
    if c:
        r = c["runs"]
        mp, d = med(r.get("metaproxy", []), "requests_per_sec"), med(r.get("direct", []), "requests_per_sec")
        if mp and d:
            check("HTTP/1.1 ≥ 90% of direct", f"{mp / d:.0%}", mp / d >= 0.9)
        cpu = med(r.get("metaproxy", []), "cpu_s_per_100k")
        if cpu is not None:
            check("HTTP/1.1 ≤ 8 µs CPU per request (0.8 s /100k)", f"{cpu * 10:.1f} µs", cpu * 10 <= 8)
        for peer in ("haproxy", "nginx"):
            p = med(r.get(peer, []), "requests_per_sec")
            if mp and p:
                check(f"HTTP/1.1 ahead of {NAMES[peer]}", f"{mp / p:.2f}×", mp >= p)
    for cid in ("dubbo-small", "thrift-small"):
        c = find(data, cid)
        if not c:
            continue
        r = c["runs"]
        label = "Dubbo" if cid.startswith("dubbo") else "Thrift"
        e = med(r.get("envoy", []), "requests_per_sec")
        ecpu = med(r.get("envoy", []), "cpu_s_per_100k")
        for t in ("metaproxy", "metaproxy-mux"):
            mp = med(r.get(t, []), "requests_per_sec")
            cpu = med(r.get(t, []), "cpu_s_per_100k")
            if mp is None:
                continue
            who = NAMES[t]
            if e:
                check(f"{label}: {who} ≥ 2× Envoy's throughput", f"{mp / e:.2f}×", mp >= 2 * e)
            if ecpu and cpu is not None:
                check(f"{label}: {who} ≤ 1/3 of Envoy's CPU per request", f"{cpu / ecpu:.2f}×", cpu <= ecpu / 3)
    # HTTP/2 and gRPC unary (issue 16): ≥ 2× Envoy, ahead of nginx and
    # HAProxy, CPU per request ≤ 0.5× Envoy's.
    for cid in ("h2-small", "h2-mux", "h2-h2", "grpc-unary", "grpc-unary-ghz"):
        c = find(data, cid)
        if not c:
            continue
        r = c["runs"]
        mp = med(r.get("metaproxy", []), "requests_per_sec")
        cpu = med(r.get("metaproxy", []), "cpu_s_per_100k")
        e = med(r.get("envoy", []), "requests_per_sec")
        ecpu = med(r.get("envoy", []), "cpu_s_per_100k")
        if mp and e:
            check(f"{cid}: ≥ 2× Envoy's throughput", f"{mp / e:.2f}×", mp >= 2 * e)
        for peer in ("haproxy", "nginx"):
            p = med(r.get(peer, []), "requests_per_sec")
            if mp and p:
                check(f"{cid}: ahead of {NAMES[peer]}", f"{mp / p:.2f}×", mp >= p)
        if cpu is not None and ecpu:
            check(f"{cid}: ≤ 0.5× Envoy's CPU per request", f"{cpu / ecpu:.2f}×", cpu <= ecpu / 2)
    # Many workers: ≥ 1.7× one worker, never behind a peer with as many.
    for c in data["cases"]:
        r = c["runs"]
        for w in sorted({split_target(t)[1] for t in c["targets"] if "@" in t}):
            mp1 = med(r.get("metaproxy", []), "requests_per_sec")
            mpw = med(r.get(at("metaproxy", w), []), "requests_per_sec")
            if mp1 and mpw:
                check(f"{c['id']}: {w} workers ≥ 1.7× one (where the machine leaves room)",
                      f"{mpw / mp1:.2f}×", mpw >= 1.7 * mp1)
            for peer in ("envoy", "haproxy", "nginx"):
                p = med(r.get(at(peer, w), []), "requests_per_sec")
                if mpw and p:
                    check(f"{c['id']}: {w} workers, not behind {NAMES[peer]}", f"{mpw / p:.2f}×", mpw >= p)
    for cid in ("http1-rate", "h2-rate", "grpc-rate", "dubbo-rate", "thrift-rate"):
        c = find(data, cid)
        if not c:
            continue
        r = c["runs"]
        mine = med(r.get("metaproxy", []), "latency_us", "p99")
        peers = [med(r.get(t, []), "latency_us", "p99") for t in c["targets"]
                 if t not in ("direct", "metaproxy", "metaproxy-mux", "metaproxy-baseline")]
        peers = [p for p in peers if p is not None]
        if mine is not None and peers:
            check(f"{cid}: p99 below every peer's", f"{mine:.0f} µs vs best peer {min(peers):.0f} µs",
                  mine < min(peers))
    for cid in ("http1-idle", "dubbo-idle", "thrift-idle"):
        c = find(data, cid)
        if c and c["runs"].get("metaproxy"):
            kib = c["runs"]["metaproxy"][0]["kib_per_connection"]
            check(f"{cid}: memory per idle connection < 16 KiB", f"{kib:.1f} KiB", kib < 16)
    if not out:
        return []
    return ["| target | measured | verdict |", "|---|---|---|"] + out


def markdown(data):
    m = data["machine"]
    s = m["settings"]
    lines = [
        f"Run {m['date']} on {m['nproc']} cores ({m['cpu']}), kernel {m['kernel']}; "
        f"proxies pinned to core 1: {m['pinned']}; niceness {m.get('nice', 0)}.",
        f"{s['rounds']} interleaved rounds × {s['duration_s']:g} s (+{s['warmup_s']:g} s warm-up), "
        f"{s['connections']} connections × {s['in_flight']} in flight; medians over rounds.",
        f"metaproxy: {m.get('metaproxy', '?')}. Peers: {m['envoy']}; {m['haproxy']}; {m['nginx']}.",
    ]
    if "h2_streams" in s:
        lines.append(
            f"HTTP/2 and gRPC (h2load): {s['h2_connections']} connections × {s['h2_streams']} streams; "
            f"ghz ({m.get('ghz', '?')}): {s['ghz_connections']} connections × {s['ghz_calls']} calls; "
            f"{s['stream_messages']} messages per streaming call. Workers per proxy: "
            f"{', '.join(map(str, s.get('workers', [1])))}."
        )
    lines.append("")
    tables = {"load": load_table, "handshake": load_table, "rate": rate_table, "idle": idle_table,
              "tools": tools_table}
    for c in data["cases"]:
        table = tables.get(c["kind"], load_table)
        lines += [f"### {c['id']}: {c['title']}", ""] + table(c) + [""]
        w = workers_table(c)
        if w:
            lines += ["Workers:", ""] + w + [""]
    t = targets(data)
    if t:
        lines += ["### Targets (design.md §6)", ""] + t + [""]
    return "\n".join(lines)
