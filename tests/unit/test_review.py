"""Reviewers' flags and approvals: validation, the append-only store, what the online path and
IL-GRPO read from it (Blocked, the `flagged` reward), agreement and flag rates for the page."""

import math

import pandas as pd
import pytest

from monitoring.review import agreement, flag_rates
from pipelines.rewards import RewardContext, make_rewards
from serving.review import MAX_EVIDENCE_CHARS, ReviewError, ReviewStore


@pytest.fixture
def store(tmp_path):
    s = ReviewStore(f"sqlite:///{tmp_path / 'review.db'}")
    yield s
    s.close()


def flag(store, query="red dress", **kw):
    args = dict(
        request_id="r1",
        position=0,
        query=query,
        category_id="c1",
        source="direct",
        reason="irrelevant",
        reviewer="ann",
        scope="global",
    )
    return store.flag(**{**args, **kw})


def test_flags_block_everywhere_or_in_their_category(store):
    flag(store, "Red  Dress")  # normalised like every text that enters
    flag(store, "tent", category_id="c9", scope="category")
    blocked = store.blocked()
    assert blocked("red dress", None) and blocked("red dress", "c5")
    assert blocked("tent", "c9") and not blocked("tent", "c1")
    assert not blocked("sleeping bag", "c9") and len(blocked) == 2


def test_the_store_is_append_only_and_keeps_who_when_why(store):
    first = flag(store, evidence="not sold here")
    second = flag(store, reviewer="bob", reason="duplicate")
    store.approve("r2", "ann")
    flags = store.flags()
    assert [first, second] == flags["flag_id"].tolist()
    assert flags[["reviewer", "reason", "evidence"]].values.tolist() == [
        ["ann", "irrelevant", "not sold here"],
        ["bob", "duplicate", ""],
    ]
    assert flags["created_at"].notna().all() and store.approvals()["reviewer"].tolist() == ["ann"]


@pytest.mark.parametrize(
    "kw, needle",
    [
        ({"reason": "ugly"}, "reason: one of irrelevant, offensive"),
        ({"scope": "planet"}, "scope: one of global, category"),
        ({"scope": "category", "category_id": None}, "needs a suggestion with a known category"),
        ({"reviewer": ""}, "reviewer: required"),
        ({"reviewer": "a\x1bb"}, "reviewer: control characters"),
        ({"reviewer": "x" * 65}, "reviewer: at most 64"),
        ({"evidence": "e" * (MAX_EVIDENCE_CHARS + 1)}, f"evidence: at most {MAX_EVIDENCE_CHARS}"),
    ],
)
def test_a_bad_decision_is_refused_naming_the_field_and_nothing_is_written(store, kw, needle):
    with pytest.raises(ReviewError, match=needle):
        flag(store, **kw)
    assert store.flags().empty


def test_the_flagged_reward_penalises_flagged_queries_by_position():
    rc = RewardContext(category_of=lambda q: "c1", is_valid=lambda q: True, k=4, flagged=lambda q, c: q == "bad query")
    reward = make_rewards(rc)["flagged"]
    out = reward(["p"] * 3, [" bad query | tent", " tent | bad query", " tent | lamp"])
    assert out[0] < out[1] < 0 and out[2] == 0.0
    assert make_rewards(RewardContext(lambda q: "c1", lambda q: True))["flagged"](["p"], [" bad query"]) == [0.0]


def served(request_id, day, sources):
    return {
        "request_id": request_id,
        "served_at": pd.Timestamp(day, tz="UTC"),
        "queries": [f"q{i}" for i in range(len(sources))],
        "sources": sources,
    }


def test_agreement_over_lists_two_reviewers_saw():
    log = pd.DataFrame([served("r1", "2026-11-01", ["direct"] * 4), served("r2", "2026-11-01", ["think"] * 4)])
    flags = pd.DataFrame({"request_id": ["r1", "r1", "r2"], "reviewer": ["ann", "bob", "ann"], "position": [0, 1, 0]})
    approvals = pd.DataFrame({"request_id": ["r1"], "reviewer": ["cyd"]})
    a = agreement(log, flags, approvals)
    # r1: ann, bob and cyd saw it (3 pairs x 4 positions); r2: only ann
    assert a["lists"] == 1 and a["suggestions"] == 12
    assert a["agreement"] == pytest.approx(8 / 12)  # ann-bob disagree on 2, ann-cyd on 1, bob-cyd on 1
    assert math.isfinite(a["kappa"]) and a["kappa"] < 0.5


def test_flag_rates_per_source_and_day():
    log = pd.DataFrame(
        [served("r1", "2026-11-01", ["direct", "direct", "think", "fallback"]), served("r2", "2026-11-02", ["think"])]
    )
    flags = pd.DataFrame({"request_id": ["r1", "r1", "r2"], "position": [0, 0, 0], "reviewer": ["a", "b", "a"]})
    rates = flag_rates(log, flags)
    assert rates.loc["2026-11-01", "direct"] == 0.5  # one of two direct suggestions (two flags, one suggestion)
    assert rates.loc["2026-11-02", "think"] == 1.0 and rates.loc["2026-11-01", "think"] == 0.0
