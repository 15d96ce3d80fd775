"""Inspects and edits a ZooKeeper registry with kazoo (a third-party client).

usage: zk.py HOSTS ls PATH                  -> JSON list of children ([] when absent)
       zk.py HOSTS create PATH [PATH ...]    persistent nodes, parents made
       zk.py HOSTS bulk PARENT COUNT         COUNT Dubbo provider nodes 10.x.y.z:20880
       zk.py HOSTS flap PATH TIMES MS        create/delete PATH TIMES times, MS apart
       zk.py HOSTS delete PATH               recursive
"""
import json
import sys
import time
from urllib.parse import quote

from kazoo.client import KazooClient


def provider(host, port, params):
    url = f"dubbo://{host}:{port}/org.apache.dubbo.samples.DemoService?" + "&".join(
        f"{k}={v}" for k, v in params.items()
    )
    return quote(url, safe="")


def main():
    hosts, cmd, *args = sys.argv[1:]
    zk = KazooClient(hosts=hosts, timeout=10)
    zk.start(timeout=10)
    try:
        if cmd == "ls":
            print(json.dumps(zk.get_children(args[0]) if zk.exists(args[0]) else []))
        elif cmd == "create":
            for path in args:
                zk.create(path, b"", makepath=True)
        elif cmd == "bulk":
            parent, count = args[0], int(args[1])
            zk.ensure_path(parent)
            pending = []
            for i in range(count):
                name = provider(f"10.{i >> 16 & 255}.{i >> 8 & 255}.{i & 255}", 20880,
                                {"group": "bulk", "side": "provider", "weight": "100"})
                pending.append(zk.create_async(f"{parent}/{name}", b""))
            for p in pending:
                p.get(timeout=30)
            print(json.dumps({"created": count}))
        elif cmd == "flap":
            path, times, ms = args[0], int(args[1]), int(args[2])
            for _ in range(times):
                zk.create(path, b"", makepath=True)
                time.sleep(ms / 1000)
                zk.delete(path)
                time.sleep(ms / 1000)
        elif cmd == "delete":
            zk.delete(args[0], recursive=True)
        else:
            raise SystemExit(f"unknown command {cmd}")
    finally:
        zk.stop()
        zk.close()


if __name__ == "__main__":
    main()
