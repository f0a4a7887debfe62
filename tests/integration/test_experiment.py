"""`aigq experiment`: runs per seed in homes of their own, resumable, figures as means with 95%
intervals over seeds, and the ablation paired by seed."""

import json
import math

import pytest

from pipelines import experiment


def _eval(values: dict) -> dict:
    return {
        "policies": {p: {s: {m: v for m in experiment.TABLE} for s in experiment.SLICES} for p, v in values.items()}
    }


def test_the_interval_is_the_t_interval_over_seeds():
    mean, half = experiment.interval([1.0, 2.0, 3.0])
    assert mean == pytest.approx(2.0)
    assert half == pytest.approx(4.302653 * 1.0 / math.sqrt(3), rel=1e-5)  # t(0.975, 2) * sd / sqrt(n)
    assert math.isnan(experiment.interval([5.0])[1]) and experiment.interval([5.0])[0] == 5.0
    assert math.isnan(experiment.interval([math.nan])[0])


def test_ablation_differences_are_paired_by_seed():
    full = {1: _eval({"a": 0.5}), 2: _eval({"a": 0.7})}
    off = {1: _eval({"a": 0.4}), 2: _eval({"a": 0.6})}
    out = experiment.ablation({"world_v2": full, "without_personas": off})
    mean, half = out["without_personas"]["a"]["sim_ctr"]
    assert mean == pytest.approx(-0.1) and half == pytest.approx(0.0, abs=1e-9)  # same drop on both seeds


def test_baselines_only_experiment_on_two_tiny_worlds(tmp_path, monkeypatch):
    monkeypatch.setenv("AIGQ_HOME", str(tmp_path))
    cfg = experiment.ExperimentConfig(seeds=[1, 2], profile="tiny", models=False)
    doc = experiment.main(cfg)
    summary = doc["summary"]["world_v2"]
    assert {"popularity_segment", "mf", "oracle"} <= set(summary)
    mean, half = summary["oracle"]["all"]["oracle_share"]
    assert mean == pytest.approx(1.0) and half == pytest.approx(0.0, abs=1e-9)
    evals = [
        json.loads((tmp_path / "experiments" / "world_v2-baselines" / f"seed{s}" / "reports" / "eval.json").read_text())
        for s in (1, 2)
    ]
    assert [e["world"]["seed"] for e in evals] == [1, 2]
    sims = [e["policies"]["mf"]["all"]["sim_ctr"] for e in evals]
    assert summary["mf"]["all"]["sim_ctr"][0] == pytest.approx(sum(sims) / 2)
    assert "| popularity_segment |" in (tmp_path / "reports" / "experiment.md").read_text()
    # a second call finds every run done and only aggregates again
    again = experiment.main(cfg)
    assert json.dumps(again["summary"]) == json.dumps(doc["summary"]) and again["seconds"] < doc["seconds"]
