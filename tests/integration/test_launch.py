"""The `aigq serve` supervisor (`servers.launch.run`) on small real HTTP servers: a killed child
comes back even when its first restarts fail (its port still taken), and a crash loop stops
everything with an error naming the child."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import urllib.request
from pathlib import Path

import psutil
import pytest

from servers.launch import restart_delay, spawn, stop_spawned

from tests.integration.servers import free_port

# a server that exits at once while `broken` exists, like a model server that cannot load
CHILD = textwrap.dedent("""
    import http.server, pathlib, sys
    port, broken = int(sys.argv[1]), pathlib.Path(sys.argv[2])
    if broken.exists():
        print("loading the model ...", file=sys.stderr)
        print(f"toy: error: {broken}: not a model", file=sys.stderr)
        print("bye", file=sys.stderr)
        sys.exit(3)
    class Ok(http.server.BaseHTTPRequestHandler):
        def do_GET(self):
            self.send_response(200); self.end_headers(); self.wfile.write(b"ok")
        def log_message(self, *a):
            pass
    http.server.ThreadingHTTPServer.allow_reuse_address = True  # as uvicorn binds
    http.server.ThreadingHTTPServer(("127.0.0.1", port), Ok).serve_forever()
""")

SUPERVISOR = textwrap.dedent("""
    import sys
    from core.errors import AigqError
    from servers.launch import Child, run
    script, port, broken, max_restarts = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    child = Child("toy", [sys.executable, script, port, broken], f"http://127.0.0.1:{port}/")
    try:
        sys.exit(run([child], timeout=20, on_ready=lambda: print("ready", flush=True), max_restarts=max_restarts))
    except AigqError as e:
        print(f"error: {e}", file=sys.stderr)
        sys.exit(2)
