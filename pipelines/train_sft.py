"""`aigq train sft`: IL-SFT of the Direct generator with TRL's SFTTrainer.

Prompt-completion samples (`pipelines/datasets.py`) with completion-only loss. The embedded
from-scratch base is fully fine-tuned; a pre-trained base gets a LoRA adapter (peft), merged
into the saved model so serving loads one plain checkpoint. The output directory carries a
model card: base, data window, config, metrics, git revision.
"""

from __future__ import annotations

import json
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core.config import aigq_home, git_revision, option
from core.errors import AigqError
from core.feature_store import DIRECT_SERVICE
from models import base_lm
from pipelines.datasets import SFTDataConfig, build_samples

# TRL SFTConfig fields this project sets; any other SFTConfig field can be given too (`trl`)
TRL_DEFAULTS = {
    "max_steps": 400,
    "per_device_train_batch_size": 16,
    "learning_rate": 1e-3,
    "max_length": 256,
    "lr_scheduler_type": "cosine",
}
# fixed for CPU training (STACK-NOTES): bf16 on CPU is ~15x slower; no checkpoints, reports or workers
TRL_FIXED = {
    "bf16": False,
    "use_cpu": True,
    "gradient_checkpointing": False,
    "save_strategy": "no",
    "report_to": "none",
    "dataloader_num_workers": 0,
    "disable_tqdm": False,
}


def trl_arguments(trl: dict, seed: int, derived: dict) -> dict:
    """TRL config keyword arguments: `derived` (values computed from the steps) where the fields
    do not set them, the given fields, the fixed CPU settings and the seed."""
    return {**derived, **trl, **TRL_FIXED, "seed": seed}


@dataclass
class TrainSFTConfig:
    base_model: str = option("", "base checkpoint directory (default $AIGQ_HOME/models/base); any local HF checkpoint")
    adapter: str = option("auto", "auto | full | lora: auto fine-tunes a from-scratch base fully, LoRA otherwise")
    lora_r: int = option(16, "LoRA rank")
    lora_alpha: int = option(32, "LoRA alpha")
    max_samples: int = option(0, "use at most this many samples (0: all)")
    trl: dict = option(
        {},
        "TRL SFTConfig fields, any of them, over the defaults "
        f"{TRL_DEFAULTS} (e.g. --set trl.max_steps=800; a pretrained base with LoRA wants "
        "learning_rate ~2e-4); CPU settings are fixed: " + ", ".join(TRL_FIXED),
    )
    seed: int = option(0, "seed")
    threads: int = option(2, "torch CPU threads")
    output_dir: str = option("", "model directory (default $AIGQ_HOME/models/direct_sft)")

    def __post_init__(self):
        self.trl = {**TRL_DEFAULTS, **self.trl}


def model_dir(cfg: TrainSFTConfig | None = None) -> Path:
    return Path(cfg.output_dir) if cfg and cfg.output_dir else aigq_home() / "models" / "direct_sft"


def base_dir(cfg: TrainSFTConfig) -> Path:
    return Path(cfg.base_model) if cfg.base_model else aigq_home() / "models" / "base"


def is_from_scratch(base: Path) -> bool:
    card = base / "card.json"
    return card.exists() and bool(json.loads(card.read_text()).get("from_scratch"))


def load_samples(cfg: TrainSFTConfig, home: Path | None = None) -> pd.DataFrame:
    home = home or aigq_home()
    frame = home / "frames" / "sft_contexts.parquet"
    if not frame.exists():
        raise AigqError(f"{frame}: no IL-SFT context frame; run `aigq features frames` (after apply)")
    data = home / "data"
    samples = build_samples(
        pd.read_parquet(frame),
        pd.read_parquet(data / "events.parquet"),
        pd.read_parquet(data / "sessions.parquet"),
        pd.read_parquet(data / "queries.parquet"),
        pd.read_parquet(data / "categories.parquet"),
        SFTDataConfig(),
    )
    if cfg.max_samples and len(samples) > cfg.max_samples:
        samples = samples.sample(cfg.max_samples, random_state=cfg.seed)
    return samples


