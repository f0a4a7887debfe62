"""`aigq monitor run|gate`: Evidently reports and a pass/fail gate over the serving log.

A reference window (by default the first `reference_days` days of the log) against a current
window (by default its last day): drift of every per-list column (wasserstein for numbers, as
K-S flags everything at this size), mean-value tests with relative thresholds (diversity may not
drop more than `diversity_drop`, relevance more than `relevance_drop`: both critical; a drop must
also exceed `noise_z` standard errors, so a day of few lists does not fail on chance), and
NDCG/HitRate/MRR@8 (`no_feedback_users=True`) where click feedback exists. Snapshots go to
$AIGQ_HOME/monitoring/ as HTML and JSON; `gate` exits non-zero naming each failed critical test.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import pandas as pd

from core.catalogue import QueryCatalogue
from core.config import aigq_home, option
from core.errors import AigqError
from monitoring.list_metrics import COLUMNS, DIVERSITY, RELEVANCE, list_metrics
from serving.log import clicked_items, default_url, read_clicks, read_log

CRITICAL = {DIVERSITY: "diversity", RELEVANCE: "relevance"}


@dataclass
class MonitorConfig:
    log_url: str = option(
        "",
        "serving log (default: the scenario log if `aigq monitor scenario` ran, else "
        "$AIGQ_SERVING_LOG_URL or $AIGQ_HOME/serving/log.db)",
    )
    reference_days: int = option(2, "reference window: the first N days of the log")
    reference_start: str = option("", "or an explicit reference window start (ISO date)")
    reference_end: str = option("", "... and end (exclusive)")
    current_day: str = option("", "current window: this day (ISO date; default the log's last day)")
    diversity_drop: float = option(0.15, "critical: mean distinct categories may drop at most this share")
    relevance_drop: float = option(0.10, "critical: mean CTR score may drop at most this share")
    noise_z: float = option(
        2.0,
        "critical drops must also exceed this many standard errors of the difference "
        "of the window means (0: the relative thresholds alone)",
    )
    drift_method: str = option("wasserstein", "drift method for the per-list columns (wasserstein | jensenshannon)")
    drift_threshold: float = option(
        0.3, "drift score above which a column drifted (wasserstein: in reference std units)"
    )
    output_dir: str = option("", "snapshots folder (default $AIGQ_HOME/monitoring)")


def output_dir(cfg: MonitorConfig) -> Path:
    path = Path(cfg.output_dir) if cfg.output_dir else aigq_home() / "monitoring"
    path.mkdir(parents=True, exist_ok=True)
    return path


def resolve_log_url(cfg: MonitorConfig) -> str:
    if cfg.log_url:
        return cfg.log_url
    scenario = aigq_home() / "monitoring" / "scenario_log.db"
    if scenario.exists():
        return f"sqlite:///{scenario}"

    return default_url()


def load_per_list(url: str) -> pd.DataFrame:
    """The serving log as per-list metrics (with click feedback where the log has it)."""

    served = read_log(url)
    if served.empty:
        raise AigqError(f"{url}: the serving log is empty; serve some traffic or run `aigq monitor scenario`")
    data = aigq_home() / "data"
    catalogue = QueryCatalogue.load(data)
    searches = pd.read_parquet(data / "events.parquet", columns=["event_type", "query"])
    counts = searches.loc[searches["event_type"] == "search", "query"].value_counts()
    clicks = read_clicks(url)
    return list_metrics(served, catalogue, counts.to_dict(), int(counts.sum()), clicks if clicks else None)


def windows(per_list: pd.DataFrame, cfg: MonitorConfig) -> tuple[pd.DataFrame, pd.DataFrame, str, str]:
    days = sorted(per_list["day"].unique())
    if cfg.reference_start:
        lo, hi = (
            _day(cfg.reference_start, "reference_start"),
            _day(cfg.reference_end or cfg.reference_start, "reference_end"),
        )
        reference = per_list[(per_list["day"] >= lo) & (per_list["day"] < hi)]
    else:
        if len(days) <= cfg.reference_days:
            raise AigqError(
                f"the log covers {len(days)} day(s): a reference of {cfg.reference_days} day(s) leaves no "
                "current window; lower reference_days or set reference_start/end"
            )
        reference = per_list[per_list["day"].isin(days[: cfg.reference_days])]
    current_day = _day(cfg.current_day, "current_day") if cfg.current_day else days[-1]
    current = per_list[per_list["day"] == current_day]
    if reference.empty or current.empty:
        raise AigqError(
            f"empty window: reference {len(reference)} lists, current ({current_day.date()}) {len(current)}"
        )
    return reference, current, _span(reference), str(pd.Timestamp(current_day).date())


def _day(text: str, name: str) -> pd.Timestamp:
    try:
        return pd.Timestamp(text, tz="UTC").floor("D")
    except ValueError:
        raise AigqError(f"--set {name}={text!r}: not an ISO date") from None


def _span(frame: pd.DataFrame) -> str:
    return f"{frame['day'].min().date()}..{frame['day'].max().date()}"


def build_report(
    cfg: MonitorConfig,
    with_ranking: bool,
    columns: list[str],
    extra: tuple[str, ...] = (),
    noise: dict[str, float] | None = None,
):
    """`noise`: per critical column, the absolute drop that sampling alone explains (Evidently's
    tolerance is the larger of the relative and the absolute band)."""
    from evidently import Report
    from evidently.metrics import DriftedColumnsCount, MeanValue, ValueDrift
    from evidently.tests import Reference, gte

    metrics = [DriftedColumnsCount(columns=columns, method=cfg.drift_method, threshold=cfg.drift_threshold)]
    metrics += [ValueDrift(column=c, method=cfg.drift_method, threshold=cfg.drift_threshold) for c in columns]
    drops = {DIVERSITY: cfg.diversity_drop, RELEVANCE: cfg.relevance_drop}
    for column in columns:
        tests = []
        if column in drops:
            band = Reference(relative=drops[column], absolute=(noise or {}).get(column))
            tests = [gte(band, is_critical=True)]
        metrics.append(MeanValue(column=column, tests=tests))
    metrics += [MeanValue(column=column) for column in extra]  # e.g. the dashboard's reference band
    if with_ranking:
        from evidently.metrics import MRR, NDCG, HitRate

        metrics += [
            NDCG(k=8, no_feedback_users=True),
            HitRate(k=8, no_feedback_users=True),
            MRR(k=8, no_feedback_users=True),
        ]
    return Report(metrics=metrics)


def dataset(frame: pd.DataFrame, ranking: pd.DataFrame | None, extra: tuple[str, ...] = ()):
    """Per-list columns as an Evidently Dataset (plus the ranking frame, when clicks exist)."""
    from evidently import DataDefinition, Dataset, Recsys

    cols = list(COLUMNS) + list(extra)
    if ranking is None:
        return Dataset.from_pandas(frame[cols].astype(float), data_definition=DataDefinition(numerical_columns=cols))
    # ranking metrics read one row per (list, shown item): rank and whether it was clicked
    merged = ranking.merge(frame[["request_id"] + cols], on="request_id")
    definition = DataDefinition(
        numerical_columns=cols,
        ranking=[Recsys(user_id="request_id", item_id="query", prediction="rank", target="clicked")],
    )
    return Dataset.from_pandas(merged, data_definition=definition)


def ranking_rows(url: str, per_list: pd.DataFrame) -> pd.DataFrame | None:
    """(request, shown query, rank 1..K, clicked) for every served item, when clicks exist."""

    clicked = clicked_items(url)
    if clicked.empty:
        return None
    served = read_log(url)[["request_id", "queries"]].explode("queries").rename(columns={"queries": "query"})
    served["rank"] = served.groupby("request_id").cumcount() + 1
    hits = set(zip(clicked["request_id"], clicked["query"]))
    served["clicked"] = [int((r, q) in hits) for r, q in zip(served["request_id"], served["query"])]
    return served[served["request_id"].isin(set(per_list["request_id"]))].reset_index(drop=True)


def run_report(
    cfg: MonitorConfig,
    reference: pd.DataFrame,
    current: pd.DataFrame,
    ranking: pd.DataFrame | None,
    timestamp: datetime | None = None,
):
    extra = tuple(c for c in current.columns if c.startswith(("reference_", "floor_")))
    # a column with no values in a window (no click feedback, no ranked list) cannot be compared
    columns = [c for c in COLUMNS if reference[c].notna().any() and current[c].notna().any()]
    report = build_report(cfg, ranking is not None, columns, extra, sampling_noise(reference, current, cfg.noise_z))
    ref_rank = ranking[ranking["request_id"].isin(set(reference["request_id"]))] if ranking is not None else None
    cur_rank = ranking[ranking["request_id"].isin(set(current["request_id"]))] if ranking is not None else None
    return report.run(
        current_data=dataset(current, cur_rank, extra),
        reference_data=dataset(reference, ref_rank, extra),
        timestamp=timestamp,
    )


def sampling_noise(reference: pd.DataFrame, current: pd.DataFrame, z: float) -> dict[str, float]:
    """z standard errors of the difference of the two window means, per critical column: at
    40 lists a day the mean CTR score moves ~7% between healthy days by chance alone."""
    out = {}
    for column in CRITICAL:
        ref, cur = reference[column].dropna(), current[column].dropna()
        if len(ref) > 1 and len(cur) > 1:
            out[column] = float(z * (ref.var() / len(ref) + cur.var() / len(cur)) ** 0.5)
    return out


def failed_critical(snapshot) -> list[str]:
    """One line per failed critical test, naming what failed (diversity / relevance)."""
    out = []
    for test in snapshot.dict()["tests"]:
        critical = test.get("test_config", {}).get("is_critical", True)
        if test.get("status") in ("FAIL", "ERROR") and critical:
            column = test.get("metric_config", {}).get("params", {}).get("column", "")
            out.append(f"{CRITICAL.get(column, column or 'test')}: {test.get('description', test.get('name', ''))}")
    return out


@dataclass
class Inputs:
    url: str
    per_list: pd.DataFrame
    reference: pd.DataFrame
    current: pd.DataFrame
    reference_span: str
    current_day: str
    ranking: pd.DataFrame | None


def load_inputs(cfg: MonitorConfig) -> Inputs:
    """The serving log as per-list metrics, its two windows and (with clicks) its ranking rows."""
    url = resolve_log_url(cfg)
    per_list = load_per_list(url)
    reference, current, ref_span, cur_day = windows(per_list, cfg)
    return Inputs(url, per_list, reference, current, ref_span, cur_day, ranking_rows(url, per_list))


def main(cfg: MonitorConfig) -> dict:
    """One report (reference vs current), saved as HTML and JSON; returns the summary."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    started = time.perf_counter()
    inputs = load_inputs(cfg)
    url, reference, current = inputs.url, inputs.reference, inputs.current
    ref_span, cur_day = inputs.reference_span, inputs.current_day
    snapshot = run_report(cfg, reference, current, inputs.ranking)
    out = output_dir(cfg)
    stem = f"report_{cur_day}"
    snapshot.save_html(str(out / f"{stem}.html"))
    snapshot.save_json(str(out / f"{stem}.json"))
    failures = failed_critical(snapshot)
    tests = snapshot.dict()["tests"]
    summary = {
        "log_url": url,
        "reference": ref_span,
        "current": cur_day,
        "lists": {"reference": len(reference), "current": len(current)},
        "tests": len(tests),
        "failed_critical": failures,
        "means": {
            "reference": reference[list(COLUMNS)].mean().round(4).to_dict(),
            "current": current[list(COLUMNS)].mean().round(4).to_dict(),
        },
        "html": str(out / f"{stem}.html"),
        "json": str(out / f"{stem}.json"),
        "seconds": time.perf_counter() - started,
        "config": asdict(cfg),
    }
    (out / "latest.json").write_text(json.dumps(summary, indent=1, default=str))
    return summary
