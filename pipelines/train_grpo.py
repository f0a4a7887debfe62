"""`aigq train grpo`: IL-GRPO of AIGQ-Direct with TRL's GRPOTrainer, from the IL-SFT model.

Rewards (`pipelines/rewards.py`) are weighted in the config; TRL logs each component
(`rewards/<name>/mean`), kept in `reward_history.json`. After training, the SFT and GRPO models
generate for held-out session starts and the mean total reward and components of both are
recorded (`heldout_reward` in the model card). `--set ablation=true` trains three variants
(relevance; relevance + list; relevance + list + CTR) and evaluates them side by side in
`reports/grpo_ablation.{json,md}`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import numpy as np
import pandas as pd

from models import base_lm
from pipelines.config import aigq_home, git_revision, option
from pipelines.errors import AigqError
from pipelines.window import holdout_start

LIST_COMPONENTS = ("diversity", "coverage", "novelty", "format")


@dataclass
class TrainGRPOConfig:
    sft_model: str = option("", "the IL-SFT model directory (default $AIGQ_HOME/models/direct_sft)")
    adapter: str = option("full", "full | lora (a LoRA adapter, merged after training)")
    # defaults from the ablation on the demo world: rewards normalised per group before the
    # weighted sum (GDPO) so the small-valued CTR reward is not drowned; novelty off because it
    # pulled lists towards rare attribute variants users click less
    w_relevance: float = option(2.0, "weight of the per-query relevance reward")
    w_diversity: float = option(3.0, "weight of the distinct-categories reward")
    w_coverage: float = option(0.5, "weight of the interest-coverage reward")
    w_novelty: float = option(0.0, "weight of the not-recently-searched reward")
    w_format: float = option(0.5, "weight of the format reward (K usable queries)")
    w_popularity: float = option(4.0, "weight of the searched-in-your-interests reward (log-scaled query "
                                            "search counts; counters the drift to rare variants users never type)")
    w_ctr: float = option(2.0, "weight of the CTR-model reward (0: no CTR model needed)")
    max_steps: int = option(100, "optimiser steps (about 1 s each on 2 cores)")
    batch_size: int = option(32, "completions per step (a multiple of num_generations)")
    num_generations: int = option(8, "group size G: completions per prompt")
    max_completion_length: int = option(64, "generated tokens per completion")
    temperature: float = option(1.0, "sampling temperature during training")
    lr: float = option(5e-4, "learning rate (tiny model ~5e-4)")
    kl_beta: float = option(0.1, "KL penalty to the SFT model (0: none, and no reference model kept)")
    aggregation: str = option("normalize_then_sum", "how TRL combines rewards: sum_then_normalize | "
                                                   "normalize_then_sum (GDPO: each reward normalised per group first)")
    max_prompts: int = option(3000, "training prompts sampled from the IL-SFT samples")
    eval_prompts: int = option(300, "held-out prompts for the SFT-vs-GRPO reward comparison")
    holdout_days: float = option(5.0, "sessions in the last N days are held out (must match evaluation)")
    ablation: bool = option(False, "train the three reward ablations and evaluate them (reports/grpo_ablation)")
    seed: int = option(0, "seed")
    threads: int = option(2, "torch CPU threads")
    output_dir: str = option("", "model directory (default $AIGQ_HOME/models/direct_grpo)")

    def weights(self) -> dict[str, float]:
        return {"relevance": self.w_relevance, "diversity": self.w_diversity, "coverage": self.w_coverage,
                "novelty": self.w_novelty, "format": self.w_format, "popularity": self.w_popularity, "ctr": self.w_ctr}


def model_dir(cfg: TrainGRPOConfig | None = None) -> Path:
    return Path(cfg.output_dir) if cfg and cfg.output_dir else aigq_home() / "models" / "direct_grpo"


def training_cutoff(home: Path, holdout_days: float) -> pd.Timestamp:
    starts = pd.read_parquet(home / "frames" / "sft_contexts.parquet", columns=["event_timestamp"])
    return holdout_start(starts["event_timestamp"], holdout_days)


def query_popularity(home: Path, cutoff) -> dict[str, float]:
    """log1p(30-day searches) of each query, scaled to [0, 1], from the last daily statistics
    before the cut-off (later ones would leak the held-out days into training)."""
    from pipelines.hybrid_policy import query_stats_at

    stats = query_stats_at(home / "features" / "query_stats.parquet", cutoff)
    logs = {q: float(np.log1p(r.get("q_n_search_30d") or 0.0)) for q, r in stats.items()}
    top = max(logs.values(), default=0.0) or 1.0
    return {q: v / top for q, v in logs.items()}


def reward_context(home: Path, k: int = 8, with_ctr: bool = True, with_query_stats: bool = False,
                   with_popularity: bool = False, stats_cutoff=None):
    """Catalogue lookups, the CTR scorer and (optionally) per-query CTR features and popularity
    for the rewards, both from the daily query statistics as of `stats_cutoff` (training passes
    the hold-out start, so held-out days never shape a reward; None = the newest).

    Query statistics are off by default: historical CTR/COEC come from legacy placements (popular
    queries shown to everyone look unattractive, never-shown ones look average), and GRPO
    exploited that bias by drifting to rare queries. Without them the CTR reward judges a query by
    its text, category and the user's context."""
    from pipelines.catalog import longest_named
    from pipelines.generator_policy import catalogue_validator
    from pipelines.rewards import RewardContext

    queries = pd.read_parquet(home / "data" / "queries.parquet")
    vocab = dict(zip(queries["query"], queries["category_id"]))
    ptypes = dict(zip(queries["ptype"], queries["category_id"]))
    scorer, feats = None, None
    if with_ctr:
        from models.ctr import CTRScorer

        ctr_dir = home / "models" / "ctr"
        if not (ctr_dir / "model.pt").exists():
            raise AigqError(f"{ctr_dir}: no CTR model for the CTR reward; run `aigq train ctr` or set w_ctr=0")
        scorer = CTRScorer(ctr_dir)
        if with_query_stats:
            from pipelines.hybrid_policy import query_stats_at

            feats = query_stats_at(home / "features" / "query_stats.parquet", stats_cutoff)
    popularity = query_popularity(home, stats_cutoff) if with_popularity else None
    return RewardContext(category_of=lambda q: vocab.get(q) or longest_named(q, ptypes),
                         is_valid=catalogue_validator(queries), k=k, ctr_scorer=scorer, query_features=feats,
                         query_popularity=popularity)


