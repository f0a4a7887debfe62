"""Online HintQ latency, side by side in one run: the path in process, then over HTTP on BentoML
and KServe at concurrency 1 and 16 (p50/p99, requests/s).

    python benchmarks/bench_serving.py [--requests 400] [--store sqlite]

Needs a home where `aigq demo` (or simulate, features, train ctr/sft, think, nearline) has run.
Targets (issue 22): in-process p99 <= 5 ms; HTTP p99 <= 10 ms at concurrency 1. `srv CPU ms` is
the CPU time of the server's whole process tree per request (psutil).
"""

from __future__ import annotations

import argparse
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))


def users(home: Path, n: int, seed: int = 0) -> list[str]:
    """A realistic request mix: active users by their session count, plus 5% unknown ids."""
    counts = pd.read_parquet(home / "data" / "sessions.parquet")["user_id"].value_counts()
    rng = np.random.default_rng(seed)
    picked = list(rng.choice(counts.index, size=n, p=counts.to_numpy() / counts.sum()))
    for i in rng.choice(n, size=max(n // 20, 1), replace=False):
        picked[i] = f"new-visitor-{i}"
    return picked


def summary(name: str, latencies_ms: list[float], seconds: float, errors: int = 0) -> dict:
    a = np.sort(np.asarray(latencies_ms))
    return {
        "setup": name,
        "requests": len(a),
        "errors": errors,
        "p50_ms": float(np.percentile(a, 50)),
        "p99_ms": float(np.percentile(a, 99)),
        "max_ms": float(a[-1]),
        "rps": len(a) / seconds,
    }


def bench_inprocess(store: str, ids: list[str]) -> dict:
    from serving.config import ServingConfig
    from serving.hintq import HintQ

    hintq = HintQ(ServingConfig(store=store, server="bench"))
    for u in ids[:50]:  # warm caches (query features, registry)
        hintq.recommend({"user_id": u})
    lat = []
    t0 = time.perf_counter()
    for u in ids:
        t = time.perf_counter()
        hintq.recommend({"user_id": u})
        lat.append((time.perf_counter() - t) * 1000)
    out = summary(f"in-process ({store})", lat, time.perf_counter() - t0)
    hintq.close()
    return out


def bench_http(name: str, url: str, make_body, ids: list[str], concurrency: int, server_pid: int) -> dict:
    import httpx
    from load import tree_cpu_seconds

    local = threading.local()

    def call(u):
        client = getattr(local, "client", None)
        if client is None:
            client = local.client = httpx.Client(timeout=30)
        t = time.perf_counter()
        r = client.post(url, json=make_body(u))
        ms = (time.perf_counter() - t) * 1000
        answer = r.json() if r.status_code == 200 else {}
        answer = answer["predictions"][0] if "predictions" in answer else answer
        return ms, r.status_code, bool(answer.get("degraded"))

    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(call, ids[:50]))  # warm-up
        cpu0 = tree_cpu_seconds(server_pid)
        t0 = time.perf_counter()
        results = list(pool.map(call, ids))
        seconds = time.perf_counter() - t0
        cpu = tree_cpu_seconds(server_pid) - cpu0
    errors = sum(code != 200 for _, code, _ in results)
    out = summary(f"{name} c={concurrency}", [ms for ms, _, _ in results], seconds, errors)
    return {**out, "server_cpu_ms": 1000 * cpu / len(ids), "degraded": sum(d for _, _, d in results)}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--requests", type=int, default=400)
    parser.add_argument("--store", default="sqlite")
    parser.add_argument("--port", type=int, default=8710)
    args = parser.parse_args()
    from core.config import aigq_home
    from servers.launch import spawn, stop_spawned

    home = aigq_home()
    os.environ["AIGQ_HOME"] = str(home)
    import logging

    logging.getLogger("feast").setLevel(logging.ERROR)
    ids = users(home, args.requests)
    rows = [bench_inprocess(args.store, ids)]
    proc = spawn("bento", args.port, home)
    try:
        for c in (1, 16):
            rows.append(
                bench_http(
                    "BentoML /recommend",
                    f"http://127.0.0.1:{args.port}/recommend",
                    lambda u: {"user_id": u, "k": 8},
                    ids,
                    c,
                    proc.pid,
                )
            )
    finally:
        stop_spawned(proc)
    proc = spawn("kserve", args.port + 10, home)
    try:
        for c in (1, 16):
            rows.append(
                bench_http(
                    "KServe v1 hintq",
                    f"http://127.0.0.1:{args.port + 10}/v1/models/hintq:predict",
                    lambda u: {"instances": [{"user_id": u, "k": 8}]},
                    ids,
                    c,
                    proc.pid,
                )
            )
    finally:
        stop_spawned(proc)
    print(f"\nHintQ online path, {args.requests} requests each (5% unknown users), store {args.store}")
    head = f"{'p50 ms':>8s} {'p99 ms':>8s} {'max ms':>8s} {'req/s':>8s} {'errors':>7s} {'srv CPU ms':>10s} degraded"
    print(f"{'setup':28s} {head}")
    for r in rows:
        times = f"{r['p50_ms']:8.2f} {r['p99_ms']:8.2f} {r['max_ms']:8.2f}"
        cpu = f"{r['server_cpu_ms']:10.2f}" if "server_cpu_ms" in r else f"{'-':>10s}"
        print(f"{r['setup']:28s} {times} {r['rps']:8.1f} {r['errors']:7d} {cpu} {r.get('degraded', '-')}")


if __name__ == "__main__":
    main()
