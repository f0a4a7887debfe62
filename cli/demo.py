"""`aigq demo`: the whole pipeline end to end on the embedded default, then a summary. Each step is
a stage of `cli.stages` (or a Feast action) run with the demo's own sizes."""

from __future__ import annotations

import os
import time

import pandas as pd

from cli import summaries
from cli.stages import run_stage
from cli.summaries import say
from core import feature_store
from core.feature_store import HINTQ_SERVICE
from monitoring import dashboards, reports
from pipelines import evaluate, features, training_frames
from pipelines.evaluate import EvaluateConfig
from serving.config import ServingConfig
from serving.hintq import HintQ

# (base LM steps, IL-SFT steps) that `aigq demo` trains for, per profile
TRAIN_STEPS = {"tiny": (40, 30), "demo": (600, 1000), "large": (800, 1200)}
THINK = {
    "tiny": ["trl.max_steps=20", "max_triggers=100", "min_support=2", "max_new_tokens=48"],
    "demo": [],
    "large": [],
}
SCENARIO = {"tiny": ["days=4", "requests_per_day=40", "degrade_from_day=2"], "demo": [], "large": []}
GRPO = {
    "tiny": [
        "trl.max_steps=2",
        "trl.per_device_train_batch_size=8",
        "trl.num_generations=4",
        "trl.max_completion_length=24",
        "eval_prompts=16",
    ],
    "demo": [],
    "large": [],
}


def run(args) -> None:
    """The whole pipeline, as far as it is built, on the embedded default."""
    summaries.quiet_feast()
    started = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def step(name: str, fn):
        say(f"--- {name}")
        t = time.perf_counter()
        result = fn()
        steps.append((name, time.perf_counter() - t))
        return result

    world = [f"profile={args.profile}"] + ([f"seed={args.seed}"] if args.seed is not None else [])
    world += [f"end_date={args.end_date}"] if args.end_date else []
    world += [f"off=[{','.join(args.world_off)}]"] if args.world_off else []
    simulated = step("simulate the world", lambda: run_stage("simulate", world))
    step("feast apply", lambda: features.apply(args.store))
    window = step("materialize", lambda: features.materialize(args.store))
    pushed = step("push the last day's session events", lambda: features.push_sessions(args.store))
    fs = feature_store.open_store(args.store)
    counts = step("point-in-time training frames", lambda: training_frames.main(fs))
    sample = step(f"online lookup ({HINTQ_SERVICE})", lambda: sample_lookup(fs))
    ctr = step("train the CTR ranker", lambda: run_stage("train ctr"))
    base_steps, sft_steps = TRAIN_STEPS[args.profile]
    step("train the tiny base LM", lambda: run_stage("train base", [f"steps={base_steps}"]))
    sft = step("IL-SFT of AIGQ-Direct", lambda: run_stage("train sft", [f"trl.max_steps={sft_steps}"]))
    grpo = step("IL-GRPO of AIGQ-Direct", lambda: run_stage("train grpo", GRPO[args.profile]))
    thought = step(
        "AIGQ-Think: trigger->queries mappings -> Feast",
        lambda: run_stage("think", THINK[args.profile] + [f"store={args.store}"]),
    )
    near = step("nearline Direct lists -> Feast", lambda: run_stage("nearline", [f"store={args.store}"]))
    served = step(
        "one HintQ answer (the online path, in process)", lambda: sample_answer(args.store, sample["user_id"])
    )
    evaluation = step("evaluate baselines, Direct, Think and the hybrid", lambda: evaluate_quietly())
    drift = (
        None
        if args.skip_monitoring
        else step("monitoring: a drift scenario, Evidently reports and the dashboard", lambda: monitoring(args.profile))
    )
    manifest = pd.read_json(simulated["data"] / "manifest.json", typ="series")
    print()
    print("AIGQ demo summary")
    print(
        f"  world        : v{manifest['world']['version']} seed {manifest['world']['seed']}, {manifest['n_users']} "
        f"users, {manifest['n_days']} days to {manifest['end_date']}, {manifest['sessions']} sessions, "
        f"{manifest['events']} events" + (f"; switched off: {', '.join(args.world_off)}" if args.world_off else "")
    )
    print(
        f"  online store : materialized {window['start'][:10]} .. {window['end'][:10]}; {pushed} session events pushed"
    )
    print(f"  frames       : {counts['ctr']} CTR rows, {counts['sft_contexts']} IL-SFT contexts")
    print(
        f"  lookup       : user {sample['user_id']}: top 30d categories {sample['top_categories_30d']}, "
        f"recent {sample['recent_queries'][:3]}, p50 {sample['p50_ms']:.2f} ms"
    )
    print(
        f"  CTR ranker   : AUC {ctr['model']['auc']:.3f} (logistic regression "
        f"{ctr['logistic_regression']['auc']:.3f}, per-query CTR {ctr['per_query_ctr']['auc']:.3f})"
    )
    print(
        f"  IL-SFT       : {sft['samples']} samples, loss {sft['first_loss']:.2f} -> {sft['last_loss']:.2f}; "
        f"generation {evaluation['generation'].get('direct_sft', {})}"
    )
    held = grpo["heldout_reward"]
    print(
        f"  IL-GRPO      : {grpo['steps']} steps, {grpo['seconds_per_step']:.2f} s/step; held-out total reward "
        f"SFT {held['sft']['total']:.3f} -> GRPO {held['grpo']['total']:.3f}"
    )
    print(
        f"  AIGQ-Think   : {thought['triggers']} trigger mappings ({thought['mined_mappings']} mined for training), "
        f"{thought['mappings_per_s']:.0f}/s"
    )
    print(
        f"  nearline     : {near.get('generated', 0)} Direct lists at {near.get('lists_per_s', 0):.0f} lists/s, pushed "
        "to Feast"
    )
    print(
        f"  HintQ answer : user {sample['user_id']}: "
        + ", ".join(f"{s['query']} ({s['source']})" for s in served["suggestions"][:5])
        + f" ... {served['latency_ms']:.1f} ms warm"
    )
    print(
        f"  evaluation   : {evaluation['n_requests']} held-out session starts, "
        f"{os.environ['AIGQ_HOME']}/reports/eval.md"
    )
    for line in summaries.eval_table(evaluation).splitlines():
        print("    " + line)
    if drift:
        board = drift["dashboard"]
        print(
            f"  monitoring   : {drift['scenario']['lists']} served lists over {len(drift['scenario']['days'])} days; "
            "gate "
            + ", ".join(f"{day} {'FAIL ' + f[0].split(':')[0] if f else 'pass'}" for day, f in board["gate"].items())
        )
        print(f"                 report {drift['report']['html']}")
        print(
            f"                 dashboard: `aigq monitor ui` then open http://127.0.0.1:8000 "
            f"(workspace {board['workspace']})"
        )
    for name, secs in steps:
        print(f"  {secs:7.1f}s  {name}")
    print(f"  total {time.perf_counter() - started:.1f}s; artifacts under {os.environ['AIGQ_HOME']}")
    print(f"  next: `aigq recommend {sample['user_id']}`, `aigq serve bento` or `aigq serve kserve`")


