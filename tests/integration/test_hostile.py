"""Hostile input against every HTTP endpoint of both servers: property-based bodies (hypothesis),
an OpenAPI-driven fuzz (schemathesis, from each server's own schema), SQL metacharacters, very
long strings, unicode, control characters and out-of-range numbers. The servers answer 2xx or a
4xx that says what is wrong, never a 5xx; hostile text is stored verbatim (parameterised SQL);
memory stays bounded; planted blocklisted text never reaches an answer or the log."""

from __future__ import annotations

import json
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.integration.servers import HINTQ_PATHS, answer_of, has_message, hintq_body, known_user, post

FUZZ = settings(
    max_examples=60, deadline=None, database=None, derandomize=True, suppress_health_check=list(HealthCheck)
)

HOSTILE_TEXT = [
    "x'; DROP TABLE served_lists; --",
    '" OR 1=1 --',
    "Robert'); DELETE FROM nearline_lists WHERE ('1'='1",
    "%s%s%s%n",
    "{{7*7}}${jndi:ldap://x}",
    "ユーザー🙂\u202eevil",
    "a" * 128,
    "\\x00\\n",
]

json_scalars = (
    st.none() | st.booleans() | st.integers(-(2**70), 2**70) | st.floats(allow_nan=True) | st.text(max_size=300)
)
json_values = st.recursive(
    json_scalars,
    lambda inner: st.lists(inner, max_size=5) | st.dictionaries(st.text(max_size=20), inner, max_size=5),
    max_leaves=20,
)
hostile_strings = (
    st.sampled_from(HOSTILE_TEXT) | st.text(max_size=400) | st.text(alphabet=st.characters(codec="utf-8"), max_size=50)
)
numbers = (
    st.integers(-(2**63), 2**63) | st.floats(allow_nan=True, allow_infinity=True) | st.sampled_from([0, -1, 21, 10**12])
)

# requests shaped like HintQ's, every field hostile or of the wrong type
hintq_like = (
    st.fixed_dictionaries(
        {},
        optional={
            "user_id": hostile_strings | json_values,
            "k": numbers | json_values,
            "context": st.fixed_dictionaries(
                {},
                optional={
                    "hour": numbers | json_values,
                    "session_queries": st.lists(hostile_strings, max_size=30) | json_values,
                    "categories": st.lists(hostile_strings, max_size=30) | json_values,
                },
            )
            | json_values,
        },
    )
    | json_values
)


def check_status(status: int, body, what: str) -> None:
    assert status < 500, f"{what}: {status} {str(body)[:300]}"
    if status >= 400:
        assert has_message(body), f"{what}: a {status} without a message: {body!r}"[:400]


def test_bentoml_recommend_under_property_based_bodies(bento):
    @FUZZ
    @given(body=hintq_like)
    def check(body):
        status, answer = post(bento.url("/recommend"), body)
        check_status(status, answer, f"POST /recommend {body!r}"[:200])

    check()


def test_kserve_endpoints_under_property_based_bodies(kserve):
    endpoints = [
        kserve.url("/v1/models/hintq:predict"),
        kserve.url("/v2/models/hintq/infer"),
        kserve.url("/v1/models/ctr:predict", 1),
        kserve.url("/v2/models/ctr/infer", 1),
        kserve.url("/v1/models/direct:predict", 1),
    ]

    @FUZZ
    @given(
        url=st.sampled_from(endpoints),
        instances=st.lists(hintq_like, min_size=0, max_size=3) | json_values,
        wrap=st.sampled_from(["instances", "inputs", None]),
    )
    def check(url, instances, wrap):
        body = {wrap: instances} if wrap else instances
        status, answer = post(url, body)
        check_status(status, answer, f"POST {url} {body!r}"[:200])

    check()


