"""Feature-store access for every layer: the Feast repo with the chosen config (embedded SQLite +
DuckDB, or Redis + PostgreSQL), opened by `open_store()`; consumers ask for feature services by
name (the constants below, versioned: a changed service is a new name) and never import the
definition files. feast is imported inside `open_store` (about 7 s)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import sqlalchemy as sa

from core.config import PROJECT_ROOT, aigq_home
from core.errors import AigqError

FEATURE_REPO = PROJECT_ROOT / "feature_repo"
STORES = {"sqlite": "feature_store.yaml", "redis_postgres": "feature_store.redis_postgres.yaml"}
DEFAULT_PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/aigq"
DEFAULT_REDIS = "127.0.0.1:6379"

# the feature services, by the name each consumer asks for
DIRECT_SERVICE = "direct_generation_v1"  # the Direct generator's prompt (training, nearline, evaluation)
CTR_SERVICE = "ctr_ranking_v1"  # the CTR ranker's inputs (training frames)
HINTQ_SERVICE = "hintq_online_v2"  # the online path: user context + the nearline Direct list + ranker counts
THINK_SERVICE = "think_candidates_v1"  # Think mappings by trigger
# a `trigger` entity is a recent search as typed, or an engaged category as CATEGORY_PREFIX + its id
CATEGORY_PREFIX = "category:"


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
        redis.Redis(
            host=host,
            port=int(port or 6379),
            db=int(params.get("db", 0)),
            password=params.get("password"),
            socket_connect_timeout=2,
        ).ping()
    except (redis.exceptions.RedisError, OSError, ValueError) as e:
        raise AigqError(
            f"cannot reach Redis at {hostport} (online store of {yaml_path.name}, AIGQ_REDIS): {e}"
        ) from None


def ensure_postgres_database(url: str, yaml_path: Path) -> None:
    """Create the registry database if it does not exist yet."""

    target = sa.engine.make_url(url)
    admin = sa.create_engine(
        target.set(database="postgres"), isolation_level="AUTOCOMMIT", connect_args={"connect_timeout": 3}
    )
    try:
        with admin.connect() as conn:
            exists = conn.execute(
                sa.text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": target.database}
            ).scalar()
            if not exists:
                conn.execute(sa.text(f'CREATE DATABASE "{target.database}"'))
    except sa.exc.OperationalError as e:
        reason = str(e.orig).strip().splitlines()[0] if e.orig else str(e)
        raise AigqError(
            f"cannot reach PostgreSQL at {target.host}:{target.port} (registry of "
            f"{yaml_path.name}, AIGQ_PG_REGISTRY_URL): {reason}"
        ) from None
    finally:
        admin.dispose()


def open_store(store: str = "sqlite"):
    """A FeatureStore over feature_repo/ with the chosen config (feast imported here: ~7 s)."""
    yaml_path = prepare_environment(store)
    from feast import FeatureStore

    return FeatureStore(repo_path=str(FEATURE_REPO), fs_yaml_file=yaml_path)


def online_features(fs, service: str, entity_rows: list[dict]) -> dict:
    return fs.get_online_features(features=fs.get_feature_service(service), entity_rows=entity_rows).to_dict()
