"""SQLAlchemy engines for the project's own tables (serving log, review decisions): SQLite by
default, anything SQLAlchemy speaks by URL."""

from __future__ import annotations

import os
import time
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

    create_tables(engine, metadata)
    return engine


def create_tables(engine: sa.Engine, metadata: sa.MetaData, attempts: int = 5) -> None:
    """`metadata.create_all`, safe when other processes create the same tables at the same moment
    (the workers of one server and their log writers start side by side on a fresh database: the
    loser's CREATE TABLE fails with "already exists", and a second pass finds the tables made)."""
    for attempt in range(attempts):
        try:
            metadata.create_all(engine)
            return
        except sa.exc.DBAPIError:
            if attempt == attempts - 1:
                raise
            time.sleep(0.05 * (attempt + 1))


def url_from_env(variable: str, default_path: Path) -> str:
    """The URL in $variable, else SQLite at `default_path` (its folder created)."""
    url = os.environ.get(variable)
    if url:
        return url
    default_path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{default_path}"
