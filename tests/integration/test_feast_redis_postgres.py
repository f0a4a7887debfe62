"""The same feature repo on the scale-out column: registry on PostgreSQL, online store on Redis."""

import shutil
import subprocess
import sys
import uuid
from pathlib import Path

import pandas as pd
import pytest

from core import feature_store
from core.errors import AigqError
from core.feature_store import HINTQ_SERVICE
from pipelines import features

from tests.conftest import POSTGRES, REDIS, require_services

REDIS_TEST_DB = 7


@pytest.fixture
def scaleout(tiny_world, tmp_path, monkeypatch):
    require_services(POSTGRES, REDIS)
    import redis
    import sqlalchemy as sa

    home = tmp_path / "home"
    shutil.copytree(tiny_world, home)
    db = f"aigq_test_{uuid.uuid4().hex[:8]}"
    monkeypatch.setenv("AIGQ_HOME", str(home))
    monkeypatch.setenv("AIGQ_PG_REGISTRY_URL", f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}")
    monkeypatch.setenv("AIGQ_REDIS", f"127.0.0.1:6379,db={REDIS_TEST_DB}")
    client = redis.Redis(host="127.0.0.1", port=6379, db=REDIS_TEST_DB)
    client.flushdb()
    yield home
    client.flushdb()
    admin = sa.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)'))
    admin.dispose()


def test_apply_materialize_and_read_on_redis_and_postgres(scaleout):
    import redis

    features.apply("redis_postgres")
    features.materialize("redis_postgres")
    assert redis.Redis(host="127.0.0.1", port=6379, db=REDIS_TEST_DB).dbsize() > 0
    fs = feature_store.open_store("redis_postgres")
    assert fs.config.online_store.type == "redis" and fs.config.registry.path.startswith("postgresql")
    ui = pd.read_parquet(scaleout / "features" / "user_interests.parquet")
    user = ui["user_id"].value_counts().index[0]
    expected = ui[ui["user_id"] == user].sort_values("event_timestamp").iloc[-1]
    row = feature_store.online_features(fs, HINTQ_SERVICE, [{"user_id": user, "request_hour": 9}])
    assert row["top_categories_30d"][0] == list(expected["top_categories_30d"])
    assert row["n_events_30d"][0] == expected["n_events_30d"]
    assert features.push_sessions("redis_postgres") > 0


def test_unreachable_postgres_is_one_clear_error(tiny_home, monkeypatch):
    require_services(REDIS)
    monkeypatch.setenv("AIGQ_PG_REGISTRY_URL", "postgresql+psycopg://postgres@127.0.0.1:5999/aigq")
    monkeypatch.setenv("AIGQ_REDIS", "127.0.0.1:6379")
    with pytest.raises(
        AigqError,
        match=r"cannot reach PostgreSQL at 127.0.0.1:5999 \(registry of "
        r"feature_store.redis_postgres.yaml, AIGQ_PG_REGISTRY_URL\)",
    ):
        features.apply("redis_postgres")


def test_unreachable_redis_is_one_line_from_the_cli(tiny_home):
    env = {"AIGQ_HOME": str(tiny_home), "AIGQ_REDIS": "127.0.0.1:6390", "PATH": "/usr/bin:/bin"}
    aigq = Path(sys.executable).parent / "aigq"
    out = subprocess.run(
        [str(aigq), "features", "apply", "--store", "redis_postgres"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 2
    assert out.stderr.strip().startswith(
        "aigq: error: cannot reach Redis at 127.0.0.1:6390 (online store of "
        "feature_store.redis_postgres.yaml, AIGQ_REDIS)"
    )
    assert len(out.stderr.strip().splitlines()) == 1