def evaluate_quietly() -> dict:
    """The evaluation stage without its table: the demo prints the table once, in its summary."""
    cfg = EvaluateConfig()
    doc = evaluate.main(cfg)
    summaries.evaluated(cfg, doc, table=False)
    return doc


def monitoring(profile: str) -> dict:
    os.environ.setdefault("DO_NOT_TRACK", "1")
    out = run_stage("monitor scenario", SCENARIO[profile])
    cfg = reports.MonitorConfig(reference_days=1 if profile == "tiny" else 2)
    return {"scenario": out, "report": reports.main(cfg), "dashboard": dashboards.deploy(cfg)}


def sample_answer(store: str, user_id: str) -> dict:
    hintq = HintQ(ServingConfig(store=store, server="demo"))
    try:
        hintq.recommend({"user_id": user_id})  # cold: registry and query-feature caches fill
        t = time.perf_counter()
        answer = hintq.recommend({"user_id": user_id})
        answer["latency_ms"] = (time.perf_counter() - t) * 1000
    finally:
        hintq.close()
    return answer


def sample_lookup(fs) -> dict:
    user = (
        pd.read_parquet(feature_store.data_dir() / "sessions.parquet", columns=["user_id"])["user_id"]
        .value_counts()
        .index[0]
    )
    times = []
    for _ in range(50):
        t = time.perf_counter()
        row = feature_store.online_features(fs, HINTQ_SERVICE, [{"user_id": user, "request_hour": 20}])
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {
        "user_id": user,
        "top_categories_30d": row["top_categories_30d"][0],
        "recent_queries": row["recent_queries"][0] or [],
        "p50_ms": times[len(times) // 2],
    }
