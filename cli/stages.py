"""The stages of the `aigq` command line: for each, its typed config, its `main(config)` and the
summary it prints. `run_stage` is how the CLI and the demo run any of them."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from cli import summaries
from core.config import load_config
from pipelines import (
    evaluate,
    experiment,
    grpo_ablation,
    nearline,
    scenario,
    simulate,
    think,
    train_base,
    train_ctr,
    train_grpo,
    train_sft,
)
from pipelines.features import rebuild_feature_tables


def simulate_and_build(cfg: simulate.SimulateConfig) -> dict:
    """`aigq simulate`: the world's logs, then the feature tables built from them."""
    cfg.resolved()  # fail on a bad profile before any work
    t0 = time.perf_counter()
    data = simulate.main(cfg)
    t1 = time.perf_counter()
    tables = rebuild_feature_tables()
    return {"data": data, "simulate_seconds": t1 - t0, "tables": tables, "tables_seconds": time.perf_counter() - t1}


@dataclass(frozen=True)
class Stage:
    config: type
    main: Callable[[Any], Any]
    summary: Callable[[Any, Any], None]  # (config, result) -> prints what was done
    help: str
    quiet_feast: bool = False  # the stage opens the feature store: keep its warnings out of the terminal


def train_grpo_or_ablation(cfg: train_grpo.TrainGRPOConfig) -> dict:
    return grpo_ablation.main(cfg) if cfg.ablation else train_grpo.main(cfg)


STAGES: dict[str, Stage] = {
    "simulate": Stage(
        simulate.SimulateConfig,
        simulate_and_build,
        summaries.simulated,
        "world + behaviour logs -> parquet (and feature tables)",
    ),
    "train ctr": Stage(train_ctr.TrainCTRConfig, train_ctr.main, summaries.ctr, "the CTR ranker"),
    "train base": Stage(train_base.TrainBaseConfig, train_base.main, summaries.base, "the tiny base LM"),
    "train sft": Stage(train_sft.TrainSFTConfig, train_sft.main, summaries.sft, "IL-SFT of AIGQ-Direct"),
    "train grpo": Stage(train_grpo.TrainGRPOConfig, train_grpo_or_ablation, summaries.grpo, "IL-GRPO of AIGQ-Direct"),
    "think": Stage(
        think.ThinkConfig,
        think.main,
        summaries.think,
        "AIGQ-Think: train on mined trigger->queries mappings, batch, push to Feast",
        quiet_feast=True,
    ),
    "nearline": Stage(
        nearline.NearlineConfig,
        nearline.main,
        summaries.nearline,
        "Direct lists for users with new activity -> Feast (resumable)",
        quiet_feast=True,
    ),
    "evaluate": Stage(
        evaluate.EvaluateConfig, evaluate.main, summaries.evaluated, "every policy, offline + simulated A/B -> reports/"
    ),
    "experiment": Stage(
        experiment.ExperimentConfig,
        experiment.main,
        summaries.experimented,
        "every policy on world seeds 1-3 with 95% intervals (+ ablation)",
    ),
    "monitor scenario": Stage(
        scenario.ScenarioConfig, scenario.main, summaries.scenario, "days of served lists with a diversity regression"
    ),
}


def run_stage(name: str, overrides: list[str] = (), config_file: str | None = None) -> Any:
    """Load the stage's config (defaults < YAML < overrides), run it, print its summary."""
    stage = STAGES[name]
    if stage.quiet_feast:
        summaries.quiet_feast()
    cfg = load_config(stage.config, config_file, list(overrides))
    result = stage.main(cfg)
    stage.summary(cfg, result)
    return result
