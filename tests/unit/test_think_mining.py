"""AIGQ-Think's data: follow-ups mined across users, capped per category, rationales from the
catalogue, completions split back into rationale and list."""

import pandas as pd

from core.catalogue import QueryCatalogue
from models.base_lm import EOS, LIST
from pipelines import think

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def events(rows):
    return pd.DataFrame(
        [
            {"user_id": u, "event_ts": T0 + pd.Timedelta(minutes=m), "event_type": e, "query": q, "category_id": c}
            for u, m, e, q, c in rows
        ]
    )


CATALOGUE = QueryCatalogue(
    pd.DataFrame(
        {
            "query": ["tent", "sleeping bag", "camp stove", "red dress", "dress"],
            "category_id": ["c1", "c2", "c2", "c3", "c3"],
            "ptype": ["tent", "sleeping bag", "stove", "dress", "dress"],
        }
    ),
    pd.DataFrame(
        {
            "category_id": ["c1", "c2", "c3"],
            "category_name": ["Tents", "Camp Gear", "Dresses"],
            "domain": ["outdoor", "outdoor", "fashion"],
        }
    ),
)


def test_follow_ups_are_counted_once_per_user_within_the_horizon():
    ev = events(
        [
            ("u1", 0, "search", "tent", "c1"),
            ("u1", 5, "search", "sleeping bag", "c2"),
            ("u1", 6, "search", "sleeping bag", "c2"),  # same user again: still one user
            ("u2", 0, "search", "tent", "c1"),
            ("u2", 3, "search", "sleeping bag", "c2"),
            ("u3", 0, "search", "tent", "c1"),
            ("u3", 60 * 30, "search", "camp stove", "c2"),  # 30 h later: too late
            ("u4", 0, "click", None, "c3"),
            ("u4", 2, "search", "red dress", "c3"),
            ("u5", 0, "search", "tent", "c1"),
            ("u6", 1, "search", "camp stove", "c2"),  # another user: no follow-up
        ]
    )
    follow = think.mine_follow_ups(ev, horizon_hours=24, lookahead=6)
    got = {(r.trigger, r.query): r.users for r in follow.itertuples()}
    assert got[("tent", "sleeping bag")] == 2
    assert ("tent", "camp stove") not in got
    assert got[("category:c3", "red dress")] == 1
    assert ("tent", "tent") not in got


def test_pick_targets_caps_one_category_then_fills():
    follow = pd.DataFrame({"query": ["a1", "a2", "a3", "b1"], "users": [9, 8, 7, 1]})
    cats = {"a1": "A", "a2": "A", "a3": "A", "b1": "B"}
    assert think.pick_targets(follow, cats, k=3, per_category=2) == ["a1", "a2", "b1"]
    assert think.pick_targets(follow, cats, k=4, per_category=2) == ["a1", "a2", "b1", "a3"]


def test_rationale_names_the_trigger_category_and_the_next_needs():
    r = think.rationale(CATALOGUE, "tent", ["sleeping bag", "camp stove", "tent"])
    assert r == "Tents in outdoor; next: Camp Gear"
    assert think.rationale(CATALOGUE, "category:c3", ["red dress"]) == "Dresses in fashion; next: more Dresses"
    assert "Tents" in think.prompt(CATALOGUE, "tent") and "Dresses" in think.prompt(CATALOGUE, "category:c3")


def test_a_completion_splits_back_into_rationale_and_list():
    text = think.completion("Tents in outdoor; next: Camp Gear", ["sleeping bag", "camp stove"])
    reason, listed = think.split_completion(text + " junk after eos")
    assert reason == "Tents in outdoor; next: Camp Gear"
    assert "sleeping bag" in listed and "junk" not in listed
    assert think.split_completion("no list token" + EOS) == ("", "no list token")
    assert LIST in text


def test_pool_round_robins_and_skips_excluded():
    assert think.pool([["a", "b", "c"], ["x", "a", "y"]], exclude={"b"}) == ["a", "x", "c", "y"]
