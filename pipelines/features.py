"""`aigq features apply|materialize|push-sessions|frames`: the Feast repo from Python.

Consumers get a `FeatureStore` from `open_store()` and ask for feature services by name; nobody
imports the definition files. `--store redis_postgres` runs the same definitions with the
registry on PostgreSQL and the online store on Redis.
"""

from __future__ import annotations

import os
import sys
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from core.config import option
from core.errors import AigqError
from core.feature_store import FEATURE_REPO, STORES, data_dir, features_dir, open_store, prepare_environment
from pipelines.feature_tables import FEATURE_TABLES, PARTITION_USERS, build_feature_tables, session_state_rows


@dataclass
class FeaturesConfig:
    store: str = option(
        os.environ.get("AIGQ_FEATURE_STORE", "sqlite"),
        f"feature store config: {' | '.join(STORES)} (env AIGQ_FEATURE_STORE)",
    )
    push_since: str = option(
        "", "push-sessions: replay events at or after this ISO time (default: the last 24 h of logs)"
    )
    push_batch_rows: int = option(2000, "push-sessions: rows per push call")
    engine: str = option("", "build: local | ray (default $AIGQ_ENGINE or local; `aigq --engine`)")
    partition_users: int = option(PARTITION_USERS, "build: users per partition of the per-user tables (memory bound)")


def require_feature_tables() -> None:
    missing = [t for t in FEATURE_TABLES if not (features_dir() / f"{t}.parquet").exists()]
    if missing:
        raise AigqError(
            f"feature tables missing under {features_dir()} ({', '.join(missing)}): "
            "run `aigq simulate` or `aigq ingest DIR` first"
        )


@contextmanager
def _inside_repo():
    """Feast imports the definition files as top-level modules (`from entities import user`),
    as `feast apply` run inside feature_repo/ would; apply_total also chdirs there."""

    cwd, path = os.getcwd(), list(sys.path)
    sys.path.insert(0, str(FEATURE_REPO))
    # definitions read $AIGQ_HOME at import: drop cached imports from an earlier apply
    for name, module in list(sys.modules.items()):
        if str(getattr(module, "__file__", "") or "").startswith(str(FEATURE_REPO)):
            del sys.modules[name]
    try:
        yield
    finally:
        os.chdir(cwd)
        sys.path[:] = path


def apply(store: str = "sqlite") -> None:
    """`feast apply` on feature_repo/ (registers definitions, creates online tables)."""
    require_feature_tables()
    yaml_path = prepare_environment(store)
    from feast.repo_config import load_repo_config
    from feast.repo_operations import apply_total

    config = load_repo_config(FEATURE_REPO, yaml_path)
    with _inside_repo():
        apply_total(config, FEATURE_REPO, skip_source_validation=False)


def source_time_range() -> tuple[datetime, datetime]:
    """[earliest, latest] event_timestamp over the batch tables (for a full materialization)."""
    lo, hi = None, None
    for table in FEATURE_TABLES:
        col = pq.read_table(features_dir() / f"{table}.parquet", columns=["event_timestamp"]).column(0)
        if len(col) == 0:
            continue

        mm = pc.min_max(col)
        lo = mm["min"].as_py() if lo is None else min(lo, mm["min"].as_py())
        hi = mm["max"].as_py() if hi is None else max(hi, mm["max"].as_py())
    if lo is None:
        raise AigqError(f"no feature rows under {features_dir()}: run `aigq simulate` or `aigq ingest DIR`")
    return lo, hi


def materialize(store: str = "sqlite", incremental: bool = False) -> dict:
    """Load the newest row per entity into the online store: the whole source range (default),
    or `materialize-incremental` up to the latest source row."""
    require_feature_tables()
    fs = open_store(store)
    lo, hi = source_time_range()
    end = hi + timedelta(microseconds=1)
    if incremental:
        fs.materialize_incremental(end_date=end)
    else:
        fs.materialize(start_date=lo, end_date=end)
    return {"start": lo.isoformat(), "end": end.isoformat()}


def push_sessions(store: str = "sqlite", since: str = "", batch_rows: int = 2000) -> int:
    """Replay logged session events as pushes into the online store (what a live event stream
    would do); the rows come from the same function as the offline session table."""
    from feast.data_source import PushMode

    events = pd.read_parquet(
        data_dir() / "events.parquet",
        columns=["session_id", "user_id", "event_ts", "event_type", "query", "category_id"],
    )
    if since:
        try:
            start = pd.Timestamp(since, tz="UTC") if pd.Timestamp(since).tzinfo is None else pd.Timestamp(since)
        except ValueError:
            raise AigqError(f"--set push_since={since!r}: not an ISO date/time") from None
    else:
        start = events["event_ts"].max() - pd.Timedelta(days=1)
    # whole sessions that touch the window, so session state starts from the session's beginning
    sessions = events.loc[events["event_ts"] >= start, "session_id"].unique()
    ev = events[events["session_id"].isin(sessions)].sort_values(["session_id", "event_ts"], kind="stable")
    rows = session_state_rows(ev).to_pandas()
    rows = rows[rows["event_timestamp"] >= start].sort_values("event_timestamp", kind="stable")
    fs = open_store(store)
    for i in tqdm(range(0, len(rows), batch_rows), desc="push session events", unit="batch"):
        fs.push("session_events_push", rows.iloc[i : i + batch_rows], to=PushMode.ONLINE)
    return len(rows)


def rebuild_feature_tables(engine: str = "", partition_users: int = PARTITION_USERS) -> dict[str, int]:
    return build_feature_tables(data_dir(), features_dir(), engine, partition_users)
