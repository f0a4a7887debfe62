"""The `aigq` command line. Every artifact lands under $AIGQ_HOME (default ./artifacts).

Each stage takes `--config FILE.yaml` and `--set key=value` (repeatable) over its typed config;
`aigq COMMAND --help` lists the keys. Errors print one line naming what is at fault.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from pathlib import Path

from pipelines.config import describe, load_config
from pipelines.errors import AigqError


def _stage_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of config keys")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="override one config key (repeatable)")


# (base LM steps, IL-SFT steps) that `aigq demo` trains for, per profile
DEMO_TRAIN_STEPS = {"tiny": (40, 30), "demo": (600, 400), "large": (800, 800)}
DEMO_THINK = {"tiny": ["max_steps=20", "max_triggers=100", "min_support=2", "max_new_tokens=48"], "demo": [],
              "large": []}
DEMO_SCENARIO = {"tiny": ["days=4", "requests_per_day=40", "degrade_from_day=2"], "demo": [], "large": []}
DEMO_GRPO = {"tiny": ["max_steps=2", "batch_size=8", "num_generations=4", "max_completion_length=24",
                      "eval_prompts=16"], "demo": [], "large": []}


def _say(msg: str) -> None:
    print(f"[aigq] {msg}", flush=True)


def _quiet_feast() -> None:
    """Feast prints experimental/config warnings on every call; keep the terminal readable.
    Imports feast first: its import resets warning filters."""
    import logging

    import feast  # noqa: F401

    warnings.filterwarnings("ignore", message=".*fetch_arrow_table.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="feast")
    warnings.filterwarnings("ignore", message=".*experimental.*")
    logging.getLogger("feast").setLevel(logging.ERROR)


# ---- commands ----------------------------------------------------------------------------

def cmd_simulate(args) -> dict:
    from pipelines import simulate
    from pipelines.features import rebuild_feature_tables

    overrides = list(args.overrides)
    if args.profile:
        overrides.insert(0, f"profile={args.profile}")
    if args.seed is not None:
        overrides.insert(0, f"seed={args.seed}")
    cfg = load_config(simulate.SimulateConfig, args.config, overrides)
    cfg.resolved()  # fail on a bad profile before any work
    t0 = time.perf_counter()
    out = simulate.main(cfg)
    t1 = time.perf_counter()
    _say(f"logs written to {out} in {t1 - t0:.1f}s")
    check = out.parent / "world" / "spec_check.json" if not cfg.output_dir else None
    if cfg.check_spec and check and check.exists():
        rows = json.loads(check.read_text())
        missed = [f"{r['statistic']} {r['value']:.3f} (target {r['range'][0]:g}..{r['range'][1]:g})"
                  for r in rows if not r["ok"]]
        _say(f"world v2 spec: {len(rows) - len(missed)}/{len(rows)} target statistics met ({check})"
             + (f"; off target: {', '.join(missed)}" if missed else ""))
    rows = rebuild_feature_tables()
    _say(f"feature tables built in {time.perf_counter() - t1:.1f}s: {rows}")
    return json.loads((out / "manifest.json").read_text())


def cmd_ingest(args) -> dict:
    from pipelines import ingest
    from pipelines.features import rebuild_feature_tables

    rows = ingest.main(ingest.IngestConfig(source_dir=args.dir))
    _say(f"ingested {rows}")
    _say(f"feature tables built: {rebuild_feature_tables()}")
    return rows


def cmd_features(args) -> dict | int | None:
    from pipelines import features

    _quiet_feast()
    cfg = load_config(features.FeaturesConfig, args.config,
                      ([f"store={args.store}"] if args.store else []) + args.overrides)
    features.store_yaml(cfg.store)  # a bad store name fails before any work
    if args.action == "build":
        return features.rebuild_feature_tables()
    if args.action == "apply":
        features.apply(cfg.store)
        _say(f"feature repo applied ({features.STORES[cfg.store]})")
    elif args.action == "materialize":
        window = features.materialize(cfg.store, incremental=args.incremental)
        _say(f"materialized {window}")
        return window
    elif args.action == "push-sessions":
        n = features.push_sessions(cfg.store, cfg.push_since, cfg.push_batch_rows)
        _say(f"pushed {n} session-event rows to the online store")
        return n
    elif args.action == "frames":
        from pipelines import training_frames

        counts = training_frames.main(features.open_store(cfg.store))
        _say(f"training frames under {training_frames.frames_dir()}: {counts}")
        return counts
    return None


def cmd_train(args) -> dict:
    if args.what == "ctr":
        from pipelines import train_ctr

        cfg = load_config(train_ctr.TrainCTRConfig, args.config, args.overrides)
        m = train_ctr.main(cfg)
        _say(f"CTR model saved to {train_ctr.model_dir(cfg)}")
        for name in ("model", "logistic_regression", "per_query_ctr"):
            _say(f"  {name:20s} AUC {m[name]['auc']:.4f}  log loss {m[name]['logloss']:.4f}")
        return m
    if args.what == "base":
        from pipelines import train_base

        cfg = load_config(train_base.TrainBaseConfig, args.config, args.overrides)
        m = train_base.main(cfg)
        _say(f"base LM ({m['parameters']:,} parameters) saved to {train_base.model_dir(cfg)}: "
             f"loss {m['first_loss']:.2f} -> {m['last_loss']:.2f} in {m['seconds']:.0f}s")
        return m
    if args.what == "sft":
        from pipelines import train_sft

        cfg = load_config(train_sft.TrainSFTConfig, args.config, args.overrides)
        m = train_sft.main(cfg)
        _say(f"IL-SFT model ({m['adapter']}) saved to {train_sft.model_dir(cfg)}: {m['samples']} samples, "
             f"loss {m['first_loss']:.2f} -> {m['last_loss']:.2f} in {m['seconds']:.0f}s")
        return m
    if args.what == "grpo":
        from pipelines import train_grpo

        cfg = load_config(train_grpo.TrainGRPOConfig, args.config, args.overrides)
        m = train_grpo.main(cfg)
        held = m["heldout_reward"]
        _say(f"IL-GRPO model saved to {train_grpo.model_dir(cfg)}: {m['seconds_per_step']:.2f} s/step; held-out "
             f"total reward SFT {held['sft']['total']:.3f} -> GRPO {held['grpo']['total']:.3f}")
        for name in held["grpo"]:
            _say(f"  {name:10s} SFT {held['sft'][name]:.4f}  GRPO {held['grpo'][name]:.4f}")
        return m
    raise AigqError(f"`aigq train {args.what}` is not built yet")


def cmd_think(args) -> dict:
    from pipelines import think

    _quiet_feast()
    cfg = load_config(think.ThinkConfig, args.config, args.overrides)
    summary = think.main(cfg)
    _say(f"AIGQ-Think: {summary['mined_mappings']} mined mappings, model loss {summary['train']['first_loss']:.2f} -> "
         f"{summary['train']['last_loss']:.2f}; {summary['triggers']} trigger mappings at "
         f"{summary['mappings_per_s']:.1f}/s (model share {summary['model_share']:.0%}, generated rationale "
         f"{summary['rationale_generated']:.0%}) -> {summary['mappings']}"
         + (f", pushed to Feast ({cfg.store})" if summary["pushed"] else ""))
    return summary


def cmd_nearline(args) -> dict:
    from pipelines import nearline

    _quiet_feast()
    cfg = load_config(nearline.NearlineConfig, args.config, args.overrides)
    out = nearline.main(cfg)
    if out["status"] == "up to date":
        _say("nearline: no activity since the watermark; nothing to do")
    else:
        _say(f"nearline run {out['run_id']} ({out['status']}): {out['generated']} of {out['users']} users generated "
             f"({out['replayed']} replayed) at {out['lists_per_s']:.1f} lists/s with {out['model_version']}; "
             f"window {out['since']} .. {out['until']}")
    return out


def cmd_recommend(args) -> dict:
    from serving.hintq import HintQ, RequestError, ServingConfig, parse_request

    _quiet_feast()
    cfg = load_config(ServingConfig, args.config, args.overrides)
    try:
        context = json.loads(args.context) if args.context else {}
    except json.JSONDecodeError as e:
        raise AigqError(f"--context: not JSON ({e})") from None
    try:
        request = parse_request({"user_id": args.user_id, "k": args.k, "context": context})
    except RequestError as e:
        raise AigqError(str(e)) from None
    hintq = HintQ(cfg)
    try:
        answer = hintq.recommend(request)
    finally:
        hintq.close()
    if args.json:
        print(json.dumps(answer, indent=1))
    else:
        flag = "  [degraded]" if answer["degraded"] else ""
        print(f"HintQ for {args.user_id} (request {answer['request_id']}){flag}")
        for i, s in enumerate(answer["suggestions"], 1):
            print(f"  {i:2d}. {s['query']:40s} {s['score']:.4f}  {s['source']}")
        print("  models: " + ", ".join(f"{k}={v}" for k, v in answer["model_versions"].items()))
    return answer


def cmd_serve(args) -> int:
    from serving import launch

    os.environ["AIGQ_FEATURE_STORE"] = args.store  # the BentoML orchestrator reads it
    if args.server == "bento":
        os.environ.setdefault("BENTOML_HOME", str(Path(os.environ["AIGQ_HOME"]) / "bentoml"))
        from bentos.models import register_all

        _say(f"BentoML models registered: {register_all()}")
        if args.register_only:
            return 0
        children = launch.bento_children(args.port)
        urls = [f"POST http://127.0.0.1:{args.port}/recommend"]
    else:
        children = launch.kserve_children(args.port, args.store)
        urls = [f"POST http://127.0.0.1:{args.port}/v1/models/hintq:predict",
                f"POST http://127.0.0.1:{args.port + 1}/v1/models/ctr:predict (v1), /v2/models/ctr/infer (v2)"]
    launch.warn_if_ephemeral([args.port] if args.server == "bento" else [args.port, args.port + 1])
    return launch.run(children, on_ready=lambda: _say("ready: " + "; ".join(urls) + " (Ctrl-C stops)"))


def cmd_monitor(args):
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if args.action == "scenario":
        from monitoring import scenario

        cfg = load_config(scenario.ScenarioConfig, args.config, args.overrides)
        out = scenario.main(cfg)
        _say(f"drift scenario: {out['lists']} served lists over {len(out['days'])} days "
             f"({out['days'][0]} .. {out['days'][-1]}), {out['clicks']} clicks; diversity lost from "
             f"{out['degraded_from']}; log {out['log_url']}")
        return out
    from monitoring import dashboards, reports

    cfg = load_config(reports.MonitorConfig, args.config, args.overrides)
    if args.action == "ui":
        import subprocess

        workspace = dashboards.workspace_path(cfg)
        if not workspace.exists() or not any(workspace.iterdir()):
            dashboards.deploy(cfg)
        command = dashboards.ui_command(cfg, args.port)
        _say(f"Evidently UI on http://127.0.0.1:{args.port} (workspace {dashboards.workspace_path(cfg)}); Ctrl-C stops")
        try:
            return subprocess.call(command, env={**os.environ, "DO_NOT_TRACK": "1"})
        except KeyboardInterrupt:
            return 0
    summary = reports.main(cfg)
    failures = summary["failed_critical"]
    _say(f"report {summary['reference']} (reference, {summary['lists']['reference']} lists) vs {summary['current']} "
         f"({summary['lists']['current']} lists): {summary['tests']} tests, {len(failures)} critical failures; "
         f"{summary['html']}")
    for name in ("distinct_categories", "mean_ctr_score"):
        _say(f"  {name:20s} reference {summary['means']['reference'][name]:.4f}  current "
             f"{summary['means']['current'][name]:.4f}")
    if args.action == "run":
        deployed = dashboards.deploy(cfg)
        _say(f"dashboard: {deployed['days']} daily reports in {deployed['workspace']}; open it with "
             f"`aigq monitor ui` (http://127.0.0.1:8000)")
        for day, failed in deployed["gate"].items():
            _say(f"  {day}: {'FAIL ' + '; '.join(failed) if failed else 'pass'}")
        summary["dashboard"] = deployed
    if args.action == "gate":
        if failures:
            for f in failures:
                print(f"aigq monitor gate: FAIL {f}", file=sys.stderr)
            sys.exit(1)
        _say("gate: pass")
    return summary


def cmd_evaluate(args) -> dict:
    from pipelines import evaluate

    cfg = load_config(evaluate.EvaluateConfig, args.config, args.overrides)
    doc = evaluate.main(cfg)
    out = Path(cfg.output_dir) if cfg.output_dir else Path(os.environ["AIGQ_HOME"]) / "reports"
    _say(f"evaluation of {len(doc['policies'])} policies on {doc['n_requests']} requests: {out / 'eval.md'}")
    if not getattr(args, "quiet", False):  # the demo prints the table once, in its summary
        print(eval_table(doc))
    return doc


def cmd_experiment(args) -> dict:
    from pipelines import experiment

    cfg = load_config(experiment.ExperimentConfig, args.config, args.overrides)
    doc = experiment.main(cfg)
    out = Path(cfg.output_dir) if cfg.output_dir else Path(os.environ["AIGQ_HOME"]) / "reports"
    _say(f"experiment over seeds {cfg.seeds} in {doc['seconds']:.0f}s: {out / 'experiment.md'}")
    summary = doc["summary"]["world_v2"]
    cols = ("sim_ctr", "oracle_share", "hit_rate@8", "distinct_categories")
    print(f"{'policy':20s}" + "".join(f"{c:>22s}" for c in cols))
    for name, slices in summary.items():
        print(f"{name:20s}" + "".join(f"{experiment._cell(slices['all'][c]):>22s}" for c in cols))
    return doc


def eval_table(doc: dict, slice_name: str = "all") -> str:
    cols = ("hit_rate@8", "hit_rate_organic@8", "ndcg@8", "sim_ctr", "oracle_share", "distinct_categories",
            "novelty", "serendipity", "validity")
    lines = [f"{'policy':18s}" + "".join(f"{c:>20s}" for c in cols)]
    for name, slices in doc["policies"].items():
        row = slices[slice_name]
        lines.append(f"{name:18s}" + "".join(f"{row[c]:>20.4f}" for c in cols))
    return "\n".join(lines)


def cmd_demo(args) -> None:
    """The whole pipeline, as far as it is built, on the embedded default."""
    from pipelines import features, training_frames

    _quiet_feast()
    started = time.perf_counter()
    steps: list[tuple[str, float]] = []

    def step(name: str, fn):
        _say(f"--- {name}")
        t = time.perf_counter()
        result = fn()
        steps.append((name, time.perf_counter() - t))
        return result

    world = [f"end_date={args.end_date}"] if args.end_date else []
    world += [f"off=[{','.join(args.world_off)}]"] if args.world_off else []
    sim_args = argparse.Namespace(profile=args.profile, seed=args.seed, config=None, overrides=world)
    manifest = step("simulate the world", lambda: cmd_simulate(sim_args))
    step("feast apply", lambda: features.apply(args.store))
    window = step("materialize", lambda: features.materialize(args.store))
    pushed = step("push the last day's session events", lambda: features.push_sessions(args.store))
    fs = features.open_store(args.store)
    counts = step("point-in-time training frames", lambda: training_frames.main(fs))
    sample = step("online lookup (hintq_online_v1)", lambda: _sample_lookup(fs))
    ctr_metrics = step("train the CTR ranker", lambda: cmd_train(
        argparse.Namespace(what="ctr", config=None, overrides=[])))
    base_steps, sft_steps = DEMO_TRAIN_STEPS[args.profile]
    step("train the tiny base LM", lambda: cmd_train(
        argparse.Namespace(what="base", config=None, overrides=[f"steps={base_steps}"])))
    sft = step("IL-SFT of AIGQ-Direct", lambda: cmd_train(
        argparse.Namespace(what="sft", config=None, overrides=[f"max_steps={sft_steps}"])))
    grpo = step("IL-GRPO of AIGQ-Direct", lambda: cmd_train(
        argparse.Namespace(what="grpo", config=None, overrides=DEMO_GRPO[args.profile])))
    thought = step("AIGQ-Think: trigger->queries mappings -> Feast", lambda: cmd_think(
        argparse.Namespace(config=None, overrides=DEMO_THINK[args.profile] + [f"store={args.store}"])))
    near = step("nearline Direct lists -> Feast", lambda: cmd_nearline(
        argparse.Namespace(config=None, overrides=[f"store={args.store}"])))
    served = step("one HintQ answer (the online path, in process)", lambda: _sample_answer(args.store, sample["user_id"]))
    evaluation = step("evaluate baselines, Direct, Think and the hybrid", lambda: cmd_evaluate(
        argparse.Namespace(config=None, overrides=[], quiet=True)))
    drift = None if args.skip_monitoring else step("monitoring: a drift scenario, Evidently reports and the "
                                                   "dashboard", lambda: _demo_monitoring(args))

    print()
    print("AIGQ demo summary")
    print(f"  world        : v{manifest['world']['version']} seed {manifest['world']['seed']}, {manifest['n_users']} "
          f"users, {manifest['n_days']} days to {manifest['end_date']}, {manifest['sessions']} sessions, "
          f"{manifest['events']} events" + (f"; switched off: {', '.join(args.world_off)}" if args.world_off else ""))
    print(f"  online store : materialized {window['start'][:10]} .. {window['end'][:10]}; "
          f"{pushed} session events pushed")
    print(f"  frames       : {counts['ctr']} CTR rows, {counts['sft_contexts']} IL-SFT contexts")
    print(f"  lookup       : user {sample['user_id']}: top 30d categories {sample['top_categories_30d']}, "
          f"recent {sample['recent_queries'][:3]}, p50 {sample['p50_ms']:.2f} ms")
    print(f"  CTR ranker   : AUC {ctr_metrics['model']['auc']:.3f} (logistic regression "
          f"{ctr_metrics['logistic_regression']['auc']:.3f}, per-query CTR {ctr_metrics['per_query_ctr']['auc']:.3f})")
    print(f"  IL-SFT       : {sft['samples']} samples, loss {sft['first_loss']:.2f} -> {sft['last_loss']:.2f}; "
          f"generation {evaluation['generation'].get('direct_sft', {})}")
    held = grpo["heldout_reward"]
    print(f"  IL-GRPO      : {grpo['steps']} steps, {grpo['seconds_per_step']:.2f} s/step; held-out total reward "
          f"SFT {held['sft']['total']:.3f} -> GRPO {held['grpo']['total']:.3f}")
    print(f"  AIGQ-Think   : {thought['triggers']} trigger mappings ({thought['mined_mappings']} mined for training), "
          f"{thought['mappings_per_s']:.0f}/s")
    print(f"  nearline     : {near.get('generated', 0)} Direct lists at {near.get('lists_per_s', 0):.0f} lists/s, pushed "
          "to Feast")
    print(f"  HintQ answer : user {sample['user_id']}: " + ", ".join(
        f"{s['query']} ({s['source']})" for s in served["suggestions"][:5]) + f" ... {served['latency_ms']:.1f} ms warm")
    print(f"  evaluation   : {evaluation['n_requests']} held-out session starts, "
          f"{os.environ['AIGQ_HOME']}/reports/eval.md")
    for line in eval_table(evaluation).splitlines():
        print("    " + line)
    if drift:
        board = drift["dashboard"]
        print(f"  monitoring   : {drift['scenario']['lists']} served lists over {len(drift['scenario']['days'])} days; "
              "gate " + ", ".join(f"{day} {'FAIL ' + f[0].split(':')[0] if f else 'pass'}"
                                  for day, f in board["gate"].items()))
        print(f"                 report {drift['report']['html']}")
        print(f"                 dashboard: `aigq monitor ui` then open http://127.0.0.1:8000 "
              f"(workspace {board['workspace']})")
    for name, secs in steps:
        print(f"  {secs:7.1f}s  {name}")
    print(f"  total {time.perf_counter() - started:.1f}s; artifacts under {os.environ['AIGQ_HOME']}")
    print(f"  next: `aigq recommend {sample['user_id']}`, `aigq serve bento` or `aigq serve kserve`")


def _demo_monitoring(args) -> dict:
    from monitoring import dashboards, reports, scenario

    os.environ.setdefault("DO_NOT_TRACK", "1")
    out = scenario.main(load_config(scenario.ScenarioConfig, None, DEMO_SCENARIO[args.profile]))
    cfg = reports.MonitorConfig(reference_days=1 if args.profile == "tiny" else 2)
    return {"scenario": out, "report": reports.main(cfg), "dashboard": dashboards.deploy(cfg)}


def _sample_answer(store: str, user_id: str) -> dict:
    from serving.hintq import HintQ, ServingConfig

    hintq = HintQ(ServingConfig(store=store, server="demo"))
    try:
        hintq.recommend({"user_id": user_id})  # cold: registry and query-feature caches fill
        t = time.perf_counter()
        answer = hintq.recommend({"user_id": user_id})
        answer["latency_ms"] = (time.perf_counter() - t) * 1000
    finally:
        hintq.close()
    return answer


def _sample_lookup(fs) -> dict:
    import pandas as pd

    from pipelines.features import data_dir, online_features

    user = pd.read_parquet(data_dir() / "sessions.parquet", columns=["user_id"])["user_id"].value_counts().index[0]
    times = []
    for _ in range(50):
        t = time.perf_counter()
        row = online_features(fs, "hintq_online_v1", [{"user_id": user, "request_hour": 20}])
        times.append((time.perf_counter() - t) * 1000)
    times.sort()
    return {"user_id": user, "top_categories_30d": row["top_categories_30d"][0],
            "recent_queries": row["recent_queries"][0] or [], "p50_ms": times[len(times) // 2]}


# ---- parser ------------------------------------------------------------------------------

def build_parser() -> argparse.ArgumentParser:
    from pipelines.features import FeaturesConfig, STORES
    from pipelines.simulate import PROFILES, SimulateConfig
    from pipelines.world_spec import FLAGS

    parser = argparse.ArgumentParser(prog="aigq", description="AIGQ: generative pre-search query suggestions.")
    parser.add_argument("--home", help="artifact root (default $AIGQ_HOME or ./artifacts)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    demo = sub.add_parser("demo", help="the whole pipeline end to end on the embedded default")
    demo.add_argument("--profile", default="demo", choices=list(PROFILES))
    demo.add_argument("--store", default="sqlite", choices=list(STORES))
    demo.add_argument("--seed", type=int, help="world seed (default: simulate's)")
    demo.add_argument("--end-date", help="the world's end date, YYYY-MM-DD (default today)")
    demo.add_argument("--world-off", action="append", default=[], metavar="STRUCTURE",
                      help="switch a world v2 structure off (repeatable): " + ", ".join(FLAGS))
    demo.add_argument("--skip-monitoring", action="store_true", help="stop after the evaluation")
    demo.set_defaults(func=cmd_demo)

    from pipelines.experiment import ExperimentConfig

    exp = sub.add_parser("experiment", help="every policy on world seeds 1-3 with 95%% intervals (+ ablation)",
                         epilog="config keys:\n" + describe(ExperimentConfig),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    _stage_args(exp)
    exp.set_defaults(func=cmd_experiment)

    sim = sub.add_parser("simulate", help="world + behaviour logs -> parquet (and feature tables)",
                         epilog="config keys:\n" + describe(SimulateConfig),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    sim.add_argument("--profile", help=f"size preset: {', '.join(PROFILES)}")
    sim.add_argument("--seed", type=int)
    _stage_args(sim)
    sim.set_defaults(func=cmd_simulate)

    ing = sub.add_parser("ingest", help="validate and take in real logs written in the same parquet schemas")
    ing.add_argument("dir", help="folder with users/categories/queries/items/sessions/events/"
                                 "hintq_impressions .parquet")
    ing.set_defaults(func=cmd_ingest)

    feat = sub.add_parser("features", help="the Feast repo: build|apply|materialize|push-sessions|frames",
                          epilog="config keys:\n" + describe(FeaturesConfig),
                          formatter_class=argparse.RawDescriptionHelpFormatter)
    feat.add_argument("action", choices=["build", "apply", "materialize", "push-sessions", "frames"])
    feat.add_argument("--store", choices=list(STORES), help="feature store config (default sqlite)")
    feat.add_argument("--incremental", action="store_true", help="materialize-incremental instead of the full range")
    _stage_args(feat)
    feat.set_defaults(func=cmd_features)

    from pipelines.evaluate import EvaluateConfig
    from pipelines.train_ctr import TrainCTRConfig

    from pipelines.train_base import TrainBaseConfig
    from pipelines.train_grpo import TrainGRPOConfig
    from pipelines.train_sft import TrainSFTConfig

    train = sub.add_parser("train", help="train a model: ctr | base | sft | grpo",
                           epilog="ctr config keys:\n" + describe(TrainCTRConfig) + "\n\nbase config keys:\n"
                           + describe(TrainBaseConfig) + "\n\nsft config keys:\n" + describe(TrainSFTConfig)
                           + "\n\ngrpo config keys:\n" + describe(TrainGRPOConfig),
                           formatter_class=argparse.RawDescriptionHelpFormatter)
    train.add_argument("what", choices=["ctr", "base", "sft", "grpo"])
    _stage_args(train)
    train.set_defaults(func=cmd_train)

    from pipelines.nearline import NearlineConfig
    from pipelines.think import ThinkConfig
    from serving.hintq import MAX_K, ServingConfig

    th = sub.add_parser("think", help="AIGQ-Think: train on mined trigger->queries mappings, batch, push to Feast",
                        epilog="config keys:\n" + describe(ThinkConfig),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _stage_args(th)
    th.set_defaults(func=cmd_think)

    nl = sub.add_parser("nearline", help="Direct lists for users with new activity -> Feast (resumable)",
                        epilog="config keys:\n" + describe(NearlineConfig),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _stage_args(nl)
    nl.set_defaults(func=cmd_nearline)

    rec = sub.add_parser("recommend", help="one HintQ answer in the terminal (the online path, in-process)",
                         epilog="config keys:\n" + describe(ServingConfig),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    rec.add_argument("user_id")
    rec.add_argument("--k", type=int, default=8, help=f"list length (1..{MAX_K})")
    rec.add_argument("--context", help='request-time context as JSON, e.g. \'{"hour": 20}\'')
    rec.add_argument("--json", action="store_true", help="print the HTTP answer's JSON")
    _stage_args(rec)
    rec.set_defaults(func=cmd_recommend)

    from monitoring.reports import MonitorConfig
    from monitoring.scenario import ScenarioConfig

    mon = sub.add_parser("monitor", help="Evidently monitoring: scenario | run | gate | ui",
                         epilog="config keys (run, gate, ui):\n" + describe(MonitorConfig)
                         + "\n\nscenario config keys:\n" + describe(ScenarioConfig),
                         formatter_class=argparse.RawDescriptionHelpFormatter)
    mon.add_argument("action", choices=["scenario", "run", "gate", "ui"],
                     help="scenario: days of served lists with a diversity regression; run: report + dashboard; "
                          "gate: exit 1 naming failed critical tests; ui: `evidently ui` on 127.0.0.1")
    mon.add_argument("--port", type=int, default=8000, help="ui: port")
    _stage_args(mon)
    mon.set_defaults(func=cmd_monitor)

    srv = sub.add_parser("serve", help="start the model servers on 127.0.0.1: bento | kserve")
    srv.add_argument("server", choices=["bento", "kserve"])
    srv.add_argument("--port", type=int, default=3000, help="HintQ port (KServe's predictor takes port + 1)")
    srv.add_argument("--store", choices=list(STORES), default="sqlite", help="online feature store the servers read")
    srv.add_argument("--register-only", action="store_true", help="bento: register the models and exit "
                     "(then `bentoml serve bentos.service:HintQ`)")
    srv.set_defaults(func=cmd_serve)

    ev = sub.add_parser("evaluate", help="every policy, offline + simulated A/B -> reports/",
                        epilog="config keys:\n" + describe(EvaluateConfig),
                        formatter_class=argparse.RawDescriptionHelpFormatter)
    _stage_args(ev)
    ev.set_defaults(func=cmd_evaluate)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.home:
        os.environ["AIGQ_HOME"] = str(Path(args.home).resolve())
    from pipelines.config import aigq_home

    os.environ["AIGQ_HOME"] = str(aigq_home())
    try:
        args.func(args)
    except AigqError as e:
        print(f"aigq: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("aigq: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
