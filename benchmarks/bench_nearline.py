"""Nearline Direct throughput, side by side in one run: the batched job (one Feast lookup, one
generate() and one push per batch) against the naive per-user loop (lookup, generate and push one
user at a time), on the same users and model.

    python benchmarks/bench_nearline.py [--users 256] [--batch 64]

Target (issue 6): batched >= 10x the naive loop in lists/s.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--users", type=int, default=1024)
    parser.add_argument("--naive-users", type=int, default=48, help="the naive loop is slow: time fewer users")
    parser.add_argument("--batch", type=int, default=64)
    args = parser.parse_args()
    import logging
    import os

    import torch

    from core.config import aigq_home
    from core.feature_store import open_store
    from models.direct import DirectBatch, newest_direct_model
    from models.generator import build_prompt
    from pipelines.nearline import fetch_contexts, push_lists

    os.environ["AIGQ_HOME"] = str(aigq_home())
    logging.getLogger("feast").setLevel(logging.ERROR)
    torch.set_num_threads(2)
    fs = open_store("sqlite")
    model = newest_direct_model()
    users = list(pd.read_parquet(aigq_home() / "data" / "users.parquet")["user_id"][: args.users])

    def rows(out: pd.DataFrame, version: str) -> pd.DataFrame:
        return out.assign(model_version=version, generated_at=datetime.now(UTC))

    batched = DirectBatch(model, batch_size=args.batch)
    batched(fetch_contexts(fs, users[:4], 12))  # warm-up
    t0 = time.perf_counter()
    for start in range(0, len(users), args.batch):
        chunk = users[start : start + args.batch]
        push_lists(fs, rows(batched(fetch_contexts(fs, chunk, 12)), batched.version))
    batched_s = time.perf_counter() - t0

    from pipelines.nearline import NearlineConfig, generated_batches

    chunks = [users[s : s + args.batch] for s in range(0, len(users), args.batch)]
    t0 = time.perf_counter()  # two single-threaded workers, pool start-up included
    pool_cfg = NearlineConfig(batch_size=args.batch, workers=2)
    for out in generated_batches(model, pool_cfg, (fetch_contexts(fs, c, 12) for c in chunks)):
        push_lists(fs, rows(out, batched.version))
    pool_s = time.perf_counter() - t0

    naive = DirectBatch(model, batch_size=1)
    naive_users = users[: args.naive_users]
    t0 = time.perf_counter()
    for u in naive_users:  # what a per-user job does: one lookup, one uncached generate, one push
        prompt = build_prompt(fetch_contexts(fs, [u], 12).iloc[0].to_dict(), naive.catalogue.name)
        out = naive.generator.generate([prompt], use_cache=False)
        push_lists(fs, rows(pd.DataFrame({"user_id": [u], "queries": [out[0].queries]}), naive.version))
    naive_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    for u in naive_users:  # the per-user loop with the KV cache on (a fairer naive baseline)
        push_lists(fs, rows(naive(fetch_contexts(fs, [u], 12)), naive.version))
    naive_kv_s = time.perf_counter() - t0

    b, n, nk = len(users) / batched_s, len(naive_users) / naive_s, len(naive_users) / naive_kv_s
    p = len(users) / pool_s
    print(f"\nNearline Direct generation with {model.name} (2 CPU threads)")
    print(f"  batched (batch {args.batch}, one lookup/push per batch): {b:7.1f} lists/s ({len(users)} users)")
    print(
        f"  batched on 2 single-threaded worker processes   : {p:7.1f} lists/s ({len(users)} users, start-up included)"
    )
    print(f"  naive per-user loop, no KV cache                : {n:7.1f} lists/s ({len(naive_users)} users)")
    print(f"  per-user loop with KV cache                     : {nk:7.1f} lists/s ({len(naive_users)} users)")
    print(
        f"  speed-up: in process {b / n:.1f}x over the naive loop ({b / nk:.1f}x over the per-user loop with "
        f"KV cache); with 2 workers {p / n:.1f}x ({p / nk:.1f}x)"
    )


if __name__ == "__main__":
    main()