def heldout_prompts(home: Path, cfg: TrainGRPOConfig) -> pd.DataFrame:
    """Prompts and contexts of session starts inside the hold-out window (never trained on)."""
    from pipelines.datasets import context_json, prompts_for

    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet")
    cutoff = holdout_start(ctx["event_timestamp"], cfg.holdout_days)  # the frame is already read
    held = ctx[ctx["event_timestamp"] >= cutoff]
    held = held.sample(min(cfg.eval_prompts, len(held)), random_state=cfg.seed)
    records = held.to_dict("records")
    categories = pd.read_parquet(home / "data" / "categories.parquet")
    return pd.DataFrame({"prompt": prompts_for(records, categories), "context_json": [context_json(r) for r in records]})


def mean_reward(model_path: Path, prompts: pd.DataFrame, rewards: dict, weights: dict, seed: int) -> dict:
    from models.generator import DirectGenerator, GenerationConfig
    from pipelines.rewards import total_reward

    gen = DirectGenerator(model_path, GenerationConfig(seed=seed))
    texts = gen.generate_texts(list(prompts["prompt"]))
    total, parts = total_reward(rewards, {n: 1.0 for n in rewards}, list(prompts["prompt"]), texts,
                                context_json=list(prompts["context_json"]))
    weighted = sum(weights[n] * parts[n] for n in parts)
    return {"total": float(np.mean(weighted)), **{n: float(np.mean(v)) for n, v in parts.items()}}


def main(cfg: TrainGRPOConfig, samples: pd.DataFrame | None = None) -> dict:
    if cfg.ablation:
        return run_ablation(cfg)
    return train(cfg, samples)


