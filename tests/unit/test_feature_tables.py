import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from pipelines.feature_tables import build_feature_tables, session_features_table, window_lists

from tests.handmade import LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS, ts, write_logs


@pytest.fixture(scope="module")
def tables(tmp_path_factory):
    root = tmp_path_factory.mktemp("ft")
    write_logs(root / "data", LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS)
    build_feature_tables(root / "data", root / "features")
    return {
        name: pd.read_parquet(root / "features" / f"{name}.parquet")
        for name in (
            "user_profile",
            "user_interests",
            "query_stats",
            "session_features",
            "direct_candidates",
            "think_mappings",
        )
    }


def test_window_lists_most_recent_first_within_group():
    values = pa.array(list("abcdef"))
    out = window_lists(values, np.array([0, 0, 3, 3]), np.array([2, 3, 3, 6]), 2)
    assert out.to_pylist() == [["b", "a"], ["c", "b"], [], ["f", "e"]]


def test_interest_snapshots_by_hand(tables):
    ui = tables["user_interests"].set_index(["user_id", "event_timestamp"])
    # end of day 1: one search + one click on c1
    day1 = ui.loc[("u1", ts("2026-03-02"))]
    assert list(day1["top_categories_1d"]) == ["c1"] and list(day1["top_category_weights_1d"]) == [1.0]
    assert (day1["n_search_1d"], day1["n_click_1d"], day1["n_events_30d"]) == (1, 1, 2)
    assert list(day1["recent_queries"]) == ["red dress"]
    # end of day 2: nothing that day, the 7-day window still remembers day 1
    day2 = ui.loc[("u1", ts("2026-03-03"))]
    assert list(day2["top_categories_1d"]) == [] and day2["n_search_1d"] == 0
    assert list(day2["top_categories_7d"]) == ["c1"]
    # end of day 3: tents (2 searches + purchase 5 = 7) outweigh the dress (2)
    day3 = ui.loc[("u1", ts("2026-03-04"))]
    assert list(day3["top_categories_7d"]) == ["c2", "c1"]
    assert np.allclose(day3["top_category_weights_7d"], [7 / 9, 2 / 9])
    assert list(day3["recent_queries"]) == ["tent", "tent", "red dress"]
    assert day3["n_purchase_7d"] == 1
    # u2 is active from day 2 only
    assert ("u2", ts("2026-03-02")) not in ui.index


def test_session_state_rows_by_hand(tables):
    sf = tables["session_features"]
    s2 = sf[sf["session_id"] == 2].sort_values("event_timestamp")
    assert [list(x) for x in s2["session_queries"]] == [["tent"], ["tent", "tent"], ["tent", "tent"]]
    assert list(s2["session_event_count"]) == [1, 2, 3]
    assert list(sf[sf["session_id"] == 1]["session_categories"].iloc[-1]) == ["c1", "c1"]


def test_query_stats_by_hand(tables):
    qs = tables["query_stats"].set_index(["query", "event_timestamp"])
    tent = qs.loc[("tent", ts("2026-03-04"))]
    assert (tent["q_n_search_30d"], tent["q_impressions_30d"], tent["q_clicks_30d"]) == (2, 1, 1)
    assert tent["query_category_id"] == "c2" and tent["query_domain"] == "sports"
    # smoothed CTR stays strictly inside (0, 1)
    assert 0 < qs["q_ctr_30d"].min() and qs["q_ctr_30d"].max() < 1


def test_nearline_tables_start_empty_and_survive_a_rebuild(tmp_path):
    write_logs(tmp_path / "data", LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS)
    build_feature_tables(tmp_path / "data", tmp_path / "features")
    path = tmp_path / "features" / "direct_candidates.parquet"
    assert pd.read_parquet(path).empty
    path.write_bytes(b"nearline results")
    build_feature_tables(tmp_path / "data", tmp_path / "features")
    assert path.read_bytes() == b"nearline results"


def test_session_table_is_order_independent(tables, tmp_path):
    write_logs(tmp_path / "data", list(reversed(LEAKAGE_EVENTS)))
    shuffled = session_features_table(pd.read_parquet(tmp_path / "data" / "events.parquet")).to_pandas()
    ordered = tables["session_features"]
    key = ["session_id", "event_timestamp"]
    a = shuffled.sort_values(key).reset_index(drop=True)
    b = ordered.sort_values(key).reset_index(drop=True)
    assert [list(x) for x in a["session_queries"]] == [list(x) for x in b["session_queries"]]


def test_per_user_partitions_give_the_same_tables(tables, tmp_path):
    """One user per partition (the memory-bounded path) writes the same rows as one partition."""
    write_logs(tmp_path / "data", LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS)
    build_feature_tables(tmp_path / "data", tmp_path / "features", engine="local", partition_users=1)
    for name, whole in tables.items():
        parted = pd.read_parquet(tmp_path / "features" / f"{name}.parquet")
        key = ["session_id", "event_timestamp"] if name == "session_features" else list(whole.columns[:2])
        a, b = (f.sort_values(key).reset_index(drop=True) for f in (whole, parted))
        assert a.astype(str).equals(b.astype(str)), name
    assert not (tmp_path / "features" / ".parts").exists()
