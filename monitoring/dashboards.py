"""`aigq monitor deploy|ui`: an Evidently workspace with the HintQ project and its dashboard,
declared in code, and `evidently ui` on 127.0.0.1 over it.

Deploying is idempotent: the project is found by name, its runs are replaced by one report per
day of the log after the reference window (reference vs that day), and the dashboard model is
saved whole. The reference band is drawn from two constant columns added to each day's data:
the reference mean and the gate's floor (reference mean less the allowed drop: the relative
threshold or the sampling-noise band, whichever is wider, as the gate has it).
"""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pandas as pd

from core.errors import AigqError
from monitoring.list_metrics import DIVERSITY, RELEVANCE
from monitoring.reports import MonitorConfig, failed_critical, load_inputs, output_dir, run_report, sampling_noise

PROJECT = "AIGQ HintQ suggestions"
BANDED = (DIVERSITY, RELEVANCE)


def workspace_path(cfg: MonitorConfig) -> Path:
    return output_dir(cfg) / "workspace"


def with_band(frame: pd.DataFrame, reference: pd.DataFrame, cfg: MonitorConfig) -> pd.DataFrame:
    """Constant reference-mean and floor columns, so line plots can draw the reference band."""
    out = frame.copy()
    drops = {DIVERSITY: cfg.diversity_drop, RELEVANCE: cfg.relevance_drop}
    noise = sampling_noise(reference, frame, cfg.noise_z)
    for column in BANDED:
        ref = float(reference[column].mean())
        out[f"reference_{column}"] = ref
        out[f"floor_{column}"] = ref - max(ref * drops[column], noise.get(column, 0.0))
    return out


def panels():
    from evidently.sdk.models import PanelMetric
    from evidently.sdk.panels import bar_plot_panel, counter_panel, line_plot_panel, text_panel

    def mean(column: str, legend: str) -> PanelMetric:
        return PanelMetric(legend=legend, metric="MeanValue", metric_labels={"column": column})

    def band(column: str, name: str) -> list:
        return [mean(column, name), mean(f"reference_{column}", "reference"), mean(f"floor_{column}", "gate floor")]

    return [
        text_panel(
            "AIGQ HintQ: are the suggestions still diverse and relevant?",
            "One report per day against the reference window. Diversity: distinct categories per list; "
            "relevance: mean CTR score of the ranked list. The gate fails below the floor.",
        ),
        counter_panel("Diversity today", [mean(DIVERSITY, "distinct categories per list")], size="half"),
        counter_panel("Relevance today", [mean(RELEVANCE, "mean CTR score")], size="half"),
        line_plot_panel("Diversity by day", band(DIVERSITY, "distinct categories"), size="half"),
        line_plot_panel("Relevance by day", band(RELEVANCE, "mean CTR score"), size="half"),
        bar_plot_panel(
            "Source mix",
            [mean("share_direct", "direct"), mean("share_think", "think"), mean("share_fallback", "fallback")],
            size="half",
            stacked=True,
        ),
        line_plot_panel("Degraded answers", [mean("degraded", "degraded share")], size="half"),
        bar_plot_panel(
            "Drifted per-list columns",
            [
                PanelMetric(
                    legend="drifted columns", metric="DriftedColumnsCount", metric_labels={"value_type": "count"}
                )
            ],
            size="half",
        ),
        line_plot_panel("Observed click-through", [mean("click_through", "clicks per shown query")], size="half"),
    ]


def deploy(cfg: MonitorConfig) -> dict:
    """(Re)build the workspace: project, one run per day after the reference, the dashboard."""
    os.environ.setdefault("DO_NOT_TRACK", "1")
    from evidently.sdk.models import DashboardModel
    from evidently.ui.workspace import Workspace

    started = time.perf_counter()
    inputs = load_inputs(cfg)
    per_list, reference, ranking = inputs.per_list, inputs.reference, inputs.ranking
    ws = Workspace(str(workspace_path(cfg)))
    found = ws.search_project(PROJECT)
    project = found[0] if found else ws.create_project(PROJECT, description="HintQ diversity and relevance drift")
    for run_id in ws.list_runs(project.id):
        ws.delete_run(project.id, run_id)
    days = sorted(d for d in per_list["day"].unique() if d > reference["day"].max())
    if not days:
        raise AigqError("no day after the reference window to report on")
    gate = {}
    for day in days:
        current = per_list[per_list["day"] == day]
        snapshot = run_report(
            cfg,
            with_band(reference, reference, cfg),
            with_band(current, reference, cfg),
            ranking,
            timestamp=pd.Timestamp(day).to_pydatetime() + pd.Timedelta(hours=12),
        )
        ws.add_run(project.id, snapshot)
        gate[str(pd.Timestamp(day).date())] = failed_critical(snapshot)
    ws.save_dashboard(project.id, DashboardModel(tabs=[], panels=panels()))
    return {
        "workspace": str(workspace_path(cfg)),
        "project_id": str(project.id),
        "reference": inputs.reference_span,
        "days": len(days),
        "gate": gate,
        "seconds": time.perf_counter() - started,
    }


def ui_command(cfg: MonitorConfig, port: int) -> list[str]:
    evidently = str(Path(sys.executable).with_name("evidently"))
    return [evidently, "ui", "--workspace", str(workspace_path(cfg)), "--host", "127.0.0.1", "--port", str(port)]
