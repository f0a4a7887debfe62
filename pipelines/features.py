"""`aigq features apply|materialize|push-sessions|frames`: the Feast repo from Python.

Consumers get a `FeatureStore` from `open_store()` and ask for feature services by name; nobody
imports the definition files. `--store redis_postgres` runs the same definitions with the
registry on PostgreSQL and the online store on Redis.
"""

from __future__ import annotations

import os
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
from tqdm import tqdm

from pipelines.config import PROJECT_ROOT, aigq_home, option
from pipelines.errors import AigqError
from pipelines.feature_tables import FEATURE_TABLES, build_feature_tables, session_state_rows

FEATURE_REPO = PROJECT_ROOT / "feature_repo"
STORES = {"sqlite": "feature_store.yaml", "redis_postgres": "feature_store.redis_postgres.yaml"}
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/aigq"
DEFAULT_REDIS = "127.0.0.1:6379"


@dataclass
class FeaturesConfig:
    store: str = option(os.environ.get("AIGQ_FEATURE_STORE", "sqlite"),
                        f"feature store config: {' | '.join(STORES)} (env AIGQ_FEATURE_STORE)")
    push_since: str = option("", "push-sessions: replay events at or after this ISO time (default: the last 24 h of logs)")
    push_batch_rows: int = option(2000, "push-sessions: rows per push call")


def data_dir() -> Path:
    return aigq_home() / "data"


def features_dir() -> Path:
    return aigq_home() / "features"


def store_yaml(store: str) -> Path:
    if store not in STORES:
        raise AigqError(f"unknown feature store {store!r}; choose one of {', '.join(STORES)}")
    return FEATURE_REPO / STORES[store]


def prepare_environment(store: str) -> Path:
    """Set the variables the YAML files read, create local folders, check remote services."""
    import logging

    # Feast warns on every config load that thread-mode registry caching may lag the
    # MATERIALIZING state; we choose that trade-off on purpose (refreshes off the request path).
    logging.getLogger("feast.repo_config").setLevel(logging.ERROR)
    yaml_path = store_yaml(store)
    os.environ["AIGQ_HOME"] = str(aigq_home())
    (aigq_home() / "feast").mkdir(parents=True, exist_ok=True)
    if store == "redis_postgres":
        os.environ.setdefault("AIGQ_PG_REGISTRY_URL", DEFAULT_PG_URL)
        os.environ.setdefault("AIGQ_REDIS", DEFAULT_REDIS)
        check_redis(os.environ["AIGQ_REDIS"], yaml_path)
        ensure_postgres_database(os.environ["AIGQ_PG_REGISTRY_URL"], yaml_path)
    return yaml_path


def check_redis(connection_string: str, yaml_path: Path) -> None:
    import redis

    hostport = connection_string.split(",")[0]
    host, _, port = hostport.partition(":")
    params = dict(p.split("=", 1) for p in connection_string.split(",")[1:] if "=" in p)
    try:
        redis.Redis(host=host, port=int(port or 6379), db=int(params.get("db", 0)),
                    password=params.get("password"), socket_connect_timeout=2).ping()
    except (redis.exceptions.RedisError, OSError, ValueError) as e:
        raise AigqError(f"cannot reach Redis at {hostport} (online store of {yaml_path.name}, "
                        f"AIGQ_REDIS): {e}") from None


def ensure_postgres_database(url: str, yaml_path: Path) -> None:
    """Create the registry database if it does not exist yet."""
    import sqlalchemy as sa

    target = sa.engine.make_url(url)
    admin = sa.create_engine(target.set(database="postgres"), isolation_level="AUTOCOMMIT",
                             connect_args={"connect_timeout": 3})
    try:
        with admin.connect() as conn:
            exists = conn.execute(sa.text("SELECT 1 FROM pg_database WHERE datname = :n"),
                                  {"n": target.database}).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    except sa.exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise AigqError(f"cannot reach PostgreSQL at {target.host}:{target.port} (registry of "
                        f"{yaml_path.name}, AIGQ_PG_REGISTRY_URL): {reason}") from None
    finally:
        admin.dispose()


def open_store(store: str = "sqlite"):
    """A FeatureStore over feature_repo/ with the chosen config (feast imported here: ~7 s)."""
    yaml_path = prepare_environment(store)
    from feast import FeatureStore

    return FeatureStore(repo_path=str(FEATURE_REPO), fs_yaml_file=yaml_path)


def require_feature_tables() -> None:
    missing = [t for t in FEATURE_TABLES if not (features_dir() / f"{t}.parquet").exists()]
    if missing:
        raise AigqError(f"feature tables missing under {features_dir()} ({', '.join(missing)}): "
                        "run `aigq simulate` or `aigq ingest DIR` first")


@contextmanager
def _inside_repo():
    """Feast imports the definition files as top-level modules (`from entities import user`),
    as `feast apply` run inside feature_repo/ would; apply_total also chdirs there."""
    import sys

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
        import pyarrow.compute as pc

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

    events = pd.read_parquet(data_dir() / "events.parquet",
                             columns=["session_id", "user_id", "event_ts", "event_type", "query", "category_id"])
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
        fs.push("session_events_push", rows.iloc[i:i + batch_rows], to=PushMode.ONLINE)
    return len(rows)


def online_features(fs, service: str, entity_rows: list[dict]) -> dict:
    return fs.get_online_features(features=fs.get_feature_service(service), entity_rows=entity_rows).to_dict()


def rebuild_feature_tables() -> dict[str, int]:
    return build_feature_tables(data_dir(), features_dir())