""")


@pytest.fixture
def supervised(tmp_path):
    """Start the supervisor over one toy child; yields (launcher, port, broken flag, child pid),
    or the launcher alone when the child is broken from the start."""
    procs = []

    def start(max_restarts: int = 5, broken_at_start: bool = False):
        (tmp_path / "child.py").write_text(CHILD)
        (tmp_path / "supervise.py").write_text(SUPERVISOR)
        port, broken = free_port(), tmp_path / "broken"
        if broken_at_start:
            broken.touch()
        launcher = subprocess.Popen(
            [
                sys.executable,
                str(tmp_path / "supervise.py"),
                str(tmp_path / "child.py"),
                str(port),
                str(broken),
                str(max_restarts),
            ],
            cwd=Path(__file__).resolve().parents[2],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        procs.append(launcher)
        launcher.said = []  # its stderr, line by line, as it comes
        threading.Thread(target=launcher.said.extend, args=(launcher.stderr,), daemon=True).start()
        if broken_at_start:
            return launcher
        assert launcher.stdout.readline().strip() == "ready"
        (child,) = psutil.Process(launcher.pid).children()
        return launcher, port, broken, child

    yield start
    for p in procs:
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=30)


def answers(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def test_restart_back_off_doubles_and_is_bounded():
    assert [restart_delay(n) for n in (1, 2, 3, 4)] == [0.5, 1.0, 2.0, 4.0]
    assert restart_delay(50) == 16.0


def test_a_killed_child_whose_port_is_taken_for_a_while_comes_back(supervised):
    launcher, port, _, child = supervised()
    child.kill()
    child.wait(timeout=10)
    # another socket holds the port (in the ephemeral range, an outgoing connection's local end
    # can); listening, so that the child's reuse-address bind fails too
    squatter = socket.socket()
    squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    squatter.bind(("127.0.0.1", port))
    squatter.listen()
    time.sleep(2.5)  # the first restarts fail: address in use
    squatter.close()
    deadline = time.monotonic() + 30
    while not any("ready again" in line for line in launcher.said) and time.monotonic() < deadline:
        time.sleep(0.2)
    said = "".join(launcher.said)
    assert launcher.poll() is None, f"the supervisor gave up on a failed restart:\n{said}"
    assert "restart failed" in said and "ready again" in said, said
    assert answers(port), "the child did not come back"


def test_a_crash_loop_stops_the_supervisor_with_an_error_naming_the_child(supervised):
    launcher, port, broken, child = supervised(max_restarts=2)
    broken.touch()
    child.kill()
    assert launcher.wait(timeout=60) == 2
    time.sleep(0.2)  # the reader thread takes the last lines
    said = "".join(launcher.said)
    assert "toy stopped" in said and "3 deaths" in said
    assert not answers(port)


def test_a_child_that_dies_at_start_up_is_quoted_in_the_error(supervised, tmp_path):
    launcher = supervised(broken_at_start=True)
    assert launcher.wait(timeout=60) == 2
    time.sleep(0.2)  # the reader thread takes the last lines
    error = [line for line in launcher.said if line.startswith("error:")]
    assert error, "".join(launcher.said)
    # its own error line (not its last line, "bye"), naming the file at fault
    assert f"before it was ready: toy: error: {tmp_path / 'broken'}: not a model (command: " in error[-1]
    assert "loading the model ..." in "".join(launcher.said)  # the child's stderr is passed on


def test_serve_hands_config_overrides_to_every_server_process(served_home, tmp_path):
    """`aigq serve ... --set key=value` reaches BentoML's and KServe's HintQ the same way: both
    answer as the in-process path with the same settings, and unlike the defaults."""
    import shutil

    from serving.config import ServingConfig
    from serving.hintq import HintQ

    from tests.integration.servers import HINTQ_PATHS, answer_of, hintq_body, known_users, post

    home = tmp_path / "home"
    shutil.copytree(served_home["home"], home)
    overrides = ("rerank=mmr", "mmr_lambda=0.3", "popularity_weight=0.0")
    users = known_users(home, 4)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(home))
        tuned = HintQ(ServingConfig(rerank="mmr", mmr_lambda=0.3, popularity_weight=0.0, log=False))
        default = HintQ(ServingConfig(log=False))
        expected = {u: [s["query"] for s in tuned.recommend({"user_id": u})["suggestions"]] for u in users}
        defaults = {u: [s["query"] for s in default.recommend({"user_id": u})["suggestions"]] for u in users}
        tuned.close()
        default.close()
    assert expected != defaults  # the knobs matter for these users
    for server in ("bento", "kserve"):
        proc = spawn(server, port := free_port(), home, overrides=overrides)
        try:
            for user in users:
                status, body = post(
                    f"http://127.0.0.1:{port}{HINTQ_PATHS[server]}", hintq_body(server, {"user_id": user})
                )
                assert status == 200
                assert [s["query"] for s in answer_of(body)["suggestions"]] == expected[user], (server, user)
        finally:
            stop_spawned(proc)


HINTQ_WORKER = {"bento": "aigq_hintq", "kserve": "multiprocessing.spawn"}  # in a worker's command line


@pytest.mark.parametrize("server", ["bento", "kserve"])
def test_hintq_runs_in_the_configured_number_of_workers_and_logs_every_answer(server, served_home, tmp_path):
    """`--set workers=2`: two HintQ processes (BentoML's aigq_hintq workers, KServe's transformer
    workers), each with its own log writer; both answer under concurrent load, with the hardened
    app in each (the model repository closed), and every answer is logged once."""
    import shutil
    from concurrent.futures import ThreadPoolExecutor

    from serving.log import read_log

    from tests.integration.servers import HINTQ_PATHS, answer_of, child_processes, hintq_body, known_users, post

    home = tmp_path / "home"
    shutil.copytree(served_home["home"], home, ignore=shutil.ignore_patterns("log.db*"))  # with -wal, -shm
    users = known_users(home, 20)
    proc = spawn(server, port := free_port(), home, overrides=("workers=2",))
    try:
        deadline = time.monotonic() + 60  # ready when one worker is; the other may still be loading
        while True:
            workers = child_processes(proc, HINTQ_WORKER[server])
            writers = child_processes(proc, "'serving.log'")
            if len(writers) >= 2 or time.monotonic() > deadline:
                break
            time.sleep(0.5)
        assert len(workers) == 2 and len(writers) == 2, "".join(list(proc.output_tail)[-40:])
        busy_before = [w.cpu_times().user for w in workers]
        url = f"http://127.0.0.1:{port}{HINTQ_PATHS[server]}"
        with ThreadPoolExecutor(8) as pool:
            answers = list(
                pool.map(lambda i: post(url, hintq_body(server, {"user_id": users[i % len(users)]})), range(200))
            )
        assert all(status == 200 and len(answer_of(body)["suggestions"]) == 8 for status, body in answers)
        assert all(w.cpu_times().user > before for w, before in zip(workers, busy_before))
        if server == "kserve":  # the worker re-applied the REST hardening
            assert post(f"http://127.0.0.1:{port}/v2/repository/models/hintq/unload", {})[0] == 404
    finally:
        stop_spawned(proc)
    ids = {answer_of(body)["request_id"] for _, body in answers}
    deadline = time.monotonic() + 15  # the writers outlive their workers by the rows still queued
    while True:
        log = read_log(f"sqlite:///{home / 'serving' / 'log.db'}")
        if set(log["request_id"]) >= ids or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    said = [line for line in proc.output_tail if "serving log" in line or "Error" in line]
    assert len(ids) == 200 and set(log["request_id"]) == ids and log["request_id"].is_unique, (len(log), said)


def test_the_default_is_one_hintq_worker_per_core():
    from servers.launch import hintq_workers

    assert hintq_workers(0) == len(os.sched_getaffinity(0)) and hintq_workers(3) == 3


def serve_with(home: Path, server: str, override: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(Path(sys.executable).with_name("aigq")), "serve", server, "--set", override],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "AIGQ_HOME": str(home)},
    )


def test_serve_refuses_an_unknown_config_key_before_starting_anything(tmp_path):
    out = serve_with(tmp_path, "bento", "rerank_mode=fast")
    assert out.returncode == 2 and "rerank_mode" in out.stderr


@pytest.mark.parametrize("override", ["workers=-1", "deadline_ms=0", "max_in_flight=-3"])
def test_serve_refuses_a_negative_count_before_starting_anything(tmp_path, override):
    # workers=-1 used to mean "one per core" without a word
    out = serve_with(tmp_path, "kserve", override)
    assert out.returncode == 2 and override.split("=")[0] in out.stderr and "Traceback" not in out.stderr
