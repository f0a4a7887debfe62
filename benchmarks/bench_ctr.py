"""Benchmark: in-process CTR scoring throughput, batch 1 vs batch 64 candidates per call.

Needs a trained model and the CTR frame (`aigq demo`, or `aigq features frames && aigq train ctr`).

    python benchmarks/bench_ctr.py [--seconds 5]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd


def run(scorer, context: dict, candidates: list, seconds: float) -> tuple[float, float, float]:
    lat = []
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        t = time.perf_counter()
        scorer.score(context, candidates)
        lat.append(time.perf_counter() - t)
    lat_ms = np.array(lat) * 1000
    return len(candidates) * len(lat) / sum(lat), float(np.percentile(lat_ms, 50)), float(np.percentile(lat_ms, 99))


def main() -> None:
    import torch

    from core.config import aigq_home
    from models.ctr import CTRScorer

    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    scorer = CTRScorer(aigq_home() / "models" / "ctr")
    frame = pd.read_parquet(aigq_home() / "frames" / "ctr.parquet").dropna(subset=["top_categories_30d"])
    context = frame.iloc[-1].to_dict()
    qcols = [
        "query",
        "query_category_id",
        "query_domain",
        "q_n_search_7d",
        "q_n_search_30d",
        "q_search_share_30d",
        "q_impressions_30d",
        "q_clicks_30d",
        "q_ctr_30d",
        "q_coec_30d",
    ]
    pool = frame[qcols].drop_duplicates("query").head(64)
    candidates = [{k: v for k, v in r.items()} for r in pool.to_dict("records")]
    print(f"CTR scoring in-process ({args.threads} thread(s), {args.seconds:.0f} s per setting)")
    print(f"{'batch':>6s} {'candidates/s':>14s} {'p50 ms':>9s} {'p99 ms':>9s}")
    results = {}
    for batch in (1, 64):
        results[batch] = run(scorer, context, candidates[:batch], args.seconds)
        rate, p50, p99 = results[batch]
        print(f"{batch:>6d} {rate:>14,.0f} {p50:>9.2f} {p99:>9.2f}")
    print(f"batch 64 scores {results[64][0] / results[1][0]:.1f}x more candidates per second than batch 1")


if __name__ == "__main__":
    main()
