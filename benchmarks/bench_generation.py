"""Benchmark: AIGQ-Direct generation throughput in lists/s, side by side in one run:
the naive loop (one user at a time, no KV cache), one user at a time with the KV cache, and
batches of 32 with left padding and the KV cache.

Needs a trained Direct model and the SFT context frame (`aigq demo`).

    python benchmarks/bench_generation.py [--model direct_sft] [--users 64]
"""

from __future__ import annotations

import argparse
import time

import pandas as pd


def main() -> None:
    import torch

    from core.config import aigq_home
    from models.generator import DirectGenerator
    from pipelines.datasets import prompts_for

    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default="direct_sft")
    parser.add_argument("--users", type=int, default=64)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    home = aigq_home()
    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet").tail(args.users).to_dict("records")
    prompts = prompts_for(ctx, pd.read_parquet(home / "data" / "categories.parquet"))
    gen = DirectGenerator(home / "models" / args.model)
    gen.generate(prompts[:4])  # warm-up
    settings = [
        ("naive loop (batch 1, no KV cache)", 1, False),
        ("batch 1, KV cache", 1, True),
        ("batch 32, KV cache", 32, True),
    ]
    print(
        f"AIGQ-Direct generation, {len(prompts)} users, {args.threads} threads, "
        f"max_new_tokens {gen.config.max_new_tokens}"
    )
    rates = {}
    for label, batch, cache in settings:
        t = time.perf_counter()
        out = gen.generate(prompts, use_cache=cache, batch_size=batch)
        rates[label] = len(out) / (time.perf_counter() - t)
        parsed = sum(o.n_parsed for o in out) / len(out)
        print(f"  {label:36s} {rates[label]:8.1f} lists/s   (usable queries per list {parsed:.1f})")
    naive = rates[settings[0][0]]
    print(f"  batch 32 vs naive loop: {rates[settings[2][0]] / naive:.1f}x")


if __name__ == "__main__":
    main()
