"""`aigq train grpo`: IL-GRPO of AIGQ-Direct with TRL's GRPOTrainer, from the IL-SFT model.

Rewards (`pipelines/rewards.py`) are weighted in the config; TRL logs each component
(`rewards/<name>/mean`), kept in `reward_history.json`. After training, the SFT and GRPO models
generate for held-out session starts and the mean total reward and components of both are
recorded (`heldout_reward` in the model card). The reward ablation (`aigq train grpo --set
ablation=true`) is `pipelines/grpo_ablation.py`.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.catalogue import longest_named
from core.config import aigq_home, git_revision, option
from core.errors import AigqError
from core.window import holdout_days, holdout_start
from models import base_lm
from models.ctr import CTRScorer
from models.generator import DirectGenerator, GenerationConfig
from pipelines.datasets import context_json, prompts_for
from pipelines.feature_tables import query_stats_at
from pipelines.generator_policy import catalogue_validator
from pipelines.rewards import RewardContext, make_rewards, total_reward
from pipelines.train_sft import TrainSFTConfig, load_samples, trl_arguments
from serving.review import Blocked, ReviewStore

LIST_COMPONENTS = ("diversity", "coverage", "novelty", "format")


# TRL GRPOConfig fields this project sets (about 1 s a step on 2 cores); rewards are normalised per
# group before the weighted sum (GDPO) so the small-valued CTR reward is not drowned
TRL_DEFAULTS = {
    "max_steps": 100,
    "per_device_train_batch_size": 32,
    "num_generations": 8,
    "max_completion_length": 64,
    "temperature": 1.0,
    "learning_rate": 5e-4,
    "beta": 0.1,
    "multi_objective_aggregation": "normalize_then_sum",
}


@dataclass
class TrainGRPOConfig:
    sft_model: str = option("", "the IL-SFT model directory (default $AIGQ_HOME/models/direct_sft)")
    adapter: str = option("full", "full | lora (a LoRA adapter, merged after training)")
    # reward weights from the ablation on the demo world: novelty off because it pulled lists
    # towards rare attribute variants users click less
    w_relevance: float = option(2.0, "weight of the per-query relevance reward")
    w_diversity: float = option(3.0, "weight of the distinct-categories reward")
    w_coverage: float = option(0.5, "weight of the interest-coverage reward")
    w_novelty: float = option(0.0, "weight of the not-recently-searched reward")
    w_format: float = option(0.5, "weight of the format reward (K usable queries)")
    w_popularity: float = option(
        4.0,
        "weight of the searched-in-your-interests reward (log-scaled query "
        "search counts; counters the drift to rare variants users never type)",
    )
    w_ctr: float = option(2.0, "weight of the CTR-model reward (0: no CTR model needed)")
    w_flagged: float = option(
        4.0, "weight of the reviewer-flag penalty (`aigq review`; active only when a flag exists)"
    )
    trl: dict = option(
        {},
        "TRL GRPOConfig fields, any of them, over the defaults "
        f"{TRL_DEFAULTS} (e.g. --set trl.max_steps=200; per_device_train_batch_size a "
        "multiple of num_generations; beta 0 keeps no reference model; "
        "multi_objective_aggregation normalize_then_sum is GDPO); CPU settings are fixed",
    )
    max_prompts: int = option(3000, "training prompts sampled from the IL-SFT samples")
    eval_prompts: int = option(300, "held-out prompts for the SFT-vs-GRPO reward comparison")
    ablation: bool = option(
        False,
        "run the reward ablation instead: three models evaluated side by side "
        "(pipelines/grpo_ablation.py, reports/grpo_ablation)",
    )
    seed: int = option(0, "seed")
    threads: int = option(2, "torch CPU threads")
    output_dir: str = option("", "model directory (default $AIGQ_HOME/models/direct_grpo)")

    def __post_init__(self):
        self.trl = {**TRL_DEFAULTS, **self.trl}

    def weights(self) -> dict[str, float]:
        return {
            "relevance": self.w_relevance,
            "diversity": self.w_diversity,
            "coverage": self.w_coverage,
            "novelty": self.w_novelty,
            "format": self.w_format,
            "popularity": self.w_popularity,
            "ctr": self.w_ctr,
            "flagged": self.w_flagged,
        }


def model_dir(cfg: TrainGRPOConfig | None = None) -> Path:
    return Path(cfg.output_dir) if cfg and cfg.output_dir else aigq_home() / "models" / "direct_grpo"


def training_cutoff(home: Path) -> pd.Timestamp:
    starts = pd.read_parquet(home / "frames" / "sft_contexts.parquet", columns=["event_timestamp"])
    return holdout_start(starts["event_timestamp"])


def query_popularity(home: Path, cutoff) -> dict[str, float]:
    """log1p(30-day searches) of each query, scaled to [0, 1], from the last daily statistics
    before the cut-off (later ones would leak the held-out days into training)."""

    stats = query_stats_at(home / "features" / "query_stats.parquet", cutoff)
    logs = {q: float(np.log1p(r.get("q_n_search_30d") or 0.0)) for q, r in stats.items()}
    top = max(logs.values(), default=0.0) or 1.0
    return {q: v / top for q, v in logs.items()}


def reward_context(
    home: Path,
    k: int = 8,
    with_ctr: bool = True,
    with_query_stats: bool = False,
    with_popularity: bool = False,
    stats_cutoff=None,
):
    """Catalogue lookups, the CTR scorer and (optionally) per-query CTR features and popularity
    for the rewards, both from the daily query statistics as of `stats_cutoff` (training passes
    the hold-out start, so held-out days never shape a reward; None = the newest).

    Query statistics are off by default: historical CTR/COEC come from legacy placements (popular
    queries shown to everyone look unattractive, never-shown ones look average), and GRPO
    exploited that bias by drifting to rare queries. Without them the CTR reward judges a query by
    its text, category and the user's context."""

    queries = pd.read_parquet(home / "data" / "queries.parquet")
    vocab = dict(zip(queries["query"], queries["category_id"]))
    ptypes = dict(zip(queries["ptype"], queries["category_id"]))
    scorer, feats = None, None
    if with_ctr:
        ctr_dir = home / "models" / "ctr"
        if not (ctr_dir / "model.pt").exists():
            raise AigqError(f"{ctr_dir}: no CTR model for the CTR reward; run `aigq train ctr` or set w_ctr=0")
        scorer = CTRScorer(ctr_dir)
        if with_query_stats:
            feats = query_stats_at(home / "features" / "query_stats.parquet", stats_cutoff)
    popularity = query_popularity(home, stats_cutoff) if with_popularity else None
    blocked = reviewer_flags()
    return RewardContext(
        category_of=lambda q: vocab.get(q) or longest_named(q, ptypes),
        is_valid=catalogue_validator(queries),
        k=k,
        ctr_scorer=scorer,
        query_features=feats,
        query_popularity=popularity,
        flagged=blocked if len(blocked) else None,
    )


