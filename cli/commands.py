"""The commands that are more than one stage's `main(config)`: taking in real logs, the Feast repo's
actions, one HintQ answer, the servers and monitoring."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from bentos.models import register_all
from cli.stages import run_stage
from cli.summaries import answer, dashboard, monitor_report, quiet_feast, say
from core import feature_store
from core.config import load_config
from core.errors import AigqError
from monitoring import dashboards, reports
from monitoring import review as review_app
from pipelines import features, training_frames
from pipelines import ingest as ingest_stage
from servers import launch
from serving import config as serving_config
from serving.config import ServingConfig
from serving.contract import RequestError, parse_request
from serving.hintq import HintQ
from serving.review import review_url


def ingest(args) -> dict:
    rows = ingest_stage.main(ingest_stage.IngestConfig(source_dir=args.dir))
    say(f"ingested {rows}")
    say(f"feature tables built: {features.rebuild_feature_tables()}")
    return rows


def features_command(args) -> dict | int | None:
    quiet_feast()
    cfg = load_config(
        features.FeaturesConfig, args.config, ([f"store={args.store}"] if args.store else []) + args.overrides
    )
    feature_store.store_yaml(cfg.store)  # a bad store name fails before any work
    if args.action == "build":
        tables = features.rebuild_feature_tables(cfg.engine, cfg.partition_users)
        say(f"feature tables built under {feature_store.features_dir()}: {tables}")
        return tables
    if args.action == "apply":
        features.apply(cfg.store)
        say(f"feature repo applied ({feature_store.STORES[cfg.store]})")
        return None
    if args.action == "materialize":
        window = features.materialize(cfg.store, incremental=args.incremental)
        say(f"materialized {window}")
        return window
    if args.action == "push-sessions":
        n = features.push_sessions(cfg.store, cfg.push_since, cfg.push_batch_rows)
        say(f"pushed {n} session-event rows to the online store")
        return n
    counts = training_frames.main(feature_store.open_store(cfg.store))  # frames
    say(f"training frames under {training_frames.frames_dir()}: {counts}")
    return counts


def recommend(args) -> dict:
    quiet_feast()
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
        result = hintq.recommend(request)
    finally:
        hintq.close()
    answer(args.user_id, result, args.json)
    return result


def serve(args) -> int:
    # one ServingConfig (--config/--set over the defaults, --store), handed to every server
    # process the same way; a bad key fails here, before anything starts
    cfg = load_config(ServingConfig, args.config, [f"store={args.store}", *args.overrides])
    os.environ[serving_config.CONFIG_ENV] = serving_config.to_env(cfg)
    os.environ["AIGQ_FEATURE_STORE"] = cfg.store
    if args.server == "bento":
        os.environ.setdefault("BENTOML_HOME", str(Path(os.environ["AIGQ_HOME"]) / "bentoml"))
        say(f"BentoML models registered: {register_all()}")
        if args.register_only:
            return 0
        children = launch.bento_children(args.port, launch.hintq_workers(cfg.workers))
        urls = [f"POST http://127.0.0.1:{args.port}/recommend"]
    else:
        children = launch.kserve_children(args.port, cfg.store, launch.hintq_workers(cfg.workers))
        urls = [
            f"POST http://127.0.0.1:{args.port}/v1/models/hintq:predict",
            f"POST http://127.0.0.1:{args.port + 1}/v1/models/ctr:predict (v1), /v2/models/ctr/infer (v2)",
        ]
    launch.warn_if_ephemeral([args.port] if args.server == "bento" else [args.port, args.port + 1])
    return launch.run(children, on_ready=lambda: say("ready: " + "; ".join(urls) + " (Ctrl-C stops)"))


def monitor(args):
    os.environ.setdefault("DO_NOT_TRACK", "1")
    if args.action == "scenario":
        return run_stage("monitor scenario", args.overrides, args.config)
    cfg = load_config(reports.MonitorConfig, args.config, args.overrides)
    if args.action == "ui":
        return monitor_ui(cfg, args.port)
    summary = reports.main(cfg)
    monitor_report(summary)
    if args.action == "run":
        summary["dashboard"] = dashboards.deploy(cfg)
        dashboard(summary["dashboard"])
    if args.action == "gate":
        if summary["failed_critical"]:
            for f in summary["failed_critical"]:
                print(f"aigq monitor gate: FAIL {f}", file=sys.stderr)
            sys.exit(1)
        say("gate: pass")
    return summary


def review(args) -> None:
    cfg = load_config(review_app.ReviewConfig, args.config, args.overrides)
    say(f"review app on http://127.0.0.1:{cfg.port}/ (flags: {cfg.review_url or review_url()}); Ctrl-C stops")
    review_app.main(cfg)


def monitor_ui(cfg: reports.MonitorConfig, port: int) -> int:
    workspace = dashboards.workspace_path(cfg)
    if not workspace.exists() or not any(workspace.iterdir()):
        dashboards.deploy(cfg)
    say(f"Evidently UI on http://127.0.0.1:{port} (workspace {workspace}); Ctrl-C stops")
    try:
        return subprocess.call(dashboards.ui_command(cfg, port), env={**os.environ, "DO_NOT_TRACK": "1"})
    except KeyboardInterrupt:
        return 0
