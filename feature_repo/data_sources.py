"""Batch sources over the parquet tables `aigq simulate`/`aigq ingest` build under
$AIGQ_HOME/features, and push sources for fresh rows (session events, nearline results)."""

import os
from pathlib import Path

from feast import FileSource, PushSource

FEATURES_DIR = Path(os.environ.get("AIGQ_HOME") or Path(__file__).resolve().parent.parent / "artifacts") / "features"


def parquet_source(table: str) -> FileSource:
    return FileSource(
        name=f"{table}_source", path=str(FEATURES_DIR / f"{table}.parquet"), timestamp_field="event_timestamp"
    )


user_profile_source = parquet_source("user_profile")
user_interests_source = parquet_source("user_interests")
query_stats_source = parquet_source("query_stats")

session_events_push = PushSource(name="session_events_push", batch_source=parquet_source("session_features"))
direct_candidates_push = PushSource(name="direct_candidates_push", batch_source=parquet_source("direct_candidates"))
think_mappings_push = PushSource(name="think_mappings_push", batch_source=parquet_source("think_mappings"))
