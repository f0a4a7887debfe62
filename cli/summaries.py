"""What each stage prints when it is done: one line (or a few) naming what it wrote and the figures
a user looks at first. The demo prints the same lines."""

from __future__ import annotations

import json
import logging
import warnings
from pathlib import Path

from core.config import aigq_home
from pipelines import evaluate, experiment, train_base, train_ctr, train_grpo, train_sft


def say(msg: str) -> None:
    print(f"[aigq] {msg}", flush=True)


def quiet_feast() -> None:
    """Feast prints experimental/config warnings on every call; keep the terminal readable.
    Imports feast first: its import resets warning filters."""
    import feast  # noqa: F401

    warnings.filterwarnings("ignore", message=".*fetch_arrow_table.*")
    warnings.filterwarnings("ignore", category=DeprecationWarning)
    warnings.filterwarnings("ignore", category=RuntimeWarning, module="feast")
    warnings.filterwarnings("ignore", message=".*experimental.*")
    logging.getLogger("feast").setLevel(logging.ERROR)


def reports_dir(output_dir: str) -> Path:
    return Path(output_dir) if output_dir else aigq_home() / "reports"


def simulated(cfg, result: dict) -> None:
    out = result["data"]
    say(f"logs written to {out} in {result['simulate_seconds']:.1f}s")
    check = out.parent / "world" / "spec_check.json" if not cfg.output_dir else None
    if cfg.check_spec and check and check.exists():
        rows = json.loads(check.read_text())
        missed = [
            f"{r['statistic']} {r['value']:.3f} (target {r['range'][0]:g}..{r['range'][1]:g})"
            for r in rows
            if not r["ok"]
        ]
        say(
            f"world v2 spec: {len(rows) - len(missed)}/{len(rows)} target statistics met ({check})"
            + (f"; off target: {', '.join(missed)}" if missed else "")
        )
    say(f"feature tables built in {result['tables_seconds']:.1f}s: {result['tables']}")


def ctr(cfg, m: dict) -> None:
    say(f"CTR model saved to {train_ctr.model_dir(cfg)}; samples: {m['samples']}")
    for name in ("model", "logistic_regression", "per_query_ctr"):
        say(f"  {name:20s} AUC {m[name]['auc']:.4f}  log loss {m[name]['logloss']:.4f}")


def base(cfg, m: dict) -> None:
    say(
        f"base LM ({m['parameters']:,} parameters) saved to {train_base.model_dir(cfg)}: "
        f"loss {m['first_loss']:.2f} -> {m['last_loss']:.2f} in {m['seconds']:.0f}s"
    )


def sft(cfg, m: dict) -> None:
    say(
        f"IL-SFT model ({m['adapter']}) saved to {train_sft.model_dir(cfg)}: {m['samples']} samples, "
        f"loss {m['first_loss']:.2f} -> {m['last_loss']:.2f} in {m['seconds']:.0f}s"
    )


def grpo(cfg, m: dict) -> None:
    held = m["heldout_reward"]
    say(
        f"IL-GRPO model saved to {train_grpo.model_dir(cfg)}: {m['seconds_per_step']:.2f} s/step; held-out "
        f"total reward SFT {held['sft']['total']:.3f} -> GRPO {held['grpo']['total']:.3f}"
    )
    for name in held["grpo"]:
        say(f"  {name:10s} SFT {held['sft'][name]:.4f}  GRPO {held['grpo'][name]:.4f}")


def think(cfg, summary: dict) -> None:
    say(
        f"AIGQ-Think: {summary['mined_mappings']} mined mappings, model loss {summary['train']['first_loss']:.2f} -> "
        f"{summary['train']['last_loss']:.2f}; {summary['triggers']} trigger mappings at "
        f"{summary['mappings_per_s']:.1f}/s (model share {summary['model_share']:.0%}, generated rationale "
        f"{summary['rationale_generated']:.0%}) -> {summary['mappings']}"
        + (f", pushed to Feast ({cfg.store})" if summary["pushed"] else "")
    )