def reviewer_flags() -> Blocked:
    """What reviewers flagged so far (`aigq review`), read once per training run."""
    store = ReviewStore()
    try:
        return store.blocked()
    finally:
        store.close()


def heldout_prompts(home: Path, cfg: TrainGRPOConfig) -> pd.DataFrame:
    """Prompts and contexts of session starts inside the hold-out window (never trained on)."""

    ctx = pd.read_parquet(home / "frames" / "sft_contexts.parquet")
    cutoff = holdout_start(ctx["event_timestamp"])  # the frame is already read
    held = ctx[ctx["event_timestamp"] >= cutoff]
    held = held.sample(min(cfg.eval_prompts, len(held)), random_state=cfg.seed)
    records = held.to_dict("records")
    categories = pd.read_parquet(home / "data" / "categories.parquet")
    is_shopping = catalogue_validator(pd.read_parquet(home / "data" / "queries.parquet"))
    return pd.DataFrame(
        {"prompt": prompts_for(records, categories, is_shopping), "context_json": [context_json(r) for r in records]}
    )


def mean_reward(model_path: Path, prompts: pd.DataFrame, rewards: dict, weights: dict, seed: int) -> dict:
    gen = DirectGenerator(model_path, GenerationConfig(seed=seed))
    texts = gen.generate_texts(list(prompts["prompt"]))
    total, parts = total_reward(
        rewards, {n: 1.0 for n in rewards}, list(prompts["prompt"]), texts, context_json=list(prompts["context_json"])
    )
    weighted = sum(weights[n] * parts[n] for n in parts)
    return {"total": float(np.mean(weighted)), **{n: float(np.mean(v)) for n, v in parts.items()}}


