"""One request contract on both servers: the same strict types, the same 400 messages (no
internal class names), control characters refused, session queries normalised, JSON sent by a
plain `curl -d` accepted and form data refused with a message that says to send JSON; the
serving log keeps text as UTF-8; KServe's Open Inference Protocol for clients such as
tritonclient (JSON and binary mode, model metadata, malformed tensors as 400s)."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import time

import numpy as np
import pytest

from serving.contract import RequestError, parse_request

from tests.integration.servers import HINTQ_PATHS, answer_of, hintq_body, known_user, post

HOSTILE_REQUESTS = [
    {"user_id": "u", "k": "8"},
    {"user_id": "u", "k": 8.0},
    {"user_id": "u", "k": True},
    {"user_id": "u", "context": {"hour": "3"}},
    {"user_id": "u", "context": {"session_queries": ["tent\x00"]}},
    {"user_id": "u", "context": {"session_queries": ["\x1b[31mtent"]}},
    {"user_id": "u\x7f"},
    {"user_id": "u\x85"},
    {"user_id": "u\u2028"},
    {"user_id": "u", "extra": 1},
    {"k": 3},
]


def contract_message(request: dict) -> str:
    with pytest.raises(RequestError) as e:
        parse_request(request)
    return str(e.value)


@pytest.mark.parametrize("request_body", HOSTILE_REQUESTS, ids=lambda r: json.dumps(r)[:40])
def test_both_servers_refuse_the_same_requests_with_the_contracts_message(bento, kserve, request_body):
    expected = contract_message(request_body)
    for name, server in (("bento", bento), ("kserve", kserve)):
        status, body = post(server.url(HINTQ_PATHS[name]), hintq_body(name, request_body))
        assert status == 400, (name, status, body)
        assert body == {"error": expected}, (name, body)


def curl(url: str, *args: str) -> tuple[int, str]:
    out = subprocess.run(
        ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", url, *args], capture_output=True, text=True, timeout=30
    ).stdout
    body, _, code = out.rpartition("\n")
    return int(code), body


def test_plain_curl_json_is_accepted_and_form_data_refused_with_a_message_to_send_json(bento, kserve, server_home):
    user = known_user(server_home)
    for name, server in (("bento", bento), ("kserve", kserve)):
        url = server.url(HINTQ_PATHS[name])
        code, body = curl(url, "-d", json.dumps(hintq_body(name, {"user_id": user, "k": 3})))  # form content type
        assert code == 200 and len(answer_of(json.loads(body))["suggestions"]) == 3, (name, code, body)
    code, body = curl(bento.url("/recommend"), "-d", f"user_id={user}&k=3")
    assert code == 400 and "Content-Type: application/json" in json.loads(body)["error"], body
    code, body = curl(kserve.url(HINTQ_PATHS["kserve"]), "-d", f"user_id={user}&k=3")
    assert code == 400 and "Content-Type: application/json" in json.loads(body)["error"], body


@pytest.mark.parametrize("server", ["bento", "kserve"])
def test_an_already_searched_query_is_recognised_in_any_spelling(request, server, server_home):
    srv = request.getfixturevalue(server)
    user = known_user(server_home)
    url = srv.url(HINTQ_PATHS[server])
    status, body = post(url, hintq_body(server, {"user_id": user, "k": 8}))
    assert status == 200
    first = answer_of(body)["suggestions"][0]["query"]
    full_width = "".join(
        "\u3000" if c == " " else chr(ord(c) + 0xFEE0) if "!" <= c <= "~" else c for c in first.upper()
    )
    for spelling in (first.upper(), f"  {first.title()}  ", full_width):
        context = {"session_queries": [spelling]}
        status, body = post(url, hintq_body(server, {"user_id": user, "k": 8, "context": context}))
        assert status == 200
        assert first not in [s["query"] for s in answer_of(body)["suggestions"]], (spelling, body)


@pytest.mark.parametrize("server", ["bento", "kserve"])
def test_the_serving_log_keeps_request_text_as_utf8(request, server, server_home):
    srv = request.getfixturevalue(server)
    context = {"session_queries": ["连衣裙 ｒｅｄ"], "categories": ["café"]}
    status, body = post(
        srv.url(HINTQ_PATHS[server]), hintq_body(server, {"user_id": "ünïcode", "k": 2, "context": context})
    )
    assert status == 200
    request_id = answer_of(body)["request_id"]
    deadline, rows = time.monotonic() + 10, []
    while not rows and time.monotonic() < deadline:  # the log is written off the request path
        with sqlite3.connect(server_home / "serving" / "log.db") as db:
            rows = db.execute(
                "SELECT context FROM served_lists WHERE request_id = ? AND context LIKE '%连衣裙 red%'"
                " AND context LIKE '%café%'",
                (request_id,),
            ).fetchall()
        time.sleep(0.2)
    assert rows and "\\u" not in rows[0][0], rows


def test_kserve_v2_metadata_declares_the_tensors(kserve):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{kserve.port + 1}")
    meta = client.get_model_metadata("ctr")
    assert meta["inputs"] == [{"name": "rows", "datatype": "BYTES", "shape": [-1]}]
    assert meta["outputs"] == [{"name": "probability", "datatype": "FP32", "shape": [-1]}]


@pytest.mark.parametrize("binary", [False, True], ids=["json-mode", "binary-mode"])
def test_tritonclient_scores_rows_in_json_and_binary_mode(kserve, binary):
    import tritonclient.http as triton

    client = triton.InferenceServerClient(f"127.0.0.1:{kserve.port + 1}")
    rows = np.array([json.dumps({"query": q}).encode() for q in ("tent", "连衣裙", "dog food")], dtype=object)
    tensor = triton.InferInput("rows", [3], "BYTES")
    tensor.set_data_from_numpy(rows, binary_data=binary)
    result = client.infer("ctr", [tensor], outputs=[triton.InferRequestedOutput("probability", binary_data=binary)])
    probs = result.as_numpy("probability")
    assert probs.shape == (3,) and ((probs > 0) & (probs < 1)).all()


@pytest.mark.parametrize(
    "tensor, needle",
    [
        ({"name": "rows", "shape": [3], "datatype": "BYTES", "data": ['{"query": "tent"}']}, "shape"),
        ({"name": "rows", "shape": [1], "datatype": "BYTES", "data": [1]}, "rows[0]: a string"),
        ({"name": "rows", "shape": [1], "datatype": "BYTES", "data": [{"query": "tent"}]}, "rows[0]: a string"),
        ({"name": "rows", "shape": [1], "datatype": "BYTES", "data": ["not json"]}, "rows[0]: not a JSON object"),
        ({"name": "rows", "shape": [1], "datatype": "BYTES", "data": ["[1]"]}, "string `query`"),
        ({"name": "x", "shape": [1], "datatype": "BYTES", "data": ['{"query": "tent"}']}, "`rows`"),
        ({"name": "rows", "shape": [1], "datatype": "FP32", "data": [1.0]}, "BYTES"),
    ],
)
def test_every_malformed_v2_tensor_is_a_400_naming_the_fault(kserve, tensor, needle):
    status, body = post(kserve.url("/v2/models/ctr/infer", 1), {"inputs": [tensor]}, content_type=None)
    assert status == 400 and needle in body["error"], (status, body)
