import hashlib

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest

from pipelines import simulate
from pipelines.schemas import SCHEMAS
from pipelines.world import World
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
    organic = logs["events"][(logs["events"]["event_type"] == "search") & (logs["events"]["search_source"] == "organic")]
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
    assert ctr[0] > ctr[3] > ctr[7]


def test_click_model_matches_the_logged_clicks(logs, world):
    imp = logs["hintq_impressions"]
    ts_us = imp["impression_ts"].astype("int64").to_numpy()
    p = world.click_probability_batch(world.user_index(imp["user_id"]), world.query_index(imp["query"]),
                                      imp["position"].to_numpy(), world.days_since_start(ts_us))
    assert p.mean() == pytest.approx(imp["clicked"].mean(), rel=0.1)
    # clicked suggestions had higher ground-truth probability than unclicked ones
    assert p[imp["clicked"].to_numpy()].mean() > 2 * p[~imp["clicked"].to_numpy()].mean()


def test_click_probability_api(logs, world):
    row = logs["hintq_impressions"].iloc[0]
    probs = [world.click_probability(row["user_id"], row["query"], pos, row["impression_ts"]) for pos in range(8)]
    assert all(0 < p < 1 for p in probs)
    assert probs == sorted(probs, reverse=True)
    assert world.click_probability(row["user_id"], "  " + row["query"].upper(), 0, row["impression_ts"]) == probs[0]
    nonsense = world.click_probability(row["user_id"], "zzqx florp", 0, row["impression_ts"])
    assert nonsense < probs[0]
    with pytest.raises(KeyError):
        world.click_probability("no-such-user", row["query"], 0, row["impression_ts"])


def test_hidden_interests_are_never_searched_organically(logs, world):
    u = world.users
    cat_ids = world.catalog.categories["category_id"].to_numpy()
    hidden = {(uid, cat_ids[c]) for i, uid in enumerate(u.profile["user_id"])
              for c, h in zip(u.slot_category[i], u.hidden[i]) if h and c >= 0}
    assert len(hidden) > 50
    ev = logs["events"]
    organic = ev[(ev["event_type"] == "search") & (ev["search_source"] == "organic")]
    assert not hidden & set(zip(organic["user_id"], organic["category_id"]))
    # ...but shown as suggestions they do get clicked sometimes (serendipity exists)
    imp = logs["hintq_impressions"]
    clicked = set(zip(imp.loc[imp["clicked"], "user_id"], imp.loc[imp["clicked"], "category_id"]))
    assert hidden & clicked


def test_legacy_lists_are_k_distinct_queries(logs):
    imp = logs["hintq_impressions"]
    sizes = imp.groupby("impression_id")["query"].agg(["size", "nunique"])
    assert (sizes["size"] == 8).all() and (sizes["nunique"] == 8).all()


def test_first_distinct_keeps_order_and_pads():
    cand = np.array([[3, 3, -1, 5, 3, 7], [-1, -1, -1, -1, -1, 2]])
    assert simulate.first_distinct(cand, 3).tolist() == [[3, 5, 7], [2, -1, -1]]


def test_queries_outside_the_vocabulary_are_judged_by_the_product_type_they_name(logs, world):
    row = logs["hintq_impressions"].iloc[0]
    q, cat = world.resolve_queries(["oversized linen shirt", "zzqx florp", row["query"]])
    assert q[0] == -1 and q[1] == -1 and q[2] >= 0
    shirts = world.catalog.categories.index[world.catalog.categories["category_name"] == "Shirts"][0]
    assert cat[0] == shirts and cat[1] == -1


def test_spaced_starts_enforces_the_gap_per_group():
    group = np.array([0, 0, 0, 1, 1])
    start = np.array([0, 10, 100, 5, 6])
    assert simulate.spaced_starts(group, start, 40).tolist() == [0, 40, 100, 5, 45]