def require_base(cfg: TrainSFTConfig) -> Path:
    base = base_dir(cfg)
    if not (base / "config.json").exists():
        raise AigqError(f"{base}: no base model; run `aigq train base` or set base_model to a checkpoint directory")
    return base


def main(cfg: TrainSFTConfig, samples: pd.DataFrame | None = None) -> dict:
    require_base(cfg)  # before the (slower) sample building
    samples = load_samples(cfg) if samples is None else samples
    if samples.empty:
        raise AigqError("no IL-SFT samples before the hold-out window; simulate more days")
    return fine_tune(
        cfg,
        samples,
        model_dir(cfg),
        "AIGQ-Direct (IL-SFT)",
        {
            "data window": f"session starts {samples['event_timestamp'].min()} .. {samples['event_timestamp'].max()}",
            "feature service": DIRECT_SERVICE,
        },
    )


def fine_tune(cfg: TrainSFTConfig, samples: pd.DataFrame, out: Path, title: str, card: dict) -> dict:
    """Prompt-completion fine-tuning of the base into `out` (Direct's IL-SFT and Think share it)."""
    import torch
    from datasets import Dataset
    from trl import SFTConfig, SFTTrainer

    started = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    base = require_base(cfg)
    if cfg.adapter not in ("auto", "full", "lora"):
        raise AigqError(f"adapter {cfg.adapter!r}: expected auto, full or lora")
    use_lora = cfg.adapter == "lora" or (cfg.adapter == "auto" and not is_from_scratch(base))
    model, tokenizer = base_lm.load(base, for_training=True)
    tokenizer.padding_side = "right"
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    peft_config = None
    if use_lora:
        from peft import LoraConfig

        peft_config = LoraConfig(
            r=cfg.lora_r,
            lora_alpha=cfg.lora_alpha,
            lora_dropout=0.05,
            target_modules="all-linear",
            task_type="CAUSAL_LM",
        )
    with tempfile.TemporaryDirectory() as scratch:
        steps = int(cfg.trl["max_steps"])
        derived = {"warmup_steps": max(steps // 20, 1), "logging_steps": max(1, min(10, steps // 4))}
        args = SFTConfig(output_dir=scratch, completion_only_loss=True, **trl_arguments(cfg.trl, cfg.seed, derived))
        trainer = SFTTrainer(
            model=model,
            args=args,
            processing_class=tokenizer,
            peft_config=peft_config,
            train_dataset=Dataset.from_pandas(samples[["prompt", "completion"]], preserve_index=False),
        )
        result = trainer.train()
        losses = [h["loss"] for h in trainer.state.log_history if "loss" in h]
    trained = trainer.model.merge_and_unload() if use_lora else trainer.model
    out.mkdir(parents=True, exist_ok=True)
    trained.save_pretrained(out)
    tokenizer.padding_side = "left"
    tokenizer.save_pretrained(out)
    changed = float(
        np.mean([not torch.equal(before[n], p.detach()) for n, p in trained.named_parameters() if n in before])
    )
    metrics = {
        "first_loss": losses[0] if losses else None,
        "last_loss": losses[-1] if losses else None,
        "train_loss": result.training_loss,
        "samples": len(samples),
        "steps": cfg.trl["max_steps"],
        "share_of_tensors_changed": changed,
        "seconds": time.perf_counter() - started,
        "adapter": "lora (merged)" if use_lora else "full",
    }
    base_lm.write_card(
        out,
        title,
        {
            "base": str(base),
            "method": f"TRL SFTTrainer, completion-only loss, {metrics['adapter']}",
            **card,
            "config": asdict(cfg),
            "metrics": metrics,
            "git revision": git_revision(),
            "from_scratch": False,
        },
    )
    (out / "loss_history.json").write_text(json.dumps(losses))
    return metrics
