"""`aigq train grpo --set ablation=true`: the IL-GRPO reward ablation. Three runs from the same
SFT model (relevance; relevance + list rewards; relevance + list + CTR), then the evaluation
harness on all of them beside SFT -> `reports/grpo_ablation.{json,md}`. Apart from training
because it evaluates (and evaluation reads the simulated world, which training never does)."""

from __future__ import annotations

import json
from dataclasses import replace

from core.config import aigq_home
from pipelines import evaluate, train_grpo
from pipelines.train_grpo import TrainGRPOConfig

ABLATIONS = {
    "direct_grpo_rel": dict(w_diversity=0.0, w_coverage=0.0, w_novelty=0.0, w_format=0.0, w_ctr=0.0),
    "direct_grpo_rel_list": dict(w_ctr=0.0),
    "direct_grpo": {},
}


def main(cfg: TrainGRPOConfig) -> dict:
    """Three GRPO runs from the same SFT model, then the harness on all of them beside SFT."""

    results = {}
    for name, overrides in ABLATIONS.items():
        variant = replace(cfg, ablation=False, output_dir=str(aigq_home() / "models" / name), **overrides)
        results[name] = train_grpo.main(variant)
    report_dir = aigq_home() / "reports"
    doc = evaluate.main(
        evaluate.EvaluateConfig(
            policies=["legacy", "direct_sft", *ABLATIONS], plots=False, output_dir=str(report_dir / "grpo_ablation")
        )
    )
    summary = {
        "training": results,
        "evaluation": {p: doc["policies"][p]["all"] for p in doc["policies"]},
        "generation": doc["generation"],
    }
    (report_dir / "grpo_ablation.json").write_text(json.dumps(summary, indent=1, default=float))
    (report_dir / "grpo_ablation.md").write_text(ablation_markdown(summary))
    return results["direct_grpo"] | {"ablation": summary}


def ablation_markdown(summary: dict) -> str:
    cols = (
        "hit_rate@8",
        "ndcg@8",
        "sim_ctr",
        "sim_ctr_lift",
        "distinct_categories",
        "ild_category",
        "novelty",
        "serendipity",
    )
    lines = [
        "# IL-GRPO reward ablation",
        "",
        "| policy | rewards | held-out total reward (own weights) | " + " | ".join(cols) + " |",
        "|---" * (len(cols) + 3) + "|",
    ]
    for name, row in summary["evaluation"].items():
        train = summary["training"].get(name, {})
        rewards = ", ".join(train.get("weights", {})) or "-"
        held = train.get("heldout_reward", {}).get("grpo", {}).get("total")
        held_s = f"{held:.3f} (SFT {train['heldout_reward']['sft']['total']:.3f})" if held is not None else "-"
        lines.append(f"| {name} | {rewards} | {held_s} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"
