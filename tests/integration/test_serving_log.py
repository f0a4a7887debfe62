"""The serving log through SQLAlchemy: SQLite by default, PostgreSQL by URL, written off the
request path; concurrent writers lose and duplicate nothing."""

import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

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


def test_processes_opening_a_fresh_database_together_all_get_its_tables(tmp_path):
    """Two server workers and their log writers open a new log database at the same moment: every
    one of them gets the tables (the loser of the CREATE TABLE race no longer dies with "table
    already exists", which lost all of a worker's log rows)."""
    opener = "import sys; from serving.log import make_engine; make_engine(sys.argv[1]).dispose()"
    for trial in range(8):
        url = f"sqlite:///{tmp_path / f'log{trial}.db'}"
        procs = [
            subprocess.Popen([sys.executable, "-c", opener, url], stderr=subprocess.PIPE, text=True) for _ in range(4)
        ]
        errors = [p.communicate(timeout=60)[1] for p in procs]
        assert [p.returncode for p in procs] == [0] * 4, errors
        assert read_log(url).empty


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


SERVER_STOPPED_AT_ONCE = """
import os, signal, sys, time
from serving.log import ServingLogProcess
from tests.integration.test_serving_log import record
log = ServingLogProcess(sys.argv[1])
for i in range(50):
    log.submit(record(i))
while not log._rows.empty():  # piped to the writer, which is still starting
    time.sleep(0.001)
time.sleep(0.05)
print(log._process.pid, flush=True)
os.killpg(0, signal.SIGTERM)  # what `kill -TERM -PGID`, Ctrl-C or a supervisor does to a server
"""


def test_a_server_stopped_while_its_writer_starts_loses_no_answer(tmp_path):
    """A server (here a small process, its own process group) stopped by a signal to its group the
    moment it has piped answers to a log writer that is still importing: the writer, in a session
    of its own, is not stopped with it and writes all of them."""
    url = f"sqlite:///{tmp_path / 'log.db'}"
    server = subprocess.run(
        [sys.executable, "-c", SERVER_STOPPED_AT_ONCE, url],
        capture_output=True,
        text=True,
        timeout=60,
        start_new_session=True,
        cwd=Path(__file__).parents[2],
    )
    assert server.returncode == -signal.SIGTERM, server.stderr
    writer_pid = int(server.stdout.split()[0])
    deadline = time.monotonic() + 30
    while writer_alive(writer_pid) and time.monotonic() < deadline:  # it ends once it has written
        time.sleep(0.1)
    assert len(read_log(url)) == 50


def writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


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
