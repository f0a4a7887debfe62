"""The serving log through SQLAlchemy: SQLite by default, PostgreSQL by URL, written off the
request path; concurrent writers lose and duplicate nothing."""

import threading
import uuid

import pytest
import sqlalchemy as sa

from serving.log import ServingLog, ServingLogProcess, read_log

from tests.conftest import POSTGRES, require_services


def record(i: int, user: str = "u1") -> dict:
    return {
        "request_id": uuid.uuid4().hex,
        "user_id": user,
        "k": 2,
        "context": {"hour": i % 24},
        "queries": ["tent", "lamp"],
        "sources": ["direct", "think"],
        "scores": [0.2, 0.1],
        "categories": ["c1", None],
        "degraded": False,
        "degraded_reason": "",
        "model_versions": {"ctr": "ctr@1"},
        "latency_ms": 1.5,
    }


def write_concurrently(url: str, writers: int = 4, per_writer: int = 150, writer=ServingLog) -> int:
    log = writer(url, batch_size=32)
    threads = [
        threading.Thread(target=lambda w=w: [log.submit(record(i, f"w{w}")) for i in range(per_writer)])
        for w in range(writers)
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    log.flush()
    log.close()
    return writers * per_writer


@pytest.mark.parametrize("writer", [ServingLog, ServingLogProcess])
def test_sqlite_log_round_trip_and_concurrent_writers(aigq_home, writer):
    """In a thread or in the writer process (the servers' default): count in = count out."""
    url = f"sqlite:///{aigq_home / 'log.db'}"
    aigq_home.mkdir(parents=True, exist_ok=True)
    sent = write_concurrently(url, writer=writer)
    frame = read_log(url)
    assert len(frame) == sent and frame["request_id"].is_unique
    row = frame.iloc[0]
    assert row["queries"] == ["tent", "lamp"] and row["model_versions"] == {"ctr": "ctr@1"}
    assert row["server"] == "inprocess" and not row["degraded"]


def test_answers_arriving_one_by_one_are_written_in_batches_not_a_transaction_each(aigq_home):
    aigq_home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{aigq_home / 'log.db'}"
    log = ServingLog(url, flush_seconds=0.5)
    commits = []
    sa.event.listen(log.engine, "commit", lambda conn: commits.append(1))
    for i in range(40):  # a server answering every 2 ms: the writer wakes on the first answer
        log.submit(record(i))
        threading.Event().wait(0.002)
    log.close()
    assert log.written == 40 and len(read_log(url)) == 40
    assert len(commits) <= 4, f"{len(commits)} transactions for 40 answers"


def test_a_request_id_is_logged_once_even_if_submitted_twice(aigq_home):
    aigq_home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{aigq_home / 'log.db'}"
    log = ServingLog(url)
    r = record(1)
    log.submit(r)
    log.flush()
    log.submit(r)
    log.close()
    assert len(read_log(url)) == 1


@pytest.mark.parametrize("writer", [ServingLog, ServingLogProcess])
def test_hostile_text_is_stored_verbatim_not_executed(aigq_home, writer):
    aigq_home.mkdir(parents=True, exist_ok=True)
    url = f"sqlite:///{aigq_home / 'log.db'}"
    log = writer(url)
    nasty = "u'; DROP TABLE served_lists; --\u202e\u0000"
    log.submit({**record(1), "user_id": nasty})
    log.close()
    frame = read_log(url)
    assert list(frame["user_id"]) == [nasty]


@pytest.mark.services
def test_postgres_log_concurrent_writers():
    require_services(POSTGRES)
    from core.feature_store import DEFAULT_PG_URL, ensure_postgres_database

    url = DEFAULT_PG_URL.rsplit("/", 1)[0] + "/aigq_test_serving_log"
    from pathlib import Path

    ensure_postgres_database(url, Path("serving log"))
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("DROP TABLE IF EXISTS served_lists"))
    engine.dispose()
    sent = write_concurrently(url)
    frame = read_log(url)
    assert len(frame) == sent and frame["request_id"].is_unique
