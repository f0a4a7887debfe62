import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from core.schemas import SCHEMAS
from pipelines import simulate
from world.legacy import first_distinct
from world.sessions import spaced_starts
from world.shop import World

from tests.conftest import TINY_END_DATE


def _run(home, monkeypatch, **overrides):
    monkeypatch.setenv("AIGQ_HOME", str(home))
    cfg = simulate.SimulateConfig(profile="tiny", end_date="2026-06-01", **overrides)
    return simulate.main(cfg)


def _digests(data_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data_dir.glob("*.parquet"))}


def test_same_seed_same_bytes_other_seed_other_bytes(tmp_path, monkeypatch):
    a = _digests(_run(tmp_path / "a", monkeypatch, seed=5))
    b = _digests(_run(tmp_path / "b", monkeypatch, seed=5))
    c = _digests(_run(tmp_path / "c", monkeypatch, seed=6))
    assert a == b
    assert len(a) == 7
    assert a["events.parquet"] != c["events.parquet"]


def test_tables_follow_the_schema_contract(tiny_world):
    for name, schema in SCHEMAS.items():
        table = pq.read_table(tiny_world / "data" / f"{name}.parquet")
        assert table.schema.remove_metadata().equals(schema.remove_metadata()), name
        assert table.num_rows > 0, name
    ev = pd.read_parquet(tiny_world / "data" / "events.parquet")
    assert str(ev["event_ts"].dtype) == "datetime64[us, UTC]"
    end = pd.Timestamp(TINY_END_DATE, tz="UTC")
    # sessions start inside the 10-day window (a day's last session may spill past midnight)
    sessions = pd.read_parquet(tiny_world / "data" / "sessions.parquet")
    assert sessions["session_start"].min() >= end - pd.Timedelta(days=10)
    assert sessions["session_start"].max() < end + pd.Timedelta(hours=4)


@pytest.fixture(scope="module")
def logs(tiny_world):
    d = tiny_world / "data"
    return {n: pd.read_parquet(d / f"{n}.parquet") for n in ("users", "sessions", "events", "hintq_impressions")}


@pytest.fixture(scope="module")
def world(tiny_world, logs):
    return World.load(tiny_world / "world", logs["users"])


def test_sessions_concentrate_on_one_or_two_categories(logs):
    organic = logs["events"][
        (logs["events"]["event_type"] == "search") & (logs["events"]["search_source"] == "organic")
    ]
    per_session = organic.groupby("session_id")["category_id"].nunique()
    assert per_session.max() <= 2
    assert (per_session == 1).mean() > 0.6
    # and a user's searches concentrate on few of the 250 categories
    per_user = organic.groupby("user_id")["category_id"].agg(lambda c: c.value_counts(normalize=True).iloc[:2].sum())
    assert per_user.median() > 0.6


def test_cold_start_users_are_new_and_light(logs, world):
    users = logs["users"]
    window_start = pd.Timestamp(world.params.start_us, unit="us", tz="UTC")
    cold = users["signup_ts"] >= window_start
    assert 0.06 < cold.mean() < 0.2  # configured share 0.12 of 300 users
    n_events = logs["events"].groupby("user_id").size().reindex(users["user_id"], fill_value=0).to_numpy()
    assert np.median(n_events[cold.to_numpy()]) * 2 < np.median(n_events[~cold.to_numpy()])
    assert (n_events[cold.to_numpy()] > 0).all()  # every new user has at least one session


def test_click_through_falls_with_position(logs):
    ctr = logs["hintq_impressions"].groupby("position")["clicked"].mean()
    assert list(ctr.index) == list(range(8))
    assert ctr[0] > ctr[1:].max() and ctr[:4].mean() > 2 * ctr[4:].mean()


def _logged_lists(imp):
    lists = (
        imp.sort_values(["impression_id", "position"])
        .groupby("impression_id")
        .agg(
            user=("user_id", "first"), t=("impression_ts", "first"), queries=("query", list), clicks=("clicked", "sum")
        )
    )
    return lists


def test_click_model_matches_the_logged_clicks(logs, world):
    """The world's expected clicks per list (averaged over the visit's possible needs) match the
    clicks the simulator drew from the visits' actual needs."""
    from pipelines.evaluate import click_probabilities

    lists = _logged_lists(logs["hintq_impressions"])
    p = click_probabilities(world, list(zip(lists["user"], lists["t"])), list(lists["queries"]), 8)
    expected = np.array([x.sum() for x in p])
    assert expected.mean() == pytest.approx(lists["clicks"].mean(), rel=0.15)
    clicked = lists["clicks"].to_numpy() > 0
    assert expected[clicked].mean() > 1.5 * expected[~clicked].mean()


def test_a_visit_takes_at_most_about_one_suggestion(logs):
    clicks = _logged_lists(logs["hintq_impressions"])["clicks"]
    assert clicks.max() <= 3 and (clicks[clicks > 0] == 1).mean() > 0.9


