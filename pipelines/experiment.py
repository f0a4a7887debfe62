"""`aigq experiment`: the yardstick's figures: every policy on several world seeds (default 1, 2
and 3; seed 3 is for evaluation only, never for tuning), each figure as the mean over seeds with a
95% interval, and the ablation: the same with each world structure switched off in turn.

Each run is a home of its own under $AIGQ_HOME/experiments/ (`aigq demo` for the full pipeline,
or `aigq simulate` + `aigq evaluate` of the non-generative policies with `models=false`); a run
whose eval.json exists is not run again, so an interrupted experiment resumes. The figures go to
$AIGQ_HOME/reports/experiment.{json,md}.

The runs are independent, so they fan out: `engine=ray` (or `aigq --engine ray`) makes each run a
Ray task of `cpus_per_run` CPUs, side by side on local Ray or across a cluster whose nodes share
$AIGQ_HOME (the artifacts volume of deploy/storage.yaml); the figures are the same.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from scipy import stats

from core.config import aigq_home, option
from core.engine import check_ray_address, engine_name, ensure_ray, stage_env
from core.errors import AigqError
from pipelines.baselines import BASELINES
from world.spec import FLAGS

SLICES = ("all", "cold", "regular", "heavy")
TABLE = ("sim_ctr", "oracle_share", "hit_rate@8", "hit_rate_organic@8", "distinct_categories", "serendipity", "novelty")


@dataclass
class ExperimentConfig:
    seeds: list[int] = option([1, 2, 3], "world seeds (seed 3 is for evaluation only: never tune on it)")
    profile: str = option("demo", "world size of every run")
    end_date: str = option("2026-11-18", "the worlds' end date (pinned: figures reproduce on any day)")
    models: bool = option(True, "train the generative models in every run (`aigq demo`); false: baselines only")
    ablation: bool = option(False, "also run every world structure switched off in turn")
    ablation_models: bool = option(False, "ablation runs train the generative models too (slow)")
    output_dir: str = option("", "report folder (default $AIGQ_HOME/reports)")
    engine: str = option("", "where the runs go: local (one after another) | ray (one task each; default $AIGQ_ENGINE)")
    cpus_per_run: int = option(1, "engine ray: CPUs each run reserves (its torch threads); give a run with models 2+")


def run_home(label: str, seed: int, models: bool) -> Path:
    """One run's home: the generative runs and the baselines-only runs of a world apart."""
    return aigq_home() / "experiments" / (label if models else f"{label}-baselines") / f"seed{seed}"


def run_commands(cfg: ExperimentConfig, seed: int, off: list[str], models: bool, home: Path) -> list[list[str]]:
    aigq = [sys.executable, "-m", "cli.main", "--home", str(home)]
    off_args = [a for name in off for a in ("--world-off", name)]
    if models:
        return [
            aigq
            + ["demo", "--profile", cfg.profile, "--seed", str(seed), "--end-date", cfg.end_date, "--skip-monitoring"]
            + off_args
        ]
    sim = aigq + [
        "simulate",
        "--profile",
        cfg.profile,
        "--seed",
        str(seed),
        "--set",
        f"end_date={cfg.end_date}",
        "--set",
        "check_spec=false",
    ]
    sim += ["--set", f"off=[{','.join(off)}]"] if off else []
    policies = ",".join(list(BASELINES) + ["oracle"])
    return [sim, aigq + ["evaluate", "--set", f"policies=[{policies}]", "--set", "plots=false"]]


def runs(cfg: ExperimentConfig) -> list[tuple[str, list[str], bool]]:
    """(label, structures off, with models) of every run."""
    out = [("world_v2", [], cfg.models)]
    if cfg.ablation:
        out += [(f"without_{name}", [name], cfg.ablation_models) for name in FLAGS]
    return out


def eval_path(label: str, off: list[str], models: bool, seed: int) -> Path:
    return run_home(label, seed, models) / "reports" / "eval.json"


def run_one(cfg: ExperimentConfig, label: str, off: list[str], models: bool, seed: int) -> None:
    """One run's commands, their output in the run's experiment.log; an error names that log."""
    home = run_home(label, seed, models)
    home.mkdir(parents=True, exist_ok=True)
    print(f"[aigq] experiment: {label} seed {seed} -> {home}", flush=True)
    log = home / "experiment.log"
    with open(log, "w") as out:
        for command in run_commands(cfg, seed, off, models, home):
            if subprocess.run(command, stdout=out, stderr=subprocess.STDOUT).returncode:
                raise AigqError(f"experiment run {label} seed {seed} failed: see {log}")


def run_on_ray(cfg: ExperimentConfig, pending: list[tuple[str, list[str], bool, int]]) -> None:
    """Every pending run as a Ray task at once; Ray queues what the CPUs cannot take yet. Each
    task applies this process's AIGQ_* settings (a cluster worker has its own environment) and
    builds its commands with its own Python."""
    if not pending:
        return
    import ray

    ensure_ray()
    env = stage_env()

    @ray.remote(num_cpus=cfg.cpus_per_run, max_retries=0)
    def remote_run(run: tuple[str, list[str], bool, int]) -> None:
        os.environ.update(env)
        run_one(cfg, *run)

    refs = []
    for run in pending:
        print(f"[aigq] experiment: {run[0]} seed {run[3]} -> Ray task", flush=True)
        refs.append(remote_run.remote(run))
    try:
        ray.get(refs)
    except ray.exceptions.RayTaskError as e:
        if isinstance(e.cause, AigqError):  # a run failed: its one line, naming its log
            raise AigqError(str(e.cause)) from None
        raise


