"""Monitoring cost of one day of serving logs at the `large` profile (100,000 users: 1.41M
sessions over 30 days, about 47,000 HintQ answers a day): write the day through the serving log
(SQLite), then read it back, compute the per-list metrics and run the Evidently report against a
reference day of the same size. Prints seconds per stage and peak RSS.

    python benchmarks/bench_monitoring.py [--lists 47000]

Needs a home with the catalogue (`aigq simulate` of any profile: the catalogue is the same).
"""

from __future__ import annotations

import argparse
import os
import resource
import sys
import tempfile
import time
import uuid
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def synthetic_day(catalogue, n: int, day: pd.Timestamp, rng, concentrated: bool = False) -> list[dict]:
    """n served lists of 8 queries: a few interest categories per user (one if `concentrated`)."""
    by_cat = {}
    for q, c in catalogue.category_of.items():
        by_cat.setdefault(c, []).append(q)
    cats = list(by_cat)
    rows = []
    for i in range(n):
        mine = rng.choice(len(cats), size=1 if concentrated else 3, replace=False)
        queries = []
        while len(queries) < 8:
            pool = by_cat[cats[mine[rng.integers(len(mine))]]]
            q = pool[rng.integers(len(pool))]
            if q not in queries:
                queries.append(q)
        rows.append(
            {
                "request_id": uuid.uuid4().hex,
                "served_at": (day + pd.Timedelta(seconds=int(86400 * i / n))),
                "user_id": f"u{rng.integers(100_000):06d}",
                "k": 8,
                "context": {},
                "queries": queries,
                "sources": list(rng.choice(["direct", "think", "fallback"], 8, p=[0.3, 0.2, 0.5])),
                "scores": list(np.round(np.sort(rng.random(8))[::-1] * 0.5, 6)),
                "categories": [catalogue.category_of[q] for q in queries],
                "degraded": False,
                "model_versions": {"ctr": "bench"},
                "latency_ms": 5.0,
                "server": "bench",
            }
        )
    return rows


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--lists", type=int, default=47_000)
    args = parser.parse_args()
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from core.catalogue import QueryCatalogue
    from core.config import aigq_home
    from monitoring.list_metrics import list_metrics
    from monitoring.reports import MonitorConfig, run_report
    from serving.log import ServingLog, read_log

    catalogue = QueryCatalogue.load(aigq_home() / "data")
    rng = np.random.default_rng(0)
    today = pd.Timestamp.now(tz="UTC").floor("D")
    timings = {}
    with tempfile.TemporaryDirectory() as tmp:
        url = f"sqlite:///{tmp}/log.db"
        rows = synthetic_day(catalogue, args.lists, today - pd.Timedelta(days=1), rng) + synthetic_day(
            catalogue, args.lists, today, rng, concentrated=True
        )
        t = time.perf_counter()
        log = ServingLog(url, batch_size=1000)
        for r in rows:
            log.submit(r)
        log.close()
        timings["write 2 days through the serving log"] = time.perf_counter() - t
        t = time.perf_counter()
        served = read_log(url)
        timings["read the log"] = time.perf_counter() - t
        t = time.perf_counter()
        per_list = list_metrics(served, catalogue, {}, 0)
        timings["per-list metrics"] = time.perf_counter() - t
        days = sorted(per_list["day"].unique())
        reference, current = per_list[per_list["day"] == days[0]], per_list[per_list["day"] == days[1]]
        t = time.perf_counter()
        snapshot = run_report(MonitorConfig(), reference, current, None)
        snapshot.save_html(f"{tmp}/report.html")
        timings["Evidently report (+ HTML)"] = time.perf_counter() - t
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"\nMonitoring one day at the large profile: {args.lists:,} served lists vs a reference day of the same size")
    for name, secs in timings.items():
        print(f"  {name:40s} {secs:7.1f} s")
    two_days = sum(list(timings.values())[1:])
    print(f"  {'the two days (read + metrics + report)':40s} {two_days:7.1f} s; peak RSS {peak_mb:,.0f} MB")
    print(
        f"  reference vs current distinct categories: {reference['distinct_categories'].mean():.2f} -> "
        f"{current['distinct_categories'].mean():.2f}"
    )


if __name__ == "__main__":
    main()
