"""The serving log: every HintQ answer (request, list, sources, scores, model versions), written
through SQLAlchemy off the request path. SQLite by default ($AIGQ_HOME/serving/log.db),
PostgreSQL (or anything SQLAlchemy speaks) by URL. Monitoring and retraining read this table.

Writes go through a queue drained by one background thread in batches; `close()` flushes.
Inserts are parameterised (SQLAlchemy Core), and the request id is the primary key, so a retried
flush cannot log one answer twice.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from core import sql
from core.config import PROJECT_ROOT, aigq_home

log = logging.getLogger(__name__)

metadata = sa.MetaData()
served_lists = sa.Table(
    "served_lists",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("served_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("user_id", sa.String(256), nullable=False, index=True),
    sa.Column("k", sa.Integer, nullable=False),
    sa.Column("context", sa.JSON, nullable=False),
    sa.Column("queries", sa.JSON, nullable=False),
    sa.Column("sources", sa.JSON, nullable=False),
    sa.Column("scores", sa.JSON, nullable=False),
    sa.Column("categories", sa.JSON, nullable=False),
    sa.Column("degraded", sa.Boolean, nullable=False),
    sa.Column("degraded_reason", sa.String(256), nullable=False, default=""),
    sa.Column("model_versions", sa.JSON, nullable=False),
    sa.Column("latency_ms", sa.Float, nullable=False),
    sa.Column("server", sa.String(32), nullable=False, default="inprocess"),
)
COLUMNS = tuple(c.name for c in served_lists.columns)


def default_url() -> str:
    """$AIGQ_SERVING_LOG_URL, else SQLite under $AIGQ_HOME/serving/."""
    return sql.url_from_env("AIGQ_SERVING_LOG_URL", aigq_home() / "serving" / "log.db")


def utf8_json(value) -> str:
    """JSON columns keep text as UTF-8 (SQLAlchemy's default writes `\\u` escapes, so a SQL
    search for non-ASCII text would find nothing)."""
    return json.dumps(value, ensure_ascii=False)


def make_engine(url: str) -> sa.Engine:
    return sql.make_engine(url, metadata, json_serializer=utf8_json)


def row_of(record: Mapping[str, Any]) -> dict:
    """One served_lists row from an answer record (defaults filled in)."""
    row = {c: record.get(c) for c in COLUMNS}
    row["served_at"] = row["served_at"] or datetime.now(UTC)
    row["degraded_reason"] = row["degraded_reason"] or ""
    row["server"] = row["server"] or "inprocess"
    return row


class ServingLog:
    """Asynchronous, batched writer of served lists (a thread of this process)."""

    def __init__(self, url: str | None = None, batch_size: int = 256, flush_seconds: float = 0.2):
        self.url = url or default_url()
        self.engine = make_engine(self.url)
        self.batch_size, self.flush_seconds = batch_size, flush_seconds
        self._queue: queue.Queue = queue.Queue()
        self._stop = threading.Event()
        self.written = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="serving-log", daemon=True)
        self._thread.start()

    def submit(self, record: Mapping[str, Any]) -> None:
        """Queue one answer for logging (returns at once)."""
        self._queue.put(row_of(record))

    def _drain(self) -> list[dict]:
        """Up to `batch_size` rows: the first one waited for, then whatever arrives within
        `flush_seconds` of it. A busy server then writes one transaction per batch, not one per
        answer: each write holds the GIL that the request threads of the same process need."""
        try:
            rows = [self._queue.get(timeout=self.flush_seconds)]
        except queue.Empty:
            return []
        deadline = time.monotonic() + self.flush_seconds
        while len(rows) < self.batch_size:
            left = deadline - time.monotonic()
            try:
                # closing: take what is queued, wait for nothing more
                rows.append(
                    self._queue.get_nowait() if left <= 0 or self._stop.is_set() else self._queue.get(timeout=left)
                )
            except queue.Empty:
                break
        return rows

    def _write(self, rows: list[dict]) -> None:
        for attempt in range(3):
            try:
                with self.engine.begin() as conn:
                    existing = set(
                        conn.execute(
                            sa.select(served_lists.c.request_id).where(
                                served_lists.c.request_id.in_([r["request_id"] for r in rows])
                            )
                        ).scalars()
                    )
                    fresh = [r for r in rows if r["request_id"] not in existing]
                    if fresh:
                        conn.execute(served_lists.insert(), fresh)
                self.written += len(fresh)
                return
            except sa.exc.SQLAlchemyError as e:  # the log must never take serving down
                log.warning("serving log write failed (attempt %d): %s", attempt + 1, e)
        self.failed += len(rows)

    def _run(self) -> None:
        while not self._stop.is_set() or not self._queue.empty():
            rows = self._drain()
            if rows:
                self._write(rows)
                for _ in rows:
                    self._queue.task_done()

    def flush(self) -> None:
        """Block until everything queued so far is written (or has failed)."""
        self._queue.join()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self.engine.dispose()


# `python -m serving.log` that ignores SIGTERM and SIGINT before its imports, not after them: a
# server stopped a second after it started (BentoML's arbiter signals its workers' children by PID)
# would otherwise stop the writer while it imports, with the rows already piped to it
WRITER_MAIN = (
    "import runpy, signal; "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "runpy.run_module('serving.log', run_name='__main__')"
)


class ServingLogProcess:
    """The same writer in a child process (`python -m serving.log URL`, see WRITER_MAIN): the
    serving process only queues the row, and a feeder thread pipes it out as a JSON line; the
    SQLAlchemy work, which holds the GIL for milliseconds a batch, runs beside the server instead
    of between its requests. Same interface as ServingLog; `written`/`failed` are the child's
    counts. A child process, not a multiprocessing one: spawning re-imports the caller's main
    script."""

    def __init__(self, url: str | None = None, batch_size: int = 256, flush_seconds: float = 0.2):
        self.url = url or default_url()
        make_engine(self.url).dispose()  # a bad URL or an unwritable file fails here, in the caller
        self._process = subprocess.Popen(
            [sys.executable, "-c", WRITER_MAIN, self.url, str(batch_size), str(flush_seconds)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            env={**os.environ, "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")])},
            start_new_session=True,  # a Ctrl-C or SIGTERM to the server's process group: see main
        )
        self._rows: queue.Queue = queue.Queue()
        self.submitted = self.written = self.failed = 0
        self._feeder = threading.Thread(target=self._feed, name="serving-log-feeder", daemon=True)
        self._reader = threading.Thread(target=self._read_counts, name="serving-log-counts", daemon=True)
        self._feeder.start()
        self._reader.start()

    def submit(self, record: Mapping[str, Any]) -> None:
        """Queue one answer for logging (returns at once)."""
        self._rows.put(row_of(record))
        self.submitted += 1

    def _feed(self) -> None:
        pipe = self._process.stdin
        while (row := self._rows.get()) is not None:
            try:
                pipe.write(json.dumps(row, ensure_ascii=False, default=_iso) + "\n")
                if self._rows.empty():
                    pipe.flush()
            except (BrokenPipeError, ValueError, OSError) as e:  # the writer died: count, keep serving
                log.warning("serving log writer gone (exit code %s): %s", self._process.poll(), e)
                self.failed += 1
        try:
            pipe.close()
        except OSError:
            pass

    def _read_counts(self) -> None:
        for line in self._process.stdout:
            written, _, failed = line.strip().partition(" ")
            if written.isdigit() and failed.isdigit():
                self.written, self.failed = int(written), max(int(failed), self.failed)

    def flush(self, timeout: float = 30.0) -> None:
        """Block until everything submitted so far is written (or has failed)."""
        deadline = time.monotonic() + timeout
        while self.written + self.failed < self.submitted and self._process.poll() is None:
            if time.monotonic() > deadline:
                log.warning("serving log: %d answers not written after %.0f s", self.submitted - self.written, timeout)
                return
            time.sleep(0.01)

    def close(self) -> None:
        self._rows.put(None)
        self._feeder.join(timeout=30)
        try:
            self._process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self._process.kill()
        self._reader.join(timeout=5)


def _iso(value):
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"not JSON: {type(value).__name__}")


def main(argv: list[str]) -> int:
    """The child of ServingLogProcess: JSON rows on stdin into a ServingLog until end of input;
    "written failed" on stdout whenever they change, and at the end."""
    # a server stopped with SIGTERM (or Ctrl-C) must not take the rows still queued here with it:
    # this process ends when its input does, after writing them (the pipe closes when the server
    # closes the log or dies). ServingLogProcess starts it in a session of its own with the signals
    # already ignored (WRITER_MAIN); run by hand, it ignores them from here.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    url, batch_size, flush_seconds = argv[0], int(argv[1]), float(argv[2])
    writer = ServingLog(url, batch_size, flush_seconds)
    done = threading.Event()

    def report() -> None:
        said = (0, 0)
        while not done.wait(0.02):
            if (writer.written, writer.failed) != said:
                said = (writer.written, writer.failed)
                print(*said, flush=True)

    reporter = threading.Thread(target=report, daemon=True)
    reporter.start()
    for line in sys.stdin:
        row = json.loads(line)
        writer.submit({**row, "served_at": datetime.fromisoformat(row["served_at"])})
    writer.flush()
    writer.close()
    done.set()
    reporter.join()
    print(writer.written, writer.failed, flush=True)
    return 0


def read_log(url: str | None = None, since: datetime | None = None) -> pd.DataFrame:  # noqa: F821
    """The served lists as a DataFrame (JSON columns decoded), oldest first."""

    engine = make_engine(url or default_url())
    query = sa.select(served_lists).order_by(served_lists.c.served_at)
    if since is not None:
        query = query.where(served_lists.c.served_at >= since)
    try:
        with engine.connect() as conn:
            return pd.DataFrame(conn.execute(query).mappings().all(), columns=list(COLUMNS))
    finally:
        engine.dispose()


def served_list(url: str, request_id: str) -> dict | None:
    """One served list by its request id (JSON columns decoded), or None."""
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            row = (
                conn.execute(sa.select(served_lists).where(served_lists.c.request_id == request_id)).mappings().first()
            )
        return dict(row) if row is not None else None
    finally:
        engine.dispose()


# ---- click feedback ----------------------------------------------------------------------
# Which suggestion of a served list was clicked: the feedback that monitoring reads (the drift
# scenario writes it from the simulated users; a shop writes it from its click stream).
clicks_table = sa.Table(
    "hintq_clicks",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("query", sa.String(256), nullable=False),
    sa.Column("clicked_at", sa.DateTime(timezone=True), nullable=False),
)


def read_clicks(url: str) -> dict[str, int]:
    """Clicks per request id from the feedback table (empty if there is none)."""
    return {r: int(n) for r, n in clicked_items(url)["request_id"].value_counts().items()}


def clicked_items(url: str) -> pd.DataFrame:
    """(request_id, position, query) of every click in the feedback table (empty if none)."""
    engine = sa.create_engine(url)
    try:
        if not sa.inspect(engine).has_table("hintq_clicks"):
            return pd.DataFrame(columns=["request_id", "position", "query"])
        with engine.connect() as conn:
            return pd.DataFrame(
                conn.execute(sa.select(clicks_table.c.request_id, clicks_table.c.position, clicks_table.c.query)).all(),
                columns=["request_id", "position", "query"],
            )
    finally:
        engine.dispose()


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