def main(cfg: ExperimentConfig) -> dict:
    if not cfg.seeds:
        raise AigqError("--set seeds=[...]: at least one seed")
    on_ray = engine_name(cfg.engine) == "ray"
    if on_ray:
        check_ray_address()
    started = time.perf_counter()
    plan = [(label, off, models, seed) for label, off, models in runs(cfg) for seed in cfg.seeds]
    pending = [run for run in plan if not eval_path(*run).exists()]
    if on_ray:
        run_on_ray(cfg, pending)
    else:
        for run in pending:
            run_one(cfg, *run)
    results: dict[str, dict[int, dict]] = {}
    for label, off, models, seed in plan:
        results.setdefault(label, {})[seed] = json.loads(eval_path(label, off, models, seed).read_text())
    doc = {
        "config": asdict(cfg),
        "summary": {label: summarize(list(r.values())) for label, r in results.items()},
        "seconds": time.perf_counter() - started,
    }
    if cfg.ablation:
        doc["ablation"] = ablation(results)
    out = Path(cfg.output_dir) if cfg.output_dir else aigq_home() / "reports"
    out.mkdir(parents=True, exist_ok=True)
    (out / "experiment.json").write_text(json.dumps(doc, indent=1, default=float))
    (out / "experiment.md").write_text(markdown(doc, cfg))
    return doc


def interval(values: list[float]) -> tuple[float, float]:
    """(mean, half-width of the 95% t-interval over seeds; NaN with one seed)."""
    v = np.array([x for x in values if x is not None and not math.isnan(x)], float)
    if len(v) == 0:
        return math.nan, math.nan
    if len(v) == 1:
        return float(v[0]), math.nan
    return float(v.mean()), float(stats.t.ppf(0.975, len(v) - 1) * v.std(ddof=1) / math.sqrt(len(v)))


def summarize(evals: list[dict]) -> dict:
    """{policy: {slice: {metric: [mean, half-width]}}} over the runs' eval.json."""
    policies = [p for p in evals[0]["policies"] if all(p in e["policies"] for e in evals)]
    return {
        p: {s: {m: interval([e["policies"][p][s].get(m, math.nan) for e in evals]) for m in TABLE} for s in SLICES}
        for p in policies
    }


def ablation(results: dict[str, dict[int, dict]]) -> dict:
    """Per structure switched off: each policy's change in sim_ctr and oracle share (all requests),
    paired by seed, with its 95% interval."""
    full = results["world_v2"]
    out = {}
    for label, by_seed in results.items():
        if label == "world_v2":
            continue
        seeds = sorted(set(by_seed) & set(full))
        policies = [p for p in full[seeds[0]]["policies"] if all(p in by_seed[s]["policies"] for s in seeds)]
        out[label] = {
            p: {
                m: interval([by_seed[s]["policies"][p]["all"][m] - full[s]["policies"][p]["all"][m] for s in seeds])
                for m in ("sim_ctr", "oracle_share", "hit_rate@8")
            }
            for p in policies
        }
    return out


def cell(pair) -> str:
    mean, half = pair
    if math.isnan(mean):
        return "-"
    return f"{mean:.3f}" if math.isnan(half) else f"{mean:.3f} ± {half:.3f}"


def markdown(doc: dict, cfg: ExperimentConfig) -> str:
    lines = [
        f"# Experiment: world v2, seeds {cfg.seeds} ({cfg.profile} profile, worlds ending {cfg.end_date})",
        "",
        "Mean over seeds ± half-width of the 95% t-interval over seeds. sim_ctr: expected clicks per "
        "impression under the world's list-level click model; oracle_share: sim_ctr over the list-aware "
        "oracle's.",
        "",
    ]
    for label, summary in doc["summary"].items():
        for s in SLICES:
            lines += [
                f"## {label}, slice `{s}`",
                "",
                "| policy | " + " | ".join(TABLE) + " |",
                "|---" * (len(TABLE) + 1) + "|",
            ]
            lines += [
                f"| {p} | " + " | ".join(cell(by_slice[s][m]) for m in TABLE) + " |" for p, by_slice in summary.items()
            ]
            lines.append("")
    if "ablation" in doc:
        lines += [
            "## Ablation: change when one structure is switched off (paired by seed, all requests)",
            "",
            "| structure off | policy | Δ sim_ctr | Δ oracle_share | Δ hit_rate@8 |",
            "|---|---|---|---|---|",
        ]
        deltas = ("sim_ctr", "oracle_share", "hit_rate@8")
        for label, by_policy in doc["ablation"].items():
            lines += [
                f"| {label.removeprefix('without_')} | {p} | " + " | ".join(cell(d[m]) for m in deltas) + " |"
                for p, d in by_policy.items()
            ]
    return "\n".join(lines) + "\n"