def run_schemathesis(schema_url: str, base_url: str, max_examples: int) -> tuple[int, int, list[str]]:
    """Every operation of the server's OpenAPI schema, positive and negative cases; returns
    (cases run, operations, failures). A failure: a 5xx, a 4xx without a message, or an answer the
    published schema does not describe (status code, content type, body)."""
    import schemathesis
    from hypothesis.errors import Unsatisfiable
    from schemathesis import GenerationMode
    from schemathesis.specs.openapi.checks import (
        content_type_conformance,
        response_schema_conformance,
        status_code_conformance,
    )

    conformance = (response_schema_conformance, status_code_conformance, content_type_conformance)

    schema = schemathesis.openapi.from_url(schema_url, wait_for_schema=30)
    cases, failures, operations = 0, [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):

            @settings(
                max_examples=max_examples,
                deadline=None,
                database=None,
                derandomize=True,
                suppress_health_check=list(HealthCheck),
            )
            @given(case=operation.as_strategy(generation_mode=mode))
            def call(case):
                nonlocal cases
                cases += 1
                response = case.call(base_url=base_url, timeout=30)
                try:
                    body = response.json()
                except ValueError:
                    body = response.text
                if response.status_code >= 500 or (response.status_code >= 400 and not has_message(body)):
                    failures.append(f"{case.method} {case.formatted_path} -> {response.status_code} {str(body)[:200]}")
                for check in conformance:
                    try:
                        case.validate_response(response, checks=[check])
                    except BaseException as e:  # noqa: BLE001 - schemathesis raises failure groups
                        failures.append(
                            f"{case.method} {case.formatted_path} -> {response.status_code}: {check.__name__}: "
                            f"{str(e).splitlines()[0][:120]} {str(body)[:150]}"
                        )

            try:
                call()
            except Unsatisfiable:  # no case of this mode exists (e.g. nothing to make invalid)
                pass
    return cases, operations, failures


def test_schemathesis_fuzz_of_the_bentoml_openapi_schema(bento):
    cases, operations, failures = run_schemathesis(bento.url("/docs.json"), bento.url(""), max_examples=40)
    print(f"schemathesis BentoML: {cases} cases over {operations} operations, {len(failures)} failures")
    assert operations >= 1 and cases >= 40
    assert not failures, "\n".join(failures[:10])


@pytest.mark.parametrize("offset", [0, 1], ids=["transformer", "predictor"])
def test_schemathesis_fuzz_of_the_kserve_openapi_schema(kserve, offset):
    cases, operations, failures = run_schemathesis(
        kserve.url("/openapi.json", offset), kserve.url("", offset), max_examples=15
    )
    print(f"schemathesis KServe port+{offset}: {cases} cases over {operations} operations, {len(failures)} failures")
    assert operations >= 5 and cases >= 5 * operations
    assert not failures, "\n".join(failures[:10])


@pytest.mark.parametrize("server", ["bento", "kserve"])
@pytest.mark.parametrize("user_id", HOSTILE_TEXT)
def test_sql_metacharacters_and_unicode_ids_are_answered_and_logged_verbatim(request, server, user_id, server_home):
    from serving.log import read_log

    srv = request.getfixturevalue(server)
    status, body = post(srv.url(HINTQ_PATHS[server]), hintq_body(server, {"user_id": user_id, "k": 3}))
    assert status == 200, body
    answer = answer_of(body)
    assert len(answer["suggestions"]) == 3 and not answer["degraded"]
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:  # the log is written off the request path
        log = read_log(f"sqlite:///{server_home / 'serving' / 'log.db'}")
        row = log[log["request_id"] == answer["request_id"]]
        if len(row):
            break
        time.sleep(0.2)
    assert row["user_id"].tolist() == [user_id]  # stored as given: no injection, no mangling


@pytest.mark.parametrize("server", ["bento", "kserve"])
@pytest.mark.parametrize(
    "request_body, field",
    [
        ({"user_id": "u\x00\x1b[31m"}, "user_id"),
        ({"user_id": "u" * 100_000}, "user_id"),
        ({"user_id": "u", "k": -1}, "k"),
        ({"user_id": "u", "k": 2**64}, "k"),
        ({"user_id": "u", "k": 1e308}, "k"),
        ({"user_id": "u", "context": {"hour": -(2**40)}}, "hour"),
        ({"user_id": "u", "context": {"session_queries": ["q" * 5000]}}, "session_queries"),
        ({"user_id": "u", "context": {"categories": [None]}}, "categories"),
        ({"user_id": ["u"]}, "user_id"),
    ],
)
def test_out_of_range_and_control_characters_get_a_400_naming_the_field(request, server, request_body, field):
    srv = request.getfixturevalue(server)
    status, body = post(srv.url(HINTQ_PATHS[server]), hintq_body(server, request_body))
    assert status == 400 and field in json.dumps(body), (status, str(body)[:300])


def server_rss_mb(proc) -> float:
    import psutil

    root = psutil.Process(proc.pid)
    return sum(p.memory_info().rss for p in [root, *root.children(recursive=True)]) / 2**20


