"""The circuit breaker and the admission middleware of the online path."""

from __future__ import annotations

import asyncio
import json
import threading
import time

from serving.admission import ARRIVED_HEADER, Admission, arrived_at
from serving.circuit import Circuit


def test_a_closed_circuit_lets_every_call_through():
    c = Circuit(retry_seconds=60)
    assert all(c.allow() for _ in range(5))
    assert not c.is_open


def test_an_open_circuit_lets_one_probe_through_after_the_wait_and_closes_on_success():
    c = Circuit(retry_seconds=0.05)
    c.failed()
    assert not c.allow()  # open: nobody waits on the dead dependency
    time.sleep(0.06)
    assert c.allow()  # the probe
    assert not c.allow()  # one probe at a time: the rest keep the fallback
    c.succeeded()
    assert c.allow() and c.allow() and not c.is_open


def test_a_failed_probe_opens_the_circuit_again():
    c = Circuit(retry_seconds=0.05)
    c.failed()
    time.sleep(0.06)
    assert c.allow()
    c.failed()
    assert not c.allow()
    time.sleep(0.06)
    assert c.allow()


def test_a_given_probe_runs_off_the_request_path_and_closes_the_circuit_when_it_succeeds():
    c = Circuit(retry_seconds=0.05)
    c.failed()
    time.sleep(0.06)
    release, probed = threading.Event(), threading.Event()

    def slow_recovered_dependency():
        probed.set()
        release.wait(5)  # a probe as slow as a timeout: the request must not wait for it

    started = time.monotonic()
    assert not c.allow(probe=slow_recovered_dependency)  # this request keeps the fallback
    assert time.monotonic() - started < 0.5 and probed.wait(5)
    assert not c.allow(probe=slow_recovered_dependency)  # one probe at a time
    release.set()
    deadline = time.monotonic() + 5
    while c.is_open and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c.allow() and not c.is_open


def test_a_failing_probe_keeps_the_circuit_open_for_another_wait():
    c = Circuit(retry_seconds=0.2)
    c.failed()
    time.sleep(0.21)

    def dead():
        raise ConnectionError("refused")

    assert not c.allow(probe=dead)
    deadline = time.monotonic() + 5
    while c._probing and time.monotonic() < deadline:
        time.sleep(0.01)
    assert c.is_open and not c.allow(probe=dead)  # opened again: the next probe waits 0.2 s


def test_arrival_stamp_is_read_from_any_case_and_garbage_is_ignored():
    assert arrived_at({ARRIVED_HEADER: "12.5"}) == 12.5
    assert arrived_at({"X-Aigq-Arrived": "3"}) == 3.0
    assert arrived_at({ARRIVED_HEADER: "soon"}) is None
    assert arrived_at({}) is None and arrived_at(None) is None


def run_asgi(app, path: str, headers=()) -> tuple[dict, bytes]:
    sent: list[dict] = []

    async def receive():
        return {"type": "http.request", "body": b"{}", "more_body": False}

    async def send(message):
        sent.append(message)

    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers)}
    asyncio.run(app(scope, receive, send))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start, body


def echo_arrival():
    seen = {}

    async def app(scope, receive, send):
        seen["headers"] = dict(scope["headers"])
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    return app, seen


def test_admission_stamps_the_arrival_and_replaces_a_clients_own_stamp():
    app, seen = echo_arrival()
    before = time.monotonic()
    start, _ = run_asgi(Admission(app, ("/recommend",), reject_in_flight=4), "/recommend", [(b"x-aigq-arrived", b"0")])
    assert start["status"] == 200
    stamp = float(seen["headers"][ARRIVED_HEADER.encode()])
    assert before <= stamp <= time.monotonic()


def test_admission_leaves_other_routes_alone():
    app, seen = echo_arrival()
    run_asgi(Admission(app, ("/recommend",), reject_in_flight=4), "/readyz")
    assert ARRIVED_HEADER.encode() not in seen["headers"]


def test_past_the_limit_a_request_gets_a_fast_503_with_retry_after():
    app, _ = echo_arrival()
    door = Admission(app, ("/recommend",), reject_in_flight=2)
    door.open = 2  # two requests already open in this process
    start, body = run_asgi(door, "/recommend")
    assert start["status"] == 503
    assert dict(start["headers"])[b"retry-after"] == b"1"
    assert "overloaded" in json.loads(body)["error"]
    assert door.rejected == 1
