"""The evaluation harness on the tiny world: the contract of eval.json and a sanity ordering."""

import json
import math

import pytest

from pipelines import evaluate
from pipelines.baselines import Policy

SLICES = ("all", "cold", "regular", "heavy")


@pytest.fixture(scope="module")
def report(tiny_world, tmp_path_factory):
    out = tmp_path_factory.mktemp("reports")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(tiny_world))
        mp.setenv("AIGQ_HOLDOUT_DAYS", "4")
        cfg = evaluate.EvaluateConfig(
            max_requests=600,
            output_dir=str(out),
            policies=["legacy", "popularity", "coclick", "itemcf", "oracle", "random"],
        )
        doc = evaluate.main(cfg)
    return doc, out


def test_eval_json_contract(report):
    doc, out = report
    on_disk = json.loads((out / "eval.json").read_text())
    assert on_disk["policies"].keys() == doc["policies"].keys()
    for policy in ("legacy", "popularity", "coclick", "itemcf"):
        for s in SLICES:
            assert set(evaluate.METRICS) <= set(on_disk["policies"][policy][s]), (policy, s)
    assert (
        sum(on_disk["policies"]["popularity"][s]["n_lists"] for s in SLICES[1:])
        == on_disk["policies"]["popularity"]["all"]["n_lists"]
    )
    assert on_disk["policies"]["legacy"]["all"]["sim_ctr_lift"] == 0.0
    assert (out / "eval.md").read_text().count("| popularity |") == 4
    assert all((out / "plots" / f"{m}.png").stat().st_size > 1000 for m in ("hit_rate_at_8", "sim_ctr"))


def test_eval_json_names_the_world_and_the_share_of_the_ceiling(report):
    from world.spec import FLAGS

    doc = report[0]
    assert doc["world"] == {"version": 2, "seed": 42, "flags": {f: True for f in FLAGS}}
    p = doc["policies"]
    for s in SLICES:
        assert p["oracle"][s]["oracle_share"] == pytest.approx(1.0)
        assert p["popularity"][s]["oracle_share"] == pytest.approx(
            p["popularity"][s]["sim_ctr"] / p["oracle"][s]["sim_ctr"]
        )
        assert 0 < p["popularity"][s]["oracle_share"] < 1
    # the legacy lists are hit by their own clicked suggestions; typed searches alone hit them less
    assert 0 <= p["legacy"]["all"]["hit_rate_organic@8"] < p["legacy"]["all"]["hit_rate@8"]


def test_oracle_above_popularity_above_random(report):
    p = report[0]["policies"]
    for metric in ("sim_ctr", "hit_rate@8"):
        assert p["oracle"]["all"][metric] > p["popularity"]["all"][metric] > p["random"]["all"][metric], metric
    # the confidence interval separates oracle from popularity
    gap = p["oracle"]["all"]["sim_ctr"] - p["popularity"]["all"]["sim_ctr"]
    assert gap > p["oracle"]["all"]["sim_ctr_ci95"] + p["popularity"]["all"]["sim_ctr_ci95"]


def test_metric_ranges(report):
    for policy in report[0]["policies"].values():
        row = policy["all"]
        for m in ("hit_rate@8", "ndcg@8", "mrr@8", "ild_category", "validity", "repeat_rate", "catalog_coverage"):
            assert 0.0 <= row[m] <= 1.0, m
        assert 1 <= row["distinct_categories"] <= 8
    assert (
        report[0]["policies"]["random"]["all"]["ild_category"] > report[0]["policies"]["oracle"]["all"]["ild_category"]
    )


def test_a_new_policy_plugs_in_without_changes(tiny_world, tmp_path, monkeypatch):
    class Echo(Policy):
        name = "echo"

        def recommend(self, user_id, time, k=8):
            return ["red dress", "not a real query at all", "red dress"][:k]

    monkeypatch.setenv("AIGQ_HOME", str(tiny_world))
    monkeypatch.setenv("AIGQ_HOLDOUT_DAYS", "4")
    cfg = evaluate.EvaluateConfig(max_requests=50, output_dir=str(tmp_path), policies=["legacy"], plots=False)
    doc = evaluate.main(cfg, extra_policies=[Echo()])
    row = doc["policies"]["echo"]["all"]
    assert row["validity"] == pytest.approx(0.5)  # one valid, one naming no product type
    assert row["n_lists"] == 50 and not math.isnan(row["sim_ctr_lift"])


def test_unknown_policy_is_named(tiny_world, monkeypatch):
    from core.errors import AigqError

    monkeypatch.setenv("AIGQ_HOME", str(tiny_world))
    with pytest.raises(AigqError, match=r"unknown policies \['telepathy'\]"):
        evaluate.main(evaluate.EvaluateConfig(policies=["telepathy"], plots=False))
