"""How the Direct model decodes, one row per setting: the same held-out requests, the same model
and the same fallback, scored by the world's click model (`aigq evaluate`'s metrics), next to
the strongest non-generative policy of the run.

    AIGQ_HOME=<a demo home> python benchmarks/bench_decoding.py [--model direct_sft direct_grpo]
        [--requests 2000] [--setting constrained=0,temperature=0.7 --setting samples=4 ...]

Writes reports/decoding.json; prints one table per slice (all, cold) and, per policy, how often
the list names a category the user then searched and how much of it stays in known categories.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np
import pandas as pd

from core.catalogue import QueryCatalogue
from core.config import aigq_home
from core.feature_store import open_store
from models.generator import DirectGenerator, GenerationConfig
from pipelines import evaluate
from pipelines.baselines import PopularityPolicy
from pipelines.eval_context import EvaluateConfig, load_context
from pipelines.eval_policies import make_policies
from pipelines.generator_policy import GeneratorPolicy, feast_contexts

DEFAULT_SETTINGS = (
    "constrained=0,temperature=0.7",  # the decoding before constrained decoding (free text, fallback fill)
    "constrained=0,temperature=0.3",
    "constrained=1,temperature=0.7",
    "constrained=1,temperature=0.3",  # the default
    "constrained=1,temperature=0.3,samples=4",
)
REFERENCES = ["popularity_incat", "popularity_segment"]
COLUMNS = ("sim_ctr", "hit_rate@8", "distinct_categories", "serendipity", "novelty")


ALIASES = {"samples": "num_samples"}


def parse_setting(text: str) -> dict:
    """'samples=8,temperature=1.0' -> GenerationConfig keyword arguments of the fields' types."""
    defaults, out = GenerationConfig(), {}
    for part in text.split(","):
        key, _, value = part.partition("=")
        name = ALIASES.get(key.strip(), key.strip())
        kind = type(getattr(defaults, name))
        out[name] = value.lower() in ("1", "true", "yes") if kind is bool else kind(value)
    return out


class TimedGenerator(DirectGenerator):
    """Counts the seconds spent generating (the cost side of a decoding setting)."""

    seconds = 0.0

    def generate(self, *args, **kwargs):
        t = time.perf_counter()
        try:
            return super().generate(*args, **kwargs)
        finally:
            self.seconds += time.perf_counter() - t


def category_diagnostics(lists: list[list[str]], ctx, k: int) -> dict:
    """Why a list misses: does it name a category the user then searched (category hit), and how
    much of it stays in categories the user engaged with before (known share)?"""
    hits, known = [], []
    for i, ranked in enumerate(lists):
        cats = {ctx.category(q) for q in ranked[:k]}
        if ctx.truth[i]:
            hits.append(bool(cats & {ctx.category(q) for q in ctx.truth[i]}))
        seen = ctx.user_history(i)[1]
        known.append(sum(ctx.category(q) in seen for q in ranked[:k]) / max(len(ranked[:k]), 1))
    return {"category_hit@8": float(np.mean(hits)), "known_category_share": float(np.mean(known))}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", nargs="+", default=["direct_grpo"], help="model directories under models/")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--references", nargs="*", default=REFERENCES, help="non-generative policies beside")
    ap.add_argument("--setting", action="append", help="key=value[,key=value]: GenerationConfig fields")
    args = ap.parse_args()
    home = aigq_home()
    cfg = EvaluateConfig(max_requests=args.requests, policies=args.references, plots=False)
    ctx = load_context(cfg)
    data = home / "data"
    categories = pd.read_parquet(data / "categories.parquet")
    catalogue = QueryCatalogue(pd.read_parquet(data / "queries.parquet"), categories)
    contexts = feast_contexts(open_store(cfg.store))
    fallback = PopularityPolicy(ctx.log, ctx.cutoff, in_categories=True)
    generators = []
    for model in args.model:
        for text in args.setting or DEFAULT_SETTINGS:
            gen = TimedGenerator(
                home / "models" / model,
                GenerationConfig(**parse_setting(text)),
                catalogue.is_valid,
                vocabulary=list(catalogue.category_of),
                category_of=catalogue.category_of,
            )
            generators.append(GeneratorPolicy(f"{model} {text}", gen, contexts, categories, fallback))
    report, lists = evaluate.run(make_policies(cfg, ctx) + generators, ctx, cfg.k)
    seconds = {p.name: round(p.generator.seconds, 1) for p in generators}
    generation = {p.name: p.generation_stats() for p in generators}
    diagnostics = {name: category_diagnostics(ls, ctx, cfg.k) for name, ls in lists.items()}
    for slice_name in ("all", "cold"):
        print(f"\nslice {slice_name} ({next(iter(report.values()))[slice_name]['n_lists']} lists)")
        print("| policy | " + " | ".join(COLUMNS) + " | shortfall | validity | seconds |")
        print("|---" * (len(COLUMNS) + 4) + "|")
        for name, row in report.items():
            g = generation.get(name, {})
            extra = f"{g['shortfall_rate']:.3f} | {g['raw_validity']:.4f} | {seconds[name]}" if g else "- | - | -"
            print(f"| {name} | " + " | ".join(f"{row[slice_name][c]:.3f}" for c in COLUMNS) + f" | {extra} |")
    print("\n| policy (all) | category hit@8 | share in known categories |\n|---|---|---|")
    for name, d in diagnostics.items():
        print(f"| {name} | {d['category_hit@8']:.3f} | {d['known_category_share']:.3f} |")
    out = home / "reports" / "decoding.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    doc = {"policies": report, "generation": generation, "seconds": seconds, "diagnostics": diagnostics}
    out.write_text(json.dumps(doc, indent=1, default=float))
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