@pytest.mark.parametrize("server", ["bento", "kserve"])
def test_huge_bodies_get_4xx_and_memory_stays_bounded(request, server):
    srv = request.getfixturevalue(server)
    url = srv.url(HINTQ_PATHS[server])
    big_id = hintq_body(server, {"user_id": "x" * (8 << 20)})  # 8 MiB strings
    big_list = hintq_body(server, {"user_id": "u", "context": {"session_queries": ["q"] * 1_000_000}})
    for body in (big_id, big_list):  # warm: the first large body grows the allocator's pools once
        post(url, body, timeout=60)
    before = server_rss_mb(srv.proc)
    for _ in range(6):
        for body in (big_id, big_list):
            status, answer = post(url, body, timeout=60)
            assert 400 <= status < 500 and has_message(answer), (status, str(answer)[:200])
    growth = server_rss_mb(srv.proc) - before
    print(f"{server}: RSS growth after 12 hostile 8 MB bodies: {growth:.0f} MB")
    assert growth < 300, f"{server} grew {growth:.0f} MB over 12 large bodies"
    status, body = post(url, hintq_body(server, {"user_id": "after-the-storm", "k": 2}))
    assert status == 200 and len(answer_of(body)["suggestions"]) == 2


@pytest.mark.parametrize("server", ["bento", "kserve"])
def test_blocklisted_text_planted_in_model_output_never_reaches_an_http_answer_or_the_log(
    request, server, server_home, monkeypatch
):
    """A Direct list and a Think mapping carrying blocklisted and control-character text are pushed
    to the online store the running server reads; the answer and the log stay clean."""
    import pandas as pd
    from feast.data_source import PushMode

    from core import feature_store
    from serving.candidates import load_blocklist
    from serving.log import read_log

    monkeypatch.setenv("AIGQ_HOME", str(server_home))
    srv = request.getfixturevalue(server)
    banned = load_blocklist()[0]
    planted = [f"cheap {banned} deals", "line\nbreak query", "x" * 500]
    user = known_user(server_home)
    # the trigger must name something the shop sells (other session text is no Think trigger)
    trigger = pd.read_parquet(server_home / "data" / "queries.parquet")["query"].iloc[-1]
    fs = feature_store.open_store("sqlite")
    now = pd.Timestamp.now(tz="UTC")
    fs.push(
        "direct_candidates_push",
        pd.DataFrame(
            {
                "user_id": [user],
                "direct_queries": [planted[:2] + ["tent"]],
                "direct_model_version": ["planted"],
                "event_timestamp": [now],
            }
        ),
        to=PushMode.ONLINE,
    )
    fs.push(
        "think_mappings_push",
        pd.DataFrame(
            {
                "trigger": [trigger],
                "think_queries": [planted[1:] + [f"{banned}"]],
                "think_rationale": ["planted"],
                "think_model_version": ["planted-think"],
                "event_timestamp": [now],
            }
        ),
        to=PushMode.ONLINE,
    )
    request_body = {"user_id": user, "k": 20, "context": {"session_queries": [trigger]}}
    status, body = post(srv.url(HINTQ_PATHS[server]), hintq_body(server, request_body))
    assert status == 200
    answer = answer_of(body)
    assert answer["model_versions"].get("direct") == "planted"  # the planted lists were read
    assert answer["model_versions"].get("think") == "planted-think"
    served = [s["query"] for s in answer["suggestions"]]
    assert served and not any(banned in q.lower() or "\n" in q or len(q) > 100 for q in served)
    time.sleep(1.5)
    log = read_log(f"sqlite:///{server_home / 'serving' / 'log.db'}")
    logged = [q for qs in log[log["request_id"] == answer["request_id"]]["queries"] for q in qs]
    assert logged == served


@pytest.mark.parametrize("offset, model", [(0, "hintq"), (1, "ctr")])
def test_kserve_models_cannot_be_unloaded_or_versioned_over_http(kserve, offset, model):
    """KServe's model repository routes would let any client unload the serving model: gone.
    A versioned URL is a 404 with a message (KServe's own answer is a 501)."""
    for action in ("unload", "load"):
        status, body = post(kserve.url(f"/v2/repository/models/{model}/{action}", offset), {})
        assert status == 404, (action, status, body)
    status, body = post(
        kserve.url(f"/v2/models/{model}/versions/7/infer", offset),
        {"inputs": [{"name": "rows", "shape": [1], "datatype": "BYTES", "data": ["{}"]}]},
    )
    assert status == 404 and has_message(body)
    with __import__("urllib.request").request.urlopen(kserve.url(f"/v2/models/{model}/ready", offset)) as r:
        assert r.status == 200  # still serving
