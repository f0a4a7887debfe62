import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from pipelines import ingest
from pipelines.ingest import IngestError

from tests.handmade import LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS, write_logs


@pytest.fixture
def logs_dir(tmp_path):
    return write_logs(tmp_path / "logs", LEAKAGE_EVENTS, LEAKAGE_IMPRESSIONS)


def _rewrite(path, mutate):
    df = pd.read_parquet(path)
    df = mutate(df)
    pq.write_table(pa.Table.from_pandas(df, preserve_index=False), path)


def test_valid_logs_are_taken_in(logs_dir, aigq_home):
    counts = ingest.main(ingest.IngestConfig(source_dir=str(logs_dir)))
    assert counts["events"] == len(LEAKAGE_EVENTS)
    assert pq.read_table(aigq_home / "data" / "events.parquet").num_rows == len(LEAKAGE_EVENTS)


def test_query_text_is_normalised_on_the_way_in(logs_dir, aigq_home):
    _rewrite(logs_dir / "events.parquet", lambda df: df.assign(query=df["query"].str.upper() + "  "))
    ingest.main(ingest.IngestConfig(source_dir=str(logs_dir)))
    assert set(pd.read_parquet(aigq_home / "data" / "events.parquet")["query"]) == {"red dress", "tent", "mug"}


def test_timestamps_in_other_units_and_zones_are_converted(logs_dir, aigq_home):
    _rewrite(
        logs_dir / "events.parquet",
        lambda df: df.assign(
            event_ts=df["event_ts"].dt.tz_convert("Asia/Shanghai").astype("datetime64[ns, Asia/Shanghai]")
        ),
    )
    ingest.main(ingest.IngestConfig(source_dir=str(logs_dir)))
    out = pq.read_table(aigq_home / "data" / "events.parquet")
    assert str(out.schema.field("event_ts").type) == "timestamp[us, tz=UTC]"
    assert out.column("event_ts")[0].as_py().isoformat() == "2026-03-01T10:00:00+00:00"


@pytest.mark.parametrize(
    "table,mutate,needle",
    [
        ("events", lambda df: df.drop(columns=["event_ts"]), "events.parquet: missing column(s) ['event_ts']"),
        (
            "events",
            lambda df: df.assign(event_type=["search", "click", "search", "search", "refund", "search"]),
            "events.parquet: column 'event_type' row 4: 'refund' is not one of",
        ),
        (
            "users",
            lambda df: df.assign(city_tier=["one", "two"]),
            "users.parquet: column 'city_tier' has type string, expected int64",
        ),
        (
            "events",
            lambda df: df.assign(user_id=["u1", "u1", None, "u1", "u1", "u2"]),
            "events.parquet: column 'user_id' row 2: null in a required column",
        ),
        (
            "events",
            lambda df: df.assign(user_id=["u1", "u1", "u1", "u9", "u1", "u2"]),
            "events.parquet: column 'user_id' row 3: 'u9' not found in users.user_id",
        ),
        (
            "events",
            lambda df: df.assign(event_ts=df["event_ts"].dt.tz_localize(None)),
            "events.parquet: column 'event_ts' has naive timestamps",
        ),
        (
            "users",
            lambda df: df.assign(user_id=["u1", "u1"]),
            "users.parquet: column 'user_id' row 0: duplicate id 'u1'",
        ),
        (
            "hintq_impressions",
            lambda df: df.assign(position=[0, -3]),
            "hintq_impressions.parquet: column 'position' row 1: negative position",
        ),
    ],
)
def test_bad_logs_name_file_column_and_row(logs_dir, aigq_home, table, mutate, needle):
    _rewrite(logs_dir / f"{table}.parquet", mutate)
    with pytest.raises(IngestError) as e:
        ingest.main(ingest.IngestConfig(source_dir=str(logs_dir)))
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_and_malformed_files(logs_dir, aigq_home):
    (logs_dir / "items.parquet").unlink()
    with pytest.raises(IngestError, match=r"items.parquet: missing \(expected table 'items'"):
        ingest.validate_dir(logs_dir)
    (logs_dir / "items.parquet").write_bytes(b"this is not parquet")
    with pytest.raises(IngestError, match="items.parquet: not a readable parquet file"):
        ingest.validate_dir(logs_dir)
    with pytest.raises(IngestError, match="not a directory"):
        ingest.validate_dir(logs_dir / "nope")


def test_a_failed_ingest_changes_nothing(logs_dir, aigq_home):
    ingest.main(ingest.IngestConfig(source_dir=str(logs_dir)))
    before = (aigq_home / "data" / "events.parquet").read_bytes()
    _rewrite(logs_dir / "events.parquet", lambda df: df.assign(event_type="refund"))
    with pytest.raises(IngestError):
        ingest.main(ingest.IngestConfig(source_dir=str(logs_dir)))
    assert (aigq_home / "data" / "events.parquet").read_bytes() == before