def main(cfg: TrainGRPOConfig, samples: pd.DataFrame | None = None) -> dict:
    """Train one IL-GRPO model (`cfg.ablation` is for the CLI: it runs `grpo_ablation.main`)."""
    import torch
    from datasets import Dataset
    from trl import GRPOConfig, GRPOTrainer

    started = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    home = aigq_home()
    sft = Path(cfg.sft_model) if cfg.sft_model else home / "models" / "direct_sft"
    if not (sft / "config.json").exists():
        raise AigqError(f"{sft}: no IL-SFT model; run `aigq train sft` first")
    trl = cfg.trl
    if trl["per_device_train_batch_size"] % trl["num_generations"]:
        raise AigqError(
            f"trl.per_device_train_batch_size {trl['per_device_train_batch_size']} must be a multiple "
            f"of trl.num_generations {trl['num_generations']}"
        )
    if cfg.adapter not in ("full", "lora"):
        raise AigqError(f"adapter {cfg.adapter!r}: expected full or lora")
    weights = cfg.weights()
    context = reward_context(
        home, with_ctr=bool(cfg.w_ctr), with_popularity=bool(cfg.w_popularity), stats_cutoff=training_cutoff(home)
    )
    if context.flagged is None:  # no reviewer has flagged anything: a constant reward teaches nothing
        weights["flagged"] = 0.0
    active = {n: w for n, w in weights.items() if w}
    rewards = make_rewards(context)
    funcs = [rewards[n] for n in active]
    if samples is None:
        samples = load_samples(TrainSFTConfig(seed=cfg.seed))
    samples = samples.sample(min(cfg.max_prompts, len(samples)), random_state=cfg.seed)
    dataset = Dataset.from_pandas(samples[["prompt", "context_json"]], preserve_index=False)
    model, tokenizer = base_lm.load(sft, for_training=True)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    peft_config = None
    if cfg.adapter == "lora":
        from peft import LoraConfig

        peft_config = LoraConfig(r=16, lora_alpha=32, target_modules="all-linear", task_type="CAUSAL_LM")
    with tempfile.TemporaryDirectory() as scratch:
        derived = {"logging_steps": max(1, min(5, int(trl["max_steps"]) // 4))}
        args = GRPOConfig(
            output_dir=scratch, reward_weights=list(active.values()), **trl_arguments(trl, cfg.seed, derived)
        )
        trainer = GRPOTrainer(
            model=model,
            reward_funcs=funcs,
            args=args,
            train_dataset=dataset,
            processing_class=tokenizer,
            peft_config=peft_config,
        )
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
    changed = float(
        np.mean([not torch.equal(before[n], p.detach()) for n, p in trained.named_parameters() if n in before])
    )
    held = heldout_prompts(home, cfg)
    comparison = {
        "sft": mean_reward(sft, held, rewards if cfg.w_ctr else _without_ctr(rewards), weights, cfg.seed),
        "grpo": mean_reward(out, held, rewards if cfg.w_ctr else _without_ctr(rewards), weights, cfg.seed),
    }
    seconds = time.perf_counter() - started
    metrics = {
        "steps": trl["max_steps"],
        "seconds": seconds,
        "seconds_per_step": train_seconds / max(int(trl["max_steps"]), 1),
        "share_of_tensors_changed": changed,
        "heldout_reward": comparison,
        "first_reward": history[0]["reward"] if history else None,
        "last_reward": history[-1]["reward"] if history else None,
        "weights": active,
    }
    (out / "reward_history.json").write_text(json.dumps(history, indent=1))
    base_lm.write_card(
        out,
        "AIGQ-Direct (IL-GRPO)",
        {
            "base": str(sft),
            "method": f"TRL GRPOTrainer ({cfg.adapter}), G={trl['num_generations']}, KL beta {trl['beta']}",
            "rewards": active,
            "data window": f"IL-SFT prompts before the last {holdout_days()} days",
            "config": asdict(cfg),
            "metrics": metrics,
            "git revision": git_revision(),
            "from_scratch": False,
        },
    )
    return metrics


def _without_ctr(rewards: dict) -> dict:
    return {n: f for n, f in rewards.items() if n != "ctr"}
