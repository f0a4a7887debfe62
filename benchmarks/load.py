"""Load test: the highest request rate each HintQ server sustains on this machine, per online store.

    python benchmarks/load.py [--stores sqlite,redis_postgres] [--servers bento,kserve]
                              [--start-rate 20] [--step 20] [--step-seconds 8] [--max-requests 40000]

Open-loop and bounded: requests leave on a fixed schedule (rate R for `--step-seconds`), whatever
the answers do, so a slow server cannot slow the client down and hide its own latency
(coordinated omission); latency counts from the scheduled send time. The rate steps up until a
step's p99 exceeds `--p99-ms` (50) or any request fails (HTTP status other than 200, a timeout,
or more than `--max-in-flight` outstanding); the total number of requests and the wall time are
capped. Reported per server and store: the highest rate with zero errors and p99 within the
budget, its p50/p99/p999, the share of degraded answers, and CPU milliseconds per request of the
server's process tree (psutil), beside the load generator's own CPU per request.

The Redis store is prepared first when asked for (`feast apply` + materialize into
`redis_postgres`, the Think mappings and a nearline run pushed there), so both stores serve the
same features. Needs a home where `aigq demo` has run, and PostgreSQL + Redis for the second store.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
sys.path.insert(0, str(Path(__file__).resolve().parent))

SERVERS = {  # server -> (path on its port, request body for one user)
    "bento": ("/recommend", lambda u: {"user_id": u, "k": 8}),
    "kserve": ("/v1/models/hintq:predict", lambda u: {"instances": [{"user_id": u, "k": 8}]}),
}


@dataclass
class Step:
    rate: float
    sent: int
    ok: int
    errors: int
    degraded: int
    p50_ms: float
    p99_ms: float
    p999_ms: float
    achieved_rps: float
    server_cpu_ms: float  # per request, the server's whole process tree
    client_cpu_ms: float  # per request, this process

    rejected: int = 0  # 503 answers (admission control turned the request away)

    def passed(self, p99_budget_ms: float, max_degraded: float = 1.0) -> bool:
        """Sustained: no error, p99 within budget, and (with admission control answering late
        requests with the popular list) at most `max_degraded` of the answers degraded."""
        return self.errors == 0 and self.p99_ms <= p99_budget_ms and self.degraded <= max_degraded * max(self.ok, 1)


def is_degraded(body: bytes) -> bool:
    answer = json.loads(body)
    answer = answer["predictions"][0] if "predictions" in answer else answer
    return isinstance(answer, dict) and bool(answer.get("degraded"))


async def fire(session, url: str, body: dict, scheduled: float, timeout_s: float, results: list) -> None:
    import aiohttp

    try:
        async with session.post(url, json=body, timeout=aiohttp.ClientTimeout(total=timeout_s)) as r:
            payload = await r.read()
            status = r.status
        degraded = status == 200 and is_degraded(payload)
    except (TimeoutError, aiohttp.ClientError, ValueError):
        status, degraded = -1, False  # connection error, timeout or an unreadable answer
    results.append(((time.perf_counter() - scheduled) * 1000, status, degraded))


async def open_loop(
    url: str, make_body, ids: list[str], rate: float, seconds: float, timeout_s: float, max_in_flight: int
) -> tuple[list, int]:
    """Send round(rate * seconds) requests on schedule; returns (results, shed) where shed counts
    requests not sent because `max_in_flight` were outstanding (the server is not keeping up)."""
    import aiohttp

    n = int(round(rate * seconds))
    results: list = []
    shed = 0
    connector = aiohttp.TCPConnector(limit=max_in_flight, force_close=False)
    async with aiohttp.ClientSession(connector=connector) as session:
        tasks = set()
        start = time.perf_counter() + 0.05
        for i in range(n):
            scheduled = start + i / rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            if len(tasks) >= max_in_flight:
                shed += 1
                continue
            task = asyncio.create_task(fire(session, url, make_body(ids[i % len(ids)]), scheduled, timeout_s, results))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        if tasks:
            await asyncio.gather(*tasks)
    return results, shed


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process and all its descendants (those alive now)."""
    import psutil

    try:
        root = psutil.Process(pid)
        procs = [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0.0
    total = 0.0
    for p in procs:
        try:
            t = p.cpu_times()
            total += t.user + t.system
        except psutil.NoSuchProcess:
            pass
    return total


def run_step(
    url: str,
    make_body,
    ids: list[str],
    rate: float,
    seconds: float,
    server_pid: int,
    timeout_s: float,
    max_in_flight: int,
) -> Step:
    import psutil

    me = psutil.Process()
    server0, client0 = tree_cpu_seconds(server_pid), sum(me.cpu_times()[:2])
    t0 = time.perf_counter()
    results, shed = asyncio.run(open_loop(url, make_body, ids, rate, seconds, timeout_s, max_in_flight))
    wall = time.perf_counter() - t0
    server_cpu, client_cpu = tree_cpu_seconds(server_pid) - server0, sum(me.cpu_times()[:2]) - client0
    lat = np.asarray([ms for ms, _, _ in results] or [float("nan")])
    ok = sum(status == 200 for _, status, _ in results)
    sent = len(results)
    return Step(
        rejected=sum(status == 503 for _, status, _ in results),
        rate=rate,
        sent=sent + shed,
        ok=ok,
        errors=sent - ok + shed,
        degraded=sum(d for _, _, d in results),
        p50_ms=float(np.percentile(lat, 50)),
        p99_ms=float(np.percentile(lat, 99)),
        p999_ms=float(np.percentile(lat, 99.9)),
        achieved_rps=ok / wall,
        server_cpu_ms=1000 * server_cpu / max(sent, 1),
        client_cpu_ms=1000 * client_cpu / max(sent, 1),
    )


def step_up(url: str, make_body, ids: list[str], server_pid: int, args, budget: dict) -> list[Step]:
    """Raise the rate until a step fails (or the request/time caps are reached)."""
    steps: list[Step] = []
    rate = args.start_rate
    asyncio.run(open_loop(url, make_body, ids, 20, 2.0, args.timeout, args.max_in_flight))  # warm-up
    while rate <= args.max_rate:
        if budget["requests"] + rate * args.step_seconds > args.max_requests or time.monotonic() > budget["deadline"]:
            print("  stopping: request or time cap reached", flush=True)
            break
        step = run_step(url, make_body, ids, rate, args.step_seconds, server_pid, args.timeout, args.max_in_flight)
        budget["requests"] += step.sent
        steps.append(step)
        print(
            f"  {rate:6.0f} req/s: p50 {step.p50_ms:6.1f} p99 {step.p99_ms:7.1f} p999 {step.p999_ms:7.1f} ms, "
            f"errors {step.errors}, degraded {step.degraded}, server CPU {step.server_cpu_ms:5.2f} ms/req",
            flush=True,
        )
        if not step.passed(args.p99_ms, args.max_degraded):
            break
        rate += args.step
    return steps


def overload(url: str, make_body, ids: list[str], server_pid: int, capacity: float, args) -> list[Step]:
    """Steps at 1x, 2x and 4x the sustained rate: what admission control does past capacity
    (the share answered with the degraded popular list, the 503s, the latency of the rest)."""
    steps = []
    for factor in (1, 2, 4):
        step = run_step(
            url, make_body, ids, capacity * factor, args.step_seconds, server_pid, args.timeout, args.max_in_flight
        )
        print(
            f"  {factor}x = {step.rate:6.0f} req/s: answered {step.ok}/{step.sent}, degraded "
            f"{step.degraded / max(step.ok, 1):6.1%}, 503 {step.rejected}, "
            f"p50 {step.p50_ms:6.1f} p99 {step.p99_ms:7.1f} ms",
            flush=True,
        )
        steps.append(step)
    return steps


def start_anchor(kind: str, port: int, store: str) -> subprocess.Popen:
    """What the HintQ path is measured against, on the same store: Feast's own feature server
    (`feast serve`), or the bare KServe CTR predictor. Ready when its URL answers."""
    import urllib.request

    from core.feature_store import FEATURE_REPO, prepare_environment
    from servers.launch import server_env

    if kind == "feast":
        yaml = prepare_environment(store)
        bin_dir = Path(sys.executable).parent
        argv = [str(bin_dir / "feast"), "-c", str(FEATURE_REPO), "-f", str(yaml)]
        # no worker recycling (its default restarts a worker every 1,000 requests: a stall)
        argv += ["serve", "-h", "127.0.0.1", "-p", str(port), "--no-access-log", "--max-requests", "100000000"]
        ready = f"http://127.0.0.1:{port}/health"
    else:
        argv = [sys.executable, "-m", "servers.kserve_server", "predictor", "--http_port", str(port)]
        ready = f"http://127.0.0.1:{port}/v1/models/ctr"
    proc = subprocess.Popen(
        argv, env=server_env(), start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(ready, timeout=2) as r:
                if r.status == 200:
                    return proc
        except OSError:
            time.sleep(0.5)
    os.killpg(proc.pid, signal.SIGKILL)
    raise RuntimeError(f"{kind} anchor not ready at {ready}")


def anchor_requests(kind: str, ids: list[str], store: str) -> tuple[str, Callable]:
    """(path, user -> body) for an anchor: Feast's read of the user's HintQ features, or the CTR
    rows HintQ would score for the user (built in process once, before the run)."""
    if kind == "feast":
        body = lambda u: {"feature_service": "hintq_online_v2", "entities": {"user_id": [u], "request_hour": [12]}}  # noqa: E731
        return "/get-online-features", body
    from serving.config import ServingConfig
    from serving.hintq import HintQ

    hintq = HintQ(ServingConfig(store=store, log=False, direct_model="none"))
    rows = {}
    for u in dict.fromkeys(ids[:300]):
        prepared = hintq.prepare(hintq_request(u))
        rows[u] = [{k: v for k, v in r.items() if not isinstance(v, float) or v == v} for r in prepared.rows]
    hintq.close()
    known = [u for u, r in rows.items() if r]
    return "/v1/models/ctr:predict", lambda u: {"instances": rows[u] if rows.get(u) else rows[known[0]]}


def hintq_request(user: str):
    from serving.contract import parse_request

    return parse_request({"user_id": user, "k": 8, "context": {"hour": 12}})


def prepare_redis(home: Path) -> None:
    """The demo's serving state on the Redis online store (PostgreSQL registry)."""
    import pandas as pd

    from pipelines import features, nearline, think

    store = "redis_postgres"
    features.apply(store)
    features.materialize(store)
    features.push_sessions(store)
    think.push_mappings(pd.read_parquet(home / "think" / "mappings.parquet"), store)
    nearline.main(nearline.NearlineConfig(store=store))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--stores", default="sqlite,redis_postgres")
    parser.add_argument("--servers", default="bento,kserve")
    parser.add_argument("--start-rate", type=float, default=20.0)
    parser.add_argument("--step", type=float, default=20.0)
    parser.add_argument("--max-rate", type=float, default=400.0)
    parser.add_argument("--step-seconds", type=float, default=8.0)
    parser.add_argument("--p99-ms", type=float, default=50.0, help="a step passes with p99 at or under this")
    parser.add_argument(
        "--max-degraded", type=float, default=0.01, help="a step passes with at most this share of degraded answers"
    )
    parser.add_argument(
        "--anchors", default="", help="also load feast (feast serve) and/or ctr (the bare KServe predictor)"
    )
    parser.add_argument("--overload", action="store_true", help="then offer 1x, 2x and 4x the sustained rate")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="ServingConfig override")
    parser.add_argument("--timeout", type=float, default=5.0, help="per-request timeout, seconds (counts as an error)")
    parser.add_argument("--max-in-flight", type=int, default=128)
    parser.add_argument("--max-requests", type=int, default=40000, help="cap on all requests of the run")
    parser.add_argument("--max-minutes", type=float, default=30.0, help="cap on the run's wall time")
    parser.add_argument("--port", type=int, default=8810)
    parser.add_argument("--skip-prepare", action="store_true", help="the Redis store is already filled")
    args = parser.parse_args()

    import logging

    from bench_serving import users

    from core.config import aigq_home
    from servers.launch import spawn, stop_spawned

    logging.getLogger("feast").setLevel(logging.ERROR)
    home = aigq_home()
    os.environ["AIGQ_HOME"] = str(home)
    ids = users(home, 4000)
    budget = {"requests": 0, "deadline": time.monotonic() + 60 * args.max_minutes}
    table, overloads = [], []
    for store in args.stores.split(","):
        if store == "redis_postgres" and not args.skip_prepare:
            print("preparing the Redis online store ...", flush=True)
            prepare_redis(home)
        for server in args.servers.split(","):
            path, make_body = SERVERS[server]
            port = args.port + (10 if server == "kserve" else 0)
            print(f"{server} on {store}:", flush=True)
            proc = spawn(server, port, home, store=store, overrides=tuple(args.set))
            url = f"http://127.0.0.1:{port}{path}"
            try:
                steps = step_up(url, make_body, ids, proc.pid, args, budget)
                best = max(
                    (s for s in steps if s.passed(args.p99_ms, args.max_degraded)), key=lambda s: s.rate, default=None
                )
                if args.overload and best is not None:
                    overloads.append((server, store, overload(url, make_body, ids, proc.pid, best.rate, args)))
            finally:
                stop_spawned(proc)
            table.append((server, store, best, steps[-1] if steps else None))
        for anchor in [a for a in args.anchors.split(",") if a]:
            print(f"anchor {anchor} on {store}:", flush=True)
            path, make_body = anchor_requests(anchor, ids, store)
            proc = start_anchor(anchor, args.port + 20, store)
            try:
                steps = step_up(f"http://127.0.0.1:{args.port + 20}{path}", make_body, ids, proc.pid, args, budget)
            finally:  # the whole group: feast serve's workers hold the port otherwise
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            best = max((s for s in steps if s.passed(args.p99_ms)), key=lambda s: s.rate, default=None)
            table.append((f"[{anchor}]", store, best, steps[-1] if steps else None))

    print(
        f"\nHighest sustained rate with zero errors and p99 <= {args.p99_ms:.0f} ms "
        f"({args.step_seconds:.0f} s steps of +{args.step:.0f} req/s; 5% unknown users)"
    )
    print(
        f"{'server':7s} {'store':15s} {'req/s':>6s} {'p50 ms':>7s} {'p99 ms':>7s} {'p999 ms':>8s} "
        f"{'degraded':>8s} {'srv CPU ms/req':>14s} {'client CPU ms/req':>17s}  first failing step"
    )
    for server, store, best, last in table:
        fail = (
            "-"
            if last is None or last.passed(args.p99_ms, args.max_degraded)
            else f"{last.rate:.0f} req/s: p99 {last.p99_ms:.0f} ms, {last.errors} errors, {last.degraded} degraded"
        )
        if best is None:
            print(f"{server:7s} {store:15s} {'none':>6s}  {fail}")
            continue
        print(
            f"{server:7s} {store:15s} {best.rate:6.0f} {best.p50_ms:7.1f} {best.p99_ms:7.1f} {best.p999_ms:8.1f} "
            f"{best.degraded / max(best.ok, 1):8.1%} {best.server_cpu_ms:14.2f} {best.client_cpu_ms:17.2f}  {fail}"
        )

    if overloads:
        print("\nPast capacity (admission control): offered rate, answered, degraded share, 503s, latency")
        print(
            f"{'server':7s} {'store':15s} {'x':>3s} {'req/s':>6s} {'answered':>9s} {'degraded':>8s} {'503':>5s} "
            f"{'p50 ms':>7s} {'p99 ms':>7s}"
        )
        for server, store, steps in overloads:
            for factor, st in zip((1, 2, 4), steps):
                print(
                    f"{server:7s} {store:15s} {factor:3d} {st.rate:6.0f} {st.ok:9d} "
                    f"{st.degraded / max(st.ok, 1):8.1%} {st.rejected:5d} {st.p50_ms:7.1f} {st.p99_ms:7.1f}"
                )


if __name__ == "__main__":
    main()