def nearline(cfg, out: dict) -> None:
    if out["status"] == "up to date":
        say("nearline: no activity since the watermark; nothing to do")
    else:
        say(
            f"nearline run {out['run_id']} ({out['status']}): {out['generated']} of {out['users']} users generated "
            f"({out['replayed']} replayed) at {out['lists_per_s']:.1f} lists/s with {out['model_version']}; "
            f"window {out['since']} .. {out['until']}"
        )


def scenario(cfg, out: dict) -> None:
    say(
        f"drift scenario: {out['lists']} served lists over {len(out['days'])} days "
        f"({out['days'][0]} .. {out['days'][-1]}), {out['clicks']} clicks; diversity lost from "
        f"{out['degraded_from']}; log {out['log_url']}"
    )


def evaluated(cfg, doc: dict, table: bool = True) -> None:
    say(
        f"evaluation of {len(doc['policies'])} policies on {doc['n_requests']} requests: "
        f"{reports_dir(cfg.output_dir) / 'eval.md'}"
    )
    if table:
        print(eval_table(doc))


def experimented(cfg, doc: dict) -> None:
    say(f"experiment over seeds {cfg.seeds} in {doc['seconds']:.0f}s: {reports_dir(cfg.output_dir) / 'experiment.md'}")
    summary = doc["summary"]["world_v2"]
    cols = ("sim_ctr", "oracle_share", "hit_rate@8", "distinct_categories")
    print(f"{'policy':20s}" + "".join(f"{c:>22s}" for c in cols))
    for name, slices in summary.items():
        print(f"{name:20s}" + "".join(f"{experiment.cell(slices['all'][c]):>22s}" for c in cols))


def eval_table(doc: dict, slice_name: str = "all") -> str:
    cols = evaluate.measured(
        doc["policies"],
        (
            "hit_rate@8",
            "hit_rate_organic@8",
            "ndcg@8",
            "mrr@8",
            "sim_ctr",
            "oracle_share",
            "distinct_categories",
            "novelty",
            "serendipity",
            "validity",
        ),
    )
    lines = [f"{'policy':18s}" + "".join(f"{c:>20s}" for c in cols)]
    for name, slices in doc["policies"].items():
        row = slices[slice_name]
        lines.append(f"{name:18s}" + "".join(f"{row[c]:>20.4f}" for c in cols))
    return "\n".join(lines)


def monitor_report(summary: dict) -> None:
    failures = summary["failed_critical"]
    say(
        f"report {summary['reference']} (reference, {summary['lists']['reference']} lists) vs {summary['current']} "
        f"({summary['lists']['current']} lists): {summary['tests']} tests, {len(failures)} critical failures; "
        f"{summary['html']}"
    )
    for name in ("distinct_categories", "mean_ctr_score"):
        say(
            f"  {name:20s} reference {summary['means']['reference'][name]:.4f}  current "
            f"{summary['means']['current'][name]:.4f}"
        )


def dashboard(deployed: dict) -> None:
    say(
        f"dashboard: {deployed['days']} daily reports in {deployed['workspace']}; open it with "
        f"`aigq monitor ui` (http://127.0.0.1:8000)"
    )
    for day, failed in deployed["gate"].items():
        say(f"  {day}: {'FAIL ' + '; '.join(failed) if failed else 'pass'}")


def answer(user_id: str, answer: dict, as_json: bool) -> None:
    if as_json:
        print(json.dumps(answer, indent=1))
        return
    flag = "  [degraded]" if answer["degraded"] else ""
    print(f"HintQ for {user_id} (request {answer['request_id']}){flag}")
    for i, s in enumerate(answer["suggestions"], 1):
        print(f"  {i:2d}. {s['query']:40s} {s['score']:.4f}  {s['source']}")
    print("  models: " + ", ".join(f"{k}={v}" for k, v in answer["model_versions"].items()))
