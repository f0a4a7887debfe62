"""The HintQ HTTP contract on both servers, started as a user would (`aigq serve ...`) on
127.0.0.1 and called over HTTP: BentoML through its own client, KServe v1 over plain HTTP and v2
through tritonclient. Bad input gets a 4xx with a message, never a 5xx."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.integration.servers import known_user, post

BAD_REQUESTS = [
    ({"user_id": "u", "k": 0}, "k"),
    ({"user_id": "u", "k": 21}, "k"),
    ({"user_id": "u", "k": "eight"}, "k"),
    ({"k": 3}, "user_id"),
    ({"user_id": ""}, "user_id"),
    ({"user_id": "x" * 1000}, "user_id"),
    ({"user_id": "u", "context": {"hour": 99}}, "hour"),
    ({"user_id": "u", "context": {"mood": "happy"}}, "mood"),
    ({"user_id": "u", "context": {"session_queries": ["q"] * 500}}, "session_queries"),
    ({"user_id": "u", "surprise": True}, "surprise"),
]


def check_answer(answer: dict, k: int) -> None:
    assert set(answer) == {"request_id", "suggestions", "degraded", "model_versions"}
    assert len(answer["suggestions"]) == k
    for s in answer["suggestions"]:
        assert set(s) == {"query", "score", "source"} and s["source"] in {"direct", "think", "fallback"}
        assert isinstance(s["score"], float)


def test_kserve_v1_hintq_contract(kserve, server_home):
    url = f"http://127.0.0.1:{kserve.port}/v1/models/hintq:predict"
    status, body = post(
        url, {"instances": [{"user_id": known_user(server_home), "k": 5}, {"user_id": "nobody-at-all"}]}
    )
    assert status == 200
    known, unknown = body["predictions"]
    check_answer(known, 5)
    check_answer(unknown, 8)
    assert not known["degraded"] and known["model_versions"]["ctr"] != "remote"
    assert {s["source"] for s in known["suggestions"]} & {"direct", "think"}
    assert {s["source"] for s in unknown["suggestions"]} == {"fallback"}
    assert not unknown["degraded"]  # a cold-start list is the designed answer, not a degradation


@pytest.mark.parametrize("instance, field", BAD_REQUESTS)
def test_kserve_rejects_bad_requests_with_a_message(kserve, instance, field):
    status, body = post(f"http://127.0.0.1:{kserve.port}/v1/models/hintq:predict", {"instances": [instance]})
    assert status == 400 and field in body["error"]


@pytest.mark.parametrize(
    "raw, content_type",
    [
        (b'{"instances": [{"user_id": ', "application/json"),
        (b'{"instances": [{"user_id": "u"}]}', None),  # no content type: still parsed
        (b"\xff\xfe garbage", None),
        (b'{"instances": []}', "application/json"),
        (b'{"nope": 1}', "application/json"),
        (json.dumps({"instances": [{"user_id": "u"}] * 100}).encode(), "application/json"),
    ],
)
def test_kserve_malformed_bodies_get_4xx(kserve, raw, content_type):
    status, body = post(f"http://127.0.0.1:{kserve.port}/v1/models/hintq:predict", raw, content_type)
    if raw == b'{"instances": [{"user_id": "u"}]}':
        assert status == 200
    else:
        assert 400 <= status < 500 and body


def test_kserve_ctr_v1_and_v2_with_tritonclient(kserve):
    import numpy as np
    import tritonclient.http as httpclient

    rows = [{"query": "tent", "position": 0}, {"query": "red dress", "position": 0, "top_categories_30d": ["c000"]}]
    status, body = post(f"http://127.0.0.1:{kserve.port + 1}/v1/models/ctr:predict", {"instances": rows})
    assert status == 200 and len(body["predictions"]) == 2
    client = httpclient.InferenceServerClient(url=f"127.0.0.1:{kserve.port + 1}")
    assert client.is_model_ready("ctr")
    tensor = httpclient.InferInput("rows", [2], "BYTES")
    tensor.set_data_from_numpy(np.array([json.dumps(r).encode() for r in rows], dtype=object), binary_data=True)
    result = client.infer("ctr", [tensor], outputs=[httpclient.InferRequestedOutput("probability", binary_data=True)])
    probs = result.as_numpy("probability")
    assert probs.shape == (2,) and np.allclose(probs, body["predictions"], atol=1e-5)
    bad = httpclient.InferInput("wrong", [1], "FP32")
    bad.set_data_from_numpy(np.array([1.0], dtype=np.float32))
    from tritonclient.utils import InferenceServerException

    with pytest.raises(InferenceServerException, match="rows"):
        client.infer("ctr", [bad])


def test_kserve_direct_predictor_generates(kserve):
    status, body = post(
        f"http://127.0.0.1:{kserve.port + 1}/v1/models/direct:predict",
        {"instances": [{"user_id": "u", "top_categories_30d": ["c000"], "recent_queries": ["tent"]}]},
    )
    assert status == 200 and isinstance(body["predictions"][0], list)


def test_bentoml_recommend_contract_with_the_bentoml_client(bento, server_home):
    import bentoml

    with bentoml.SyncHTTPClient(f"http://127.0.0.1:{bento.port}") as client:
        answer = client.recommend(user_id=known_user(server_home), k=6)
        check_answer(answer, 6)
        assert not answer["degraded"]
        # the model's own version, as KServe and `aigq recommend` report it (not BentoML's tag)
        assert answer["model_versions"]["ctr"].startswith("ctr@")
        cold = client.recommend(user_id="nobody-at-all", context={"hour": 9})
        check_answer(cold, 8)


@pytest.mark.parametrize("body, field", BAD_REQUESTS)
def test_bentoml_rejects_bad_requests_with_a_message(bento, body, field):
    status, answer = post(f"http://127.0.0.1:{bento.port}/recommend", body)
    assert status == 400 and field in json.dumps(answer)


@pytest.mark.parametrize("raw", [b'{"user_id": ', b"[1, 2]", b"\xff\xfe"])
def test_bentoml_malformed_bodies_get_4xx(bento, raw):
    status, answer = post(f"http://127.0.0.1:{bento.port}/recommend", raw)
    assert 400 <= status < 500 and answer


def test_both_servers_logged_their_answers(bento, kserve, server_home):
    from serving.log import read_log

    log = read_log(f"sqlite:///{server_home / 'serving' / 'log.db'}")
    assert {"bentoml", "kserve"} <= set(log["server"])


def test_bentoml_build_works_offline(bento, server_home):
    """`bentoml build` from the repository root, with the models `aigq serve bento` registered."""
    repo = Path(__file__).resolve().parents[2]
    bin_dir = str(Path(sys.executable).parent)
    env = {
        **os.environ,
        "AIGQ_HOME": str(server_home),
        "BENTOML_HOME": str(server_home / "bentoml"),
        "BENTOML_DO_NOT_TRACK": "true",
        "PATH": bin_dir + os.pathsep + os.environ.get("PATH", ""),
    }
    out = subprocess.run(
        [str(Path(bin_dir) / "bentoml"), "build", "-f", "bentos/bentofile.yaml", "."],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-2000:] + out.stderr[-2000:]
    bentos = list((server_home / "bentoml" / "bentos" / "aigq_hintq").glob("*/bento.yaml"))
    assert bentos and "aigq-ctr" in bentos[0].read_text() and "aigq-direct" in bentos[0].read_text()
