"""`aigq ingest` of a minimal search log (user_id, ts, query; optional columns): derived tables,
sessions, categories, and errors that name the file, column and row."""

from pathlib import Path

import pandas as pd
import pytest

from pipelines import ingest
from pipelines.search_log import SearchLogError, read_search_log, to_tables

EXAMPLE = Path(__file__).parents[2] / "examples" / "search_log.csv"


def test_the_documented_example_is_taken_in_with_derived_tables(aigq_home):
    counts = ingest.main(ingest.IngestConfig(source_dir=str(EXAMPLE)))
    assert counts["hintq_impressions"] == 0 and counts["users"] == 4 and counts["items"] == 1
    data = aigq_home / "data"
    events = pd.read_parquet(data / "events.parquet")
    searches = events[events["event_type"] == "search"]
    assert len(searches) == 9 and (events["event_type"] == "click").sum() == 1
    # one normaliser: the full-width, upper-case and spaced variants are the same query
    assert searches.loc[searches["user_id"] == "bob", "query"].tolist() == ["pet shampoo", "dog leash", "pet shampoo"]
    assert "wireless earbuds" in set(searches["query"]) and "连衣裙" in set(searches["query"])
    queries = pd.read_parquet(data / "queries.parquet").set_index("query")
    assert queries.loc["wireless earbuds", "category_id"] == "earbuds"  # head word when no category
    assert queries.loc["running shoes", "category_id"] == "shoes"  # the log's own category
    users = pd.read_parquet(data / "users.parquet")
    assert users["age_band"].isna().all() and users["city_tier"].isna().all()  # no invented profile
    sessions = pd.read_parquet(data / "sessions.parquet")
    # alice: her own session ids s1, s2 (the click joins s1); bob, chen, dana: 30-minute gaps
    assert sessions.groupby("user_id").size().to_dict() == {"alice": 2, "bob": 2, "chen": 1, "dana": 1}
    assert str(events["event_ts"].dtype) == "datetime64[us, UTC]"
    assert events.loc[events["user_id"] == "bob", "event_ts"].min().hour == 11  # +01:00 -> UTC


def test_sessions_split_after_thirty_minutes_of_silence(tmp_path):
    path = tmp_path / "search_log.csv"
    path.write_text(
        "user_id,ts,query\nu,2026-11-02T08:00:00Z,tent\nu,2026-11-02T08:29:00Z,stove\n"
        "u,2026-11-02T09:00:00Z,lamp\nv,2026-11-02T09:01:00Z,lamp\n"
    )
    tables = to_tables(read_search_log(path))
    events = tables["events"].to_pandas()
    assert events.groupby("session_id")["query"].apply(list).tolist() == [["tent", "stove"], ["lamp"], ["lamp"]]


@pytest.mark.parametrize(
    "text, needle",
    [
        ("user_id,query\nu,tent\n", "missing column(s) ['ts']"),
        ("user_id,ts,query,mood\nu,2026-11-02T08:00:00Z,tent,happy\n", "unknown column(s) ['mood']"),
        ("user_id,ts,query\nu,2026-11-02T08:00:00Z,tent\nu,2026-11-02 09:00,stove\n", "column 'ts' row 1"),
        ("user_id,ts,query\nu,2026-11-02T08:00:00Z,tent\nu,yesterday,stove\n", "'yesterday' is not a timestamp"),
        ("user_id,ts,query\nu,2026-11-02T08:00:00Z,tent\n,2026-11-02T08:00:00Z,stove\n", "'user_id' row 1: empty"),
        ("user_id,ts,query,city_tier\nu,2026-11-02T08:00:00Z,tent,big\n", "'city_tier' row 0: 'big'"),
        ("user_id,ts,query\n", "no rows"),
    ],
)
def test_a_bad_search_log_names_file_column_and_row(tmp_path, aigq_home, text, needle):
    path = tmp_path / "search_log.csv"
    path.write_text(text)
    with pytest.raises(SearchLogError) as e:
        ingest.main(ingest.IngestConfig(source_dir=str(path)))
    assert str(path) in str(e.value) and needle in str(e.value)
    assert not (aigq_home / "data").exists()  # a failed ingest writes nothing


def test_a_folder_holding_only_a_search_log_is_read_as_one(tmp_path, aigq_home):
    folder = tmp_path / "logs"
    folder.mkdir()
    (folder / "search_log.csv").write_text(EXAMPLE.read_text(encoding="utf-8"), encoding="utf-8")
    assert ingest.main(ingest.IngestConfig(source_dir=str(folder)))["events"] == 10


def test_without_impressions_the_ranker_learns_from_next_searches(aigq_home, tmp_path):
    from pipelines.training_frames import next_search_impressions

    from tests.search_log_data import write_search_log

    ingest.main(ingest.IngestConfig(source_dir=str(write_search_log(tmp_path / "search_log.csv"))))
    samples = next_search_impressions(aigq_home / "data")
    sessions = pd.read_parquet(aigq_home / "data" / "sessions.parquet").set_index("session_id")
    first_day = sessions["session_start"].min().floor("D")
    assert (samples["impression_ts"] >= first_day + pd.Timedelta(days=1)).all()  # candidates need a past
    assert samples["clicked"].any() and not samples["clicked"].all()
    assert samples.groupby("impression_id")["position"].apply(lambda p: sorted(p) == list(range(len(p)))).all()
    events = pd.read_parquet(aigq_home / "data" / "events.parquet")
    searched = events.groupby("session_id")["query"].agg(set)
    positives = samples[samples["clicked"]]
    assert all(q in searched[s] for s, q in zip(positives["impression_id"], positives["query"]))


def test_train_ctr_names_the_real_cause_when_there_is_nothing_to_learn(aigq_home):
    from core.errors import AigqError
    from pipelines import train_ctr

    with pytest.raises(AigqError, match="no HintQ impressions and no session after its first day"):
        train_ctr.time_split(pd.DataFrame(columns=["event_timestamp", "clicked"]), 3.0)
