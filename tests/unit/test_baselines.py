import pandas as pd
import pytest

from core.history import EventLog
from pipelines.baselines import (
    BASELINES,
    Catalogue,
    CoClickPolicy,
    ContentPopularityPolicy,
    ItemCFPolicy,
    LoggedPolicy,
    MFPolicy,
    PopularityPolicy,
    SegmentPopularityPolicy,
    build_baselines,
    fill,
)

from tests.handmade import ts


def _events(rows):
    return pd.DataFrame(
        [
            {
                "event_id": i,
                "session_id": s,
                "user_id": u,
                "event_ts": ts(t),
                "event_type": e,
                "query": q,
                "category_id": c,
                "item_id": it,
            }
            for i, (s, u, t, e, q, c, it) in enumerate(rows)
        ]
    )


HAND = _events(
    [
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
    ]
)
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


def test_content_popularity_ranks_the_users_attribute_words_up():
    """d typed "navy oxford shirt" and clicked a navy item; in Shirts, navy queries come first
    for d, even one nobody searched yet; a user with no words gets plain in-category popularity."""
    events = _events(
        [
            (1, "e", "2026-03-01 10:00", "search", "white shirt", "c1", None),
            (2, "f", "2026-03-01 11:00", "search", "white shirt", "c1", None),
            (3, "f", "2026-03-02 11:00", "search", "shirt", "c1", None),
            (4, "d", "2026-03-06 10:00", "search", "navy oxford shirt", "c1", None),
            (4, "d", "2026-03-06 10:01", "click", "navy oxford shirt", "c1", "i1"),
        ]
    )
    catalogue = Catalogue(
        users=pd.DataFrame(),
        items=pd.DataFrame(
            {
                "item_id": ["i1"],
                "color": ["navy"],
                "material": ["cotton"],
                "style": ["casual"],
                "audience": [""],
                "brand": ["kalo"],
            }
        ),
        queries=pd.DataFrame(
            {
                "query": ["shirt", "white shirt", "navy shirt", "navy oxford shirt", "linen shirt"],
                "ptype": ["shirt", "shirt", "shirt", "oxford shirt", "shirt"],
                "category_id": ["c1"] * 5,
            }
        ),
    )
    policy = ContentPopularityPolicy(EventLog(events), CUTOFF, catalogue)
    assert policy.name == "popularity_content"
    got = policy.recommend("d", ts("2026-03-07"), 2)
    assert set(got) == {"navy shirt", "navy oxford shirt"}  # "navy shirt" was never searched
    assert policy.recommend("e", ts("2026-03-02"), 1) == ["white shirt"]


def test_segment_popularity_serves_a_cold_user_their_segments_queries():
    users = pd.DataFrame(
        {
            "user_id": ["a", "b", "c", "z"],
            "age_band": ["18-24", "55-64", "55-64", "18-24"],
            "gender": ["F", "M", "M", "F"],
            "city_tier": [1, 2, 2, 3],
        }
    )
    policy = SegmentPopularityPolicy(EventLog(HAND), CUTOFF, Catalogue(users=users), min_support=0.1)
    assert policy.segment("z") == "18-24|F"  # no one else in tier 3: backs off to age band x gender
    assert policy.name == "popularity_segment"
    # z has no events; a is in z's segment (18-24, F) and searched tent and sleeping bag
    assert set(policy.recommend("z", CUTOFF, 2)) == {"tent", "sleeping bag"}
    assert PopularityPolicy(EventLog(HAND), CUTOFF).recommend("z", CUTOFF, 2) == ["tent", "mug"]


def test_mf_folds_in_the_users_searches_at_request_time():
    events = _events(
        [
            (i, u, f"2026-03-0{1 + i % 5} 10:0{j}", "search", q, "c1", None)
            for i, u in enumerate(["a", "b", "c", "d", "e", "f"] * 3)
            for j, q in enumerate(["tent", "sleeping bag"] if u in "abc" else ["mug", "kettle"])
        ]
    )
    late = _events([(99, "g", "2026-03-06 10:00", "search", "tent", "c1", None)])
    log = EventLog(pd.concat([events, late], ignore_index=True))
    policy = MFPolicy(log, CUTOFF, fallback=PopularityPolicy(log, CUTOFF), factors=4, iterations=10)
    # g appears only after the cut-off: the model folds in "tent" and suggests its partner first
    assert set(policy.recommend("g", ts("2026-03-07"), 2)) == {"tent", "sleeping bag"}
    assert policy.recommend("never-seen", CUTOFF, 2) == PopularityPolicy(log, CUTOFF).recommend("never-seen", CUTOFF, 2)


def test_logged_policy_replays_what_was_shown():
    imp = pd.DataFrame(
        {
            "impression_id": [1, 1],
            "user_id": ["a", "a"],
            "impression_ts": [ts("2026-03-01 09:59")] * 2,
            "position": [1, 0],
            "query": ["y", "x"],
        }
    )
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
    catalogue = Catalogue.load(tiny_world / "data")
    full = build_baselines(EventLog(events), imp, cutoff, BASELINES, catalogue)
    for user, t in zip(later["user_id"], later["session_start"]):
        past = EventLog(events[events["event_ts"] < t])
        truncated = build_baselines(past, imp[imp["impression_ts"] <= t], cutoff, BASELINES, catalogue)
        for a, b in zip(full, truncated):
            assert a.recommend(user, t, 8) == b.recommend(user, t, 8), a.name


@pytest.mark.parametrize("name", [b for b in BASELINES if b != "legacy"])
def test_every_baseline_returns_k_distinct(tiny_world, name):
    events = pd.read_parquet(tiny_world / "data" / "events.parquet")
    imp = pd.read_parquet(tiny_world / "data" / "hintq_impressions.parquet")
    cutoff = events["event_ts"].max() - pd.Timedelta(days=3)
    (policy,) = build_baselines(EventLog(events), imp, cutoff, [name], Catalogue.load(tiny_world / "data"))
    assert policy.name == name
    for user in events["user_id"].unique()[:20]:
        got = policy.recommend(user, events["event_ts"].max(), 8)
        assert len(got) == 8 and len(set(got)) == 8
    assert policy.recommend("never-seen", cutoff, 8)  # unknown users still get a list
