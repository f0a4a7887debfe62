"""The `aigq` command line. Every artifact lands under $AIGQ_HOME (default ./artifacts).

Each stage is one row of `cli.stages.STAGES`: its typed config, its `main(config)` and what it
prints. Every stage takes `--config FILE.yaml` and `--set key=value` (repeatable) over its config; `aigq COMMAND
--help` lists the keys. The commands that are more than one stage (features, recommend, serve,
monitor, demo) are in `cli/commands.py` and `cli/demo.py`. Errors print one line naming what is at
fault and exit 2.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from cli import commands, demo
from cli.stages import STAGES, run_stage
from core.config import aigq_home, describe
from core.engine import ENGINE_ENV, ENGINES
from core.errors import AigqError
from core.feature_store import STORES
from core.window import HOLDOUT_DAYS_ENV
from monitoring.reports import MonitorConfig
from monitoring.review import ReviewConfig
from pipelines import scenario
from pipelines.features import FeaturesConfig
from pipelines.simulate import PROFILES
from serving.config import ServingConfig
from serving.contract import MAX_K
from world.spec import FLAGS


def _stage_args(parser: argparse.ArgumentParser, config: type | None = None) -> None:
    parser.add_argument("--config", metavar="FILE.yaml", help="YAML file of config keys")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one config key (repeatable)",
    )
    if config is not None:
        parser.epilog = "config keys:\n" + describe(config)
        parser.formatter_class = argparse.RawDescriptionHelpFormatter


def simulate_overrides(args) -> list[str]:
    """`aigq simulate --profile P --seed N` as config overrides (an explicit --set wins)."""
    return (
        ([f"profile={args.profile}"] if args.profile else [])
        + ([f"seed={args.seed}"] if args.seed is not None else [])
        + list(args.overrides)
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="aigq", description="AIGQ: generative pre-search query suggestions.")
    parser.add_argument("--home", help="artifact root (default $AIGQ_HOME or ./artifacts)")
    parser.add_argument(
        "--holdout-days",
        type=float,
        help=f"the experiment's hold-out window: the last N whole "
        f"days of the logs, held out by every stage and evaluated on (default ${HOLDOUT_DAYS_ENV} "
        "or 5)",
    )
    parser.add_argument(
        "--engine",
        choices=list(ENGINES),
        help="where the batch stages (feature tables, nearline, Think, experiment runs) run: local (default) "
        "or ray, local Ray capped at $AIGQ_RAY_NUM_CPUS (2) or the cluster $RAY_ADDRESS names "
        f"(default ${ENGINE_ENV} or local)",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    d = sub.add_parser("demo", help="the whole pipeline end to end on the embedded default")
    d.add_argument("--profile", default="demo", choices=list(demo.TRAIN_STEPS))  # xlarge: batch side only
    d.add_argument("--store", default="sqlite", choices=list(STORES))
    d.add_argument("--seed", type=int, help="world seed (default: simulate's)")
    d.add_argument("--end-date", help="the world's end date, YYYY-MM-DD (default today)")
    d.add_argument(
        "--world-off",
        action="append",
        default=[],
        metavar="STRUCTURE",
        help="switch a world v2 structure off (repeatable): " + ", ".join(FLAGS),
    )
    d.add_argument("--skip-monitoring", action="store_true", help="stop after the evaluation")
    d.set_defaults(func=demo.run)

    for name in ("simulate", "evaluate", "experiment", "think", "nearline"):
        p = sub.add_parser(name, help=STAGES[name].help.replace("%", "%%"))
        _stage_args(p, STAGES[name].config)
        p.set_defaults(func=lambda a, name=name: run_stage(name, a.overrides, a.config))
    sim = sub.choices["simulate"]
    sim.add_argument("--profile", help=f"size preset: {', '.join(PROFILES)}")
    sim.add_argument("--seed", type=int)
    sim.set_defaults(func=lambda a: run_stage("simulate", simulate_overrides(a), a.config))

    ing = sub.add_parser("ingest", help="validate and take in real logs written in the same parquet schemas")
    ing.add_argument(
        "dir", help="folder with users/categories/queries/items/sessions/events/hintq_impressions .parquet"
    )
    ing.set_defaults(func=commands.ingest)

    feat = sub.add_parser("features", help="the Feast repo: build|apply|materialize|push-sessions|frames")
    feat.add_argument("action", choices=["build", "apply", "materialize", "push-sessions", "frames"])
    feat.add_argument("--store", choices=list(STORES), help="feature store config (default sqlite)")
    feat.add_argument("--incremental", action="store_true", help="materialize-incremental instead of the full range")
    _stage_args(feat, FeaturesConfig)
    feat.set_defaults(func=commands.features_command)

    train = sub.add_parser(
        "train",
        help="train a model: ctr | base | sft | grpo",
        epilog="\n\n".join(
            f"{n.split()[1]} config keys:\n" + describe(s.config) for n, s in STAGES.items() if n.startswith("train ")
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    train.add_argument("what", choices=["ctr", "base", "sft", "grpo"])
    _stage_args(train)
    train.set_defaults(func=lambda a: run_stage(f"train {a.what}", a.overrides, a.config))

    rec = sub.add_parser("recommend", help="one HintQ answer in the terminal (the online path, in-process)")
    rec.add_argument("user_id")
    rec.add_argument("--k", type=int, default=8, help=f"list length (1..{MAX_K})")
    rec.add_argument("--context", help="request-time context as JSON, e.g. '{\"hour\": 20}'")
    rec.add_argument("--json", action="store_true", help="print the HTTP answer's JSON")
    _stage_args(rec, ServingConfig)
    rec.set_defaults(func=commands.recommend)

    mon = sub.add_parser(
        "monitor",
        help="Evidently monitoring: scenario | run | gate | ui",
        epilog="config keys (run, gate, ui):\n"
        + describe(MonitorConfig)
        + "\n\nscenario config keys:\n"
        + describe(scenario.ScenarioConfig),
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    mon.add_argument(
        "action",
        choices=["scenario", "run", "gate", "ui"],
        help="scenario: days of served lists with a diversity regression; run: report + dashboard; "
        "gate: exit 1 naming failed critical tests; ui: `evidently ui` on 127.0.0.1",
    )
    mon.add_argument("--port", type=int, default=8000, help="ui: port")
    _stage_args(mon)
    mon.set_defaults(func=commands.monitor)

    rev = sub.add_parser("review", help="the review web app on 127.0.0.1: flag or approve served suggestions")
    _stage_args(rev, ReviewConfig)
    rev.set_defaults(func=commands.review)

    srv = sub.add_parser("serve", help="start the model servers on 127.0.0.1: bento | kserve")
    srv.add_argument("server", choices=["bento", "kserve"])
    srv.add_argument("--port", type=int, default=3000, help="HintQ port (KServe's predictor takes port + 1)")
    srv.add_argument("--store", choices=list(STORES), default="sqlite", help="online feature store the servers read")
    srv.add_argument(
        "--register-only",
        action="store_true",
        help="bento: register the models and exit (then `bentoml serve bentos.service:HintQ`)",
    )
    _stage_args(srv, ServingConfig)
    srv.set_defaults(func=commands.serve)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.home:
        os.environ["AIGQ_HOME"] = str(Path(args.home).resolve())
    os.environ["AIGQ_HOME"] = str(aigq_home())
    if args.engine:
        os.environ[ENGINE_ENV] = args.engine  # every stage and every child reads it
    if args.holdout_days is not None:
        os.environ[HOLDOUT_DAYS_ENV] = str(args.holdout_days)  # every stage and every child reads it
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
