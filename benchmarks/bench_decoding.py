"""How the Direct model decodes, one row per setting: the same held-out requests, the same model
and the same fallback, scored by the world's click model (`aigq evaluate`'s metrics), next to
the strongest non-generative policy of the run.

    AIGQ_HOME=<a demo home> python benchmarks/bench_decoding.py [--model direct_grpo] [--requests 2000]
        [--setting samples=1,temperature=0.7 --setting samples=8,temperature=1.0 ...]

Writes reports/decoding.json; prints one table per slice (all, cold).
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time

import pandas as pd

from core.config import aigq_home
from core.feature_store import open_store
from models.generator import DirectGenerator, GenerationConfig
from pipelines import evaluate
from pipelines.baselines import PopularityPolicy
from pipelines.eval_context import EvaluateConfig, load_context
from pipelines.generator_policy import GeneratorPolicy, catalogue_validator, feast_contexts

DEFAULT_SETTINGS = (
    "samples=1,temperature=0.7",
    "samples=4,temperature=0.7",
    "samples=8,temperature=0.7",
    "samples=8,temperature=1.0",
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


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="direct_grpo")
    ap.add_argument("--requests", type=int, default=2000)
    ap.add_argument("--references", nargs="*", default=REFERENCES, help="non-generative policies beside")
    ap.add_argument("--setting", action="append", help="key=value[,key=value]: GenerationConfig fields")
    args = ap.parse_args()
    home = aigq_home()
    cfg = EvaluateConfig(
        max_requests=args.requests, policies=args.references, plots=False, output_dir=tempfile.mkdtemp()
    )
    ctx = load_context(cfg)
    data = home / "data"
    queries = pd.read_parquet(data / "queries.parquet")
    categories = pd.read_parquet(data / "categories.parquet")
    contexts = feast_contexts(open_store(cfg.store))
    fallback = PopularityPolicy(ctx.log, ctx.cutoff, in_categories=True)
    policies = []
    for text in args.setting or DEFAULT_SETTINGS:
        gen = TimedGenerator(
            home / "models" / args.model,
            GenerationConfig(**parse_setting(text)),
            catalogue_validator(queries),
            vocabulary=list(queries["query"]),
        )
        policies.append(GeneratorPolicy(f"{args.model} {text}", gen, contexts, categories, fallback))
    doc = evaluate.main(cfg, policies)
    seconds = {p.name: round(p.generator.seconds, 1) for p in policies}
    report, generation = doc["policies"], doc["generation"]
    for slice_name in ("all", "cold"):
        print(f"\nslice {slice_name} ({next(iter(report.values()))[slice_name]['n_lists']} lists)")
        print("| policy | " + " | ".join(COLUMNS) + " | shortfall | validity | seconds |")
        print("|---" * (len(COLUMNS) + 4) + "|")
        for name, row in report.items():
            g = generation.get(name, {})
            extra = f"{g['shortfall_rate']:.3f} | {g['raw_validity']:.4f} | {seconds[name]}" if g else "- | - | -"
            print(f"| {name} | " + " | ".join(f"{row[slice_name][c]:.3f}" for c in COLUMNS) + f" | {extra} |")
    out = home / "reports" / "decoding.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(
        json.dumps({"policies": report, "generation": generation, "seconds": seconds}, indent=1, default=float)
    )
    print(f"\nwrote {out}")


if __name__ == "__main__":
    main()