def test_click_probability_api(logs, world):
    row = logs["hintq_impressions"].iloc[0]
    probs = [world.click_probability(row["user_id"], row["query"], pos, row["impression_ts"]) for pos in range(8)]
    assert all(0 < p < 1 for p in probs)
    assert probs == sorted(probs, reverse=True)
    assert world.click_probability(row["user_id"], "  " + row["query"].upper(), 0, row["impression_ts"]) == probs[0]
    nonsense = world.click_probability(row["user_id"], "zzqx florp", 0, row["impression_ts"])
    assert nonsense < 1e-4 < probs[0]  # text that names no product type gets nothing
    with pytest.raises(KeyError):
        world.click_probability("no-such-user", row["query"], 0, row["impression_ts"])


def test_a_second_suggestion_for_the_same_need_adds_less_than_one_for_another_need(world, logs):
    """The list-level click model: after the best query for a user's top need, another query of
    that category adds less than the best query of the second need would."""
    from world.shop import Texts

    row = logs["hintq_impressions"].iloc[0]
    u = world.user_index([row["user_id"]])
    t = world.days_since_start(np.array([int(row["impression_ts"].value // 1000)]))
    best = world.best_list(row["user_id"], int(row["impression_ts"].value // 1000), 8)
    texts = world.texts(best)
    probs = world.list_click_probabilities(
        u,
        t,
        Texts(*(x[None] for x in (texts.query, texts.category, texts.tokens, texts.novelty))),
        np.ones((1, 8), bool),
    )
    assert probs.sum() <= 1.0 / (1 - world.spec["click_continue"])
    assert probs[0, 0] >= probs[0, 1:].max()  # greedy puts the largest gain first


def test_hidden_interests_are_never_searched_organically(logs, world):
    u = world.users
    cat_ids = world.catalog.categories["category_id"].to_numpy()
    hidden = {
        (uid, cat_ids[c])
        for i, uid in enumerate(u.profile["user_id"])
        for c, h in zip(u.slot_category[i], u.hidden[i])
        if h and c >= 0
    }
    assert len(hidden) > 50
    ev = logs["events"]
    organic = ev[(ev["event_type"] == "search") & (ev["search_source"] == "organic")]
    assert not hidden & set(zip(organic["user_id"], organic["category_id"]))
    # ...but shown as suggestions they attract far more than unrelated ones (serendipity exists)
    users = np.array([world.user_index([u])[0] for u, _ in sorted(hidden)])
    cats = np.array(
        [world.catalog.categories.index[world.catalog.categories["category_id"] == c][0] for _, c in sorted(hidden)]
    )
    unrelated = np.array([next(c for c in range(250) if c not in world.users.slot_category[u]) for u in users])
    take = lambda c: world.attractiveness(
        users,
        world.texts(  # noqa: E731
            [world.catalog.queries["query"][world.query_category == x].iloc[0] for x in c]
        ),
        5.0,
    )
    assert take(cats).mean() > 3 * take(unrelated).mean()


def test_legacy_lists_are_k_distinct_queries(logs):
    imp = logs["hintq_impressions"]
    sizes = imp.groupby("impression_id")["query"].agg(["size", "nunique"])
    assert (sizes["size"] == 8).all() and (sizes["nunique"] == 8).all()


def test_first_distinct_keeps_order_and_pads():
    cand = np.array([[3, 3, -1, 5, 3, 7], [-1, -1, -1, -1, -1, 2]])
    assert first_distinct(cand, 3).tolist() == [[3, 5, 7], [2, -1, -1]]


def test_queries_outside_the_vocabulary_are_judged_by_what_they_name(logs, world):
    row = logs["hintq_impressions"].iloc[0]
    texts = world.texts(["oversized linen shirt", "zzqx florp", row["query"], "linen"])
    assert texts.query[0] == -1 and texts.query[1] == -1 and texts.query[2] >= 0
    shirts = world.catalog.categories.index[world.catalog.categories["category_name"] == "Shirts"][0]
    assert texts.category[0] == shirts and texts.category[1] == -1 and texts.category[3] == -1
    named = {world.lexicon.tokens[t] for t in texts.tokens[0] if t >= 0}
    assert named == {"oversized", "linen"}
    # novelty as a vocabulary query of that category with two attribute words, not the rarest there is
    assert texts.novelty[0] < world.query_novelty_z.max()


def test_spaced_starts_enforces_the_gap_per_group():
    group = np.array([0, 0, 0, 1, 1])
    start = np.array([0, 10, 100, 5, 6])
    assert spaced_starts(group, start, 40).tolist() == [0, 40, 100, 5, 45]


def test_spaced_starts_at_a_million_users_a_day_does_not_overflow():
    """The xlarge world has ~250,000 users with sessions a day: the per-group offsets once grew
    with all rows and wrapped int64 (events stamped in 1961)."""
    rng = np.random.default_rng(0)
    day_us, gap = 86_400_000_000, 30 * 60_000_000
    group = np.repeat(np.arange(300_000), 3)
    start = 1_790_000_000_000_000 + np.sort(rng.integers(0, day_us, (300_000, 3)), axis=1).ravel()
    spaced = spaced_starts(group, start, gap)
    assert (spaced >= start).all() and spaced.max() < start.max() + 3 * gap
    within = np.diff(spaced.reshape(300_000, 3), axis=1)
    assert (within >= gap).all()
    # the same answer as for each group alone
    for g in rng.choice(300_000, 50, replace=False):
        rows = slice(3 * g, 3 * g + 3)
        assert spaced[rows].tolist() == spaced_starts(group[rows], start[rows], gap).tolist()
