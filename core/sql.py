"""SQLAlchemy engines for the project's own tables (serving log, review decisions): SQLite by
default, anything SQLAlchemy speaks by URL."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa


def make_engine(url: str, metadata: sa.MetaData, **kwargs) -> sa.Engine:
    """An engine with `metadata`'s tables created; SQLite in WAL mode with a busy timeout, so
    readers (monitoring, the review page, servers re-reading flags) never block the writer."""
    engine = sa.create_engine(url, pool_pre_ping=True, **kwargs)
    if engine.dialect.name == "sqlite":

        @sa.event.listens_for(engine, "connect")
        def _wal(dbapi_conn, _):
            dbapi_conn.execute("PRAGMA journal_mode=WAL")
            dbapi_conn.execute("PRAGMA busy_timeout=5000")

    metadata.create_all(engine)
    return engine


def url_from_env(variable: str, default_path: Path) -> str:
    """The URL in $variable, else SQLite at `default_path` (its folder created)."""
    url = os.environ.get(variable)
    if url:
        return url
    default_path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{default_path}"
