import pandas as pd
import pytest

from pipelines.baselines import (CoClickPolicy, ItemCFPolicy, LoggedPolicy, PopularityPolicy, build_baselines,
                                 fill)
from pipelines.history import EventLog
from tests.handmade import ts


def _events(rows):
    return pd.DataFrame([{"event_id": i, "session_id": s, "user_id": u, "event_ts": ts(t), "event_type": e,
                          "query": q, "category_id": c, "item_id": it} for i, (s, u, t, e, q, c, it) in enumerate(rows)])


HAND = _events([
    (1, "a", "2026-03-01 10:00", "search", "tent", "c2", None),
    (1, "a", "2026-03-01 10:01", "search", "sleeping bag", "c2", None),
    (1, "a", "2026-03-01 10:02", "click", "sleeping bag", "c2", "i7"),
    (1, "a", "2026-03-01 10:03", "click", "sleeping bag", "c2", "i8"),
    (2, "b", "2026-03-02 10:00", "search", "tent", "c2", None),
    (2, "b", "2026-03-02 10:01", "search", "camping lantern", "c2", None),
    (3, "b", "2026-03-05 10:00", "search", "mug", "c3", None),
    (3, "b", "2026-03-05 10:01", "click", "mug", "c3", "i9"),
    (4, "c", "2026-03-06 09:00", "search", "tent", "c2", None),
    (4, "c", "2026-03-06 09:01", "click", "tent", "c2", "i7"),
])
CUTOFF = ts("2026-03-06")


def test_popularity_decays_with_age():
    log = EventLog(HAND)
    pop = PopularityPolicy(log, CUTOFF, half_life_days=1.0)
    # tent: 2 searches 4-5 days old; mug: 1 search 1 day old -> mug outranks with a 1-day half-life
    assert pop.recommend("x", ts("2026-03-07"), 2) == ["mug", "tent"]
    assert PopularityPolicy(log, CUTOFF, half_life_days=100).recommend("x", CUTOFF, 1) == ["tent"]


def test_recent_queries_are_the_last_distinct_searches_and_none_for_n_zero():
    log = EventLog(HAND)
    assert log.recent_queries("b", ts("2026-03-06"), 2) == ["mug", "camping lantern"]
    assert log.recent_queries("b", ts("2026-03-06"), 0) == []  # not every search ever made
    assert log.recent_queries("a", ts("2026-03-01 10:00"), 3) == []  # strictly before t


def test_coclick_follows_query_flow():
    log = EventLog(HAND)
    policy = CoClickPolicy(log, CUTOFF)
    # c's last search before 09:30 is "tent": successors sleeping bag and camping lantern (tie, by name)
    got = policy.recommend("c", ts("2026-03-06 09:30"), 3)
    assert got[:2] == ["camping lantern", "sleeping bag"]
    assert "tent" not in got  # the seed itself is not suggested back


def test_itemcf_maps_similar_items_to_their_queries():
    log = EventLog(HAND)
    policy = ItemCFPolicy(log, CUTOFF)
    # c clicked i7 (at 09:01, after the cut-off but before the request); i7 co-occurs with i8;
    # both were reached by searching "sleeping bag" before the cut-off
    assert policy.recommend("c", ts("2026-03-06 12:00"), 1) == ["sleeping bag"]


def test_logged_policy_replays_what_was_shown():
    imp = pd.DataFrame({"impression_id": [1, 1], "user_id": ["a", "a"], "impression_ts": [ts("2026-03-01 09:59")] * 2,
                        "position": [1, 0], "query": ["y", "x"]})
    fallback = PopularityPolicy(EventLog(HAND), CUTOFF)
    policy = LoggedPolicy(imp, fallback)
    assert policy.recommend("a", ts("2026-03-01 09:59"), 8) == ["x", "y"]
    assert policy.recommend("a", ts("2026-03-02"), 1) == fallback.recommend("a", ts("2026-03-02"), 1)


def test_fill_dedupes_and_excludes():
    assert fill(["a", "a", "b"], ["b", "c", "d"], 3, exclude={"c"}) == ["a", "b", "d"]


def test_baselines_never_read_the_future(tiny_world):
    """Lists at time t are identical whether or not the log holds anything from t on."""
    events = pd.read_parquet(tiny_world / "data" / "events.parquet")
    imp = pd.read_parquet(tiny_world / "data" / "hintq_impressions.parquet")
    sessions = pd.read_parquet(tiny_world / "data" / "sessions.parquet")
    cutoff = sessions["session_start"].max() - pd.Timedelta(days=4)
    later = sessions[sessions["session_start"] >= cutoff].sample(12, random_state=0)
    full = build_baselines(EventLog(events), imp, cutoff, ["legacy", "popularity", "popularity_incat",
                                                          "coclick", "itemcf"])
    for user, t in zip(later["user_id"], later["session_start"]):
        past = EventLog(events[events["event_ts"] < t])
        truncated = build_baselines(past, imp[imp["impression_ts"] <= t], cutoff,
                                    ["legacy", "popularity", "popularity_incat", "coclick", "itemcf"])
        for a, b in zip(full, truncated):
            assert a.recommend(user, t, 8) == b.recommend(user, t, 8), a.name


@pytest.mark.parametrize("name", ["popularity", "coclick", "itemcf", "popularity_incat"])
def test_every_baseline_returns_k_distinct(tiny_world, name):
    events = pd.read_parquet(tiny_world / "data" / "events.parquet")
    imp = pd.read_parquet(tiny_world / "data" / "hintq_impressions.parquet")
    cutoff = events["event_ts"].max() - pd.Timedelta(days=3)
    (policy,) = build_baselines(EventLog(events), imp, cutoff, [name])
    for user in events["user_id"].unique()[:20]:
        got = policy.recommend(user, events["event_ts"].max(), 8)
        assert len(got) == 8 and len(set(got)) == 8
    assert policy.recommend("never-seen", cutoff, 8)  # unknown users still get a list