def train(cfg: TrainGRPOConfig, samples: pd.DataFrame | None = None) -> dict:
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    from pipelines.rewards import make_rewards
    from pipelines.train_sft import TrainSFTConfig, load_samples

    started = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    home = aigq_home()
    sft = Path(cfg.sft_model) if cfg.sft_model else home / "models" / "direct_sft"
    if not (sft / "config.json").exists():
        raise AigqError(f"{sft}: no IL-SFT model; run `aigq train sft` first")
    if cfg.batch_size % cfg.num_generations:
        raise AigqError(f"batch_size {cfg.batch_size} must be a multiple of num_generations {cfg.num_generations}")
    if cfg.adapter not in ("full", "lora"):
        raise AigqError(f"adapter {cfg.adapter!r}: expected full or lora")
    weights = cfg.weights()
    active = {n: w for n, w in weights.items() if w}
    rewards = make_rewards(reward_context(home, with_ctr=bool(cfg.w_ctr), with_popularity=bool(cfg.w_popularity),
                                          stats_cutoff=training_cutoff(home, cfg.holdout_days)))
    funcs = [rewards[n] for n in active]
    if samples is None:
        samples = load_samples(TrainSFTConfig(holdout_days=cfg.holdout_days, seed=cfg.seed))
    samples = samples.sample(min(cfg.max_prompts, len(samples)), random_state=cfg.seed)
    dataset = Dataset.from_pandas(samples[["prompt", "context_json"]], preserve_index=False)
    model, tokenizer = base_lm.load(sft, for_training=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    peft_config = None
    if cfg.adapter == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory() as scratch:
        args = GRPOConfig(
            output_dir=scratch, max_steps=cfg.max_steps, per_device_train_batch_size=cfg.batch_size,
            num_generations=cfg.num_generations, max_completion_length=cfg.max_completion_length,
            temperature=cfg.temperature, learning_rate=cfg.lr, beta=cfg.kl_beta,
            reward_weights=list(active.values()), multi_objective_aggregation=cfg.aggregation, logging_steps=max(1, min(5, cfg.max_steps // 4)),
            save_strategy="no", report_to="none", seed=cfg.seed, bf16=False, use_cpu=True,
            gradient_checkpointing=False, dataloader_num_workers=0, disable_tqdm=False,
        )
        trainer = GRPOTrainer(model=model, reward_funcs=funcs, args=args, train_dataset=dataset,
                              processing_class=tokenizer, peft_config=peft_config)
        t_train = time.perf_counter()
        trainer.train()
        train_seconds = time.perf_counter() - t_train
        history = [h for h in trainer.state.log_history if "reward" in h]
    trained = trainer.model.merge_and_unload() if cfg.adapter == "lora" else trainer.model
    out = model_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    trained.save_pretrained(out)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(out)
    changed = float(np.mean([not torch.equal(before[n], p.detach()) for n, p in trained.named_parameters()
                             if n in before]))
    held = heldout_prompts(home, cfg)
    comparison = {"sft": mean_reward(sft, held, rewards if cfg.w_ctr else _without_ctr(rewards), weights, cfg.seed),
                  "grpo": mean_reward(out, held, rewards if cfg.w_ctr else _without_ctr(rewards), weights, cfg.seed)}
    seconds = time.perf_counter() - started
    metrics = {"steps": cfg.max_steps, "seconds": seconds, "seconds_per_step": train_seconds / max(cfg.max_steps, 1),
               "share_of_tensors_changed": changed, "heldout_reward": comparison,
               "first_reward": history[0]["reward"] if history else None,
               "last_reward": history[-1]["reward"] if history else None, "weights": active}
    (out / "reward_history.json").write_text(json.dumps(history, indent=1))
    base_lm.write_card(out, "AIGQ-Direct (IL-GRPO)", {
        "base": str(sft), "method": f"TRL GRPOTrainer ({cfg.adapter}), G={cfg.num_generations}, KL beta {cfg.kl_beta}",
        "rewards": active, "data window": f"IL-SFT prompts before the last {cfg.holdout_days} days",
        "config": asdict(cfg), "metrics": metrics, "git revision": git_revision(), "from_scratch": False,
    })
    return metrics


def _without_ctr(rewards: dict) -> dict:
    return {n: f for n, f in rewards.items() if n != "ctr"}


ABLATIONS = {
    "direct_grpo_rel": dict(w_diversity=0.0, w_coverage=0.0, w_novelty=0.0, w_format=0.0, w_ctr=0.0),
    "direct_grpo_rel_list": dict(w_ctr=0.0),
    "direct_grpo": {},
}


def run_ablation(cfg: TrainGRPOConfig) -> dict:
    """Three GRPO runs from the same SFT model, then the harness on all of them beside SFT."""
    from pipelines import evaluate

    results = {}
    for name, overrides in ABLATIONS.items():
        variant = replace(cfg, ablation=False, output_dir=str(aigq_home() / "models" / name), **overrides)
        results[name] = train(variant)
    report_dir = aigq_home() / "reports"
    doc = evaluate.main(evaluate.EvaluateConfig(policies=["legacy", "direct_sft", *ABLATIONS], plots=False,
                                                output_dir=str(report_dir / "grpo_ablation")))
    summary = {"training": results, "evaluation": {p: doc["policies"][p]["all"] for p in doc["policies"]},
               "generation": doc["generation"]}
    (report_dir / "grpo_ablation.json").write_text(json.dumps(summary, indent=1, default=float))
    (report_dir / "grpo_ablation.md").write_text(ablation_markdown(summary))
    return results["direct_grpo"] | {"ablation": summary}


def ablation_markdown(summary: dict) -> str:
    cols = ("hit_rate@8", "ndcg@8", "sim_ctr", "sim_ctr_lift", "distinct_categories", "ild_category", "novelty",
            "serendipity")
    lines = ["# IL-GRPO reward ablation", "",
             "| policy | rewards | held-out total reward (own weights) | " + " | ".join(cols) + " |",
             "|---" * (len(cols) + 3) + "|"]
    for name, row in summary["evaluation"].items():
        train = summary["training"].get(name, {})
        rewards = ", ".join(train.get("weights", {})) or "-"
        held = train.get("heldout_reward", {}).get("grpo", {}).get("total")
        held_s = f"{held:.3f} (SFT {train['heldout_reward']['sft']['total']:.3f})" if held is not None else "-"
        lines.append(f"| {name} | {rewards} | {held_s} | " + " | ".join(f"{row[c]:.4f}" for c in cols) + " |")
    return "\n".join(lines) + "\n"
