"""Reviewer flags as IL-GRPO negatives: does the flagged queries' rate fall?

Flags (in a review database of its own, never the shop's) the 5 queries the IL-SFT model writes
most often for training prompts, then runs IL-GRPO twice from the same SFT model, seed and steps:
with the flag penalty (`w_flagged=4`, the default) and without it (`w_flagged=0`). Reports, on
held-out prompts, the share of generated queries that are flagged and of lists holding one, for
SFT and both GRPO models, and the held-out total reward. Writes reports/flag_ablation.json.

    python benchmarks/bench_flag_ablation.py        (after `make demo`; two GRPO runs, minutes)
"""

from __future__ import annotations

import collections
import json
import os
import tempfile

from core.config import aigq_home
from models.generator import DirectGenerator, GenerationConfig, candidates
from pipelines import train_grpo
from pipelines.train_sft import TrainSFTConfig, load_samples
from serving.review import ReviewStore


def flagged_rates(model, prompts: list[str], flagged: set[str]) -> dict:
    texts = DirectGenerator(model, GenerationConfig(seed=0)).generate_texts(prompts)
    lists = [candidates(t) for t in texts]
    queries = [q for qs in lists for q in qs]
    return {
        "queries": len(queries),
        "flagged_share": sum(q in flagged for q in queries) / max(len(queries), 1),
        "lists_with_flagged": sum(bool(set(qs) & flagged) for qs in lists) / max(len(lists), 1),
    }


def main() -> None:
    home = aigq_home()
    os.environ["AIGQ_REVIEW_URL"] = f"sqlite:///{tempfile.mkdtemp(prefix='flag-ablation-')}/review.db"
    sft = home / "models" / "direct_sft"
    samples = load_samples(TrainSFTConfig(seed=0)).sample(300, random_state=1)
    texts = DirectGenerator(sft, GenerationConfig(seed=0)).generate_texts(list(samples["prompt"]))
    counts = collections.Counter(q for t in texts for q in candidates(t))
    flagged = [q for q, _ in counts.most_common(5)]
    store = ReviewStore()
    for q in flagged:
        store.flag("flag-ablation", 0, q, None, "direct", "irrelevant", "bench_flag_ablation")
    store.close()
    prompts = list(train_grpo.heldout_prompts(home, train_grpo.TrainGRPOConfig())["prompt"])
    result = {"flagged": flagged, "sft": flagged_rates(sft, prompts, set(flagged))}
    for weight in (4.0, 0.0):
        out = home / "models" / "flag_ablation" / f"w_flagged_{weight:g}"
        metrics = train_grpo.main(train_grpo.TrainGRPOConfig(w_flagged=weight, output_dir=str(out)))
        result[f"grpo w_flagged={weight:g}"] = {
            **flagged_rates(out, prompts, set(flagged)),
            "heldout_total_reward": metrics["heldout_reward"]["grpo"]["total"],
            "steps": metrics["steps"],
        }
    (home / "reports").mkdir(parents=True, exist_ok=True)
    (home / "reports" / "flag_ablation.json").write_text(json.dumps(result, indent=1))
    print(f"flagged: {flagged}")
    print(f"{'model':22s} {'flagged share':>14s} {'lists with one':>15s}")
    for name in ("sft", "grpo w_flagged=4", "grpo w_flagged=0"):
        r = result[name]
        print(f"{name:22s} {r['flagged_share']:>14.2%} {r['lists_with_flagged']:>15.1%}")


if __name__ == "__main__":
    main()
