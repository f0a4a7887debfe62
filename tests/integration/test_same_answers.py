"""One request path: BentoML, KServe and the in-process path (`aigq recommend`'s) give the same
answer for the same request and state, over a few hundred requests: known users with and without
context, unknown users, and users the nearline job has not reached (their Direct list is
generated on the request path: BentoML's Direct service, KServe's predictor, in process)."""

from __future__ import annotations

import random

import pandas as pd
import pytest

from serving.config import ServingConfig
from serving.hintq import HintQ

from tests.integration.servers import HINTQ_PATHS, answer_of, hintq_body, post


def comparable(answer: dict) -> dict:
    """The answer without its request id (new for every request)."""
    return {k: v for k, v in answer.items() if k != "request_id"}


@pytest.fixture(scope="module")
def in_process(server_home, monkeypatch_module):
    monkeypatch_module.setenv("AIGQ_HOME", str(server_home))
    hintq = HintQ(ServingConfig(log=False))
    yield hintq
    hintq.close()


@pytest.fixture(scope="module")
def monkeypatch_module():
    with pytest.MonkeyPatch.context() as mp:
        yield mp


def nearline_misses(hintq: HintQ, users: list[str]) -> list[str]:
    """Known users (profile or events) without a nearline Direct list in the online store."""
    out = hintq.store.get_online_features(
        features=hintq.user_service, entity_rows=[{"user_id": u, "request_hour": 12} for u in users]
    ).to_dict()
    return [
        u
        for i, u in enumerate(users)
        if (out["n_events_30d"][i] is not None or out["gender"][i] is not None) and not out["direct_queries"][i]
    ]


def request_mix(home, hintq: HintQ, n: int = 240, seed: int = 7) -> tuple[list[dict], list[str]]:
    rng = random.Random(seed)
    users = sorted(pd.read_parquet(home / "data" / "users.parquet")["user_id"])
    misses = nearline_misses(hintq, users)
    queries = sorted(pd.read_parquet(home / "data" / "queries.parquet")["query"])
    categories = sorted(pd.read_parquet(home / "data" / "categories.parquet")["category_id"])
    requests = []
    for i in range(n):
        kind = i % 6
        user = (
            rng.choice(misses)
            if kind == 0 and misses
            else f"visitor-{rng.randrange(10**6)}"
            if kind == 1
            else rng.choice(users)
        )
        request = {"user_id": user, "k": rng.choice([3, 8, 12]), "context": {"hour": rng.randrange(24)}}
        if kind in (2, 3):
            request["context"]["session_queries"] = rng.sample(queries, 2)
        if kind == 3:
            request["context"]["categories"] = rng.sample(categories, 1)
        requests.append(request)
    return requests, misses


def test_bentoml_kserve_and_in_process_answer_alike(bento, kserve, in_process, server_home):
    requests, misses = request_mix(server_home, in_process)
    assert misses, "the served world should hold known users the nearline job has not reached"
    generated = 0
    for request in requests:
        expected = comparable(in_process.recommend(request))
        for server in (bento, kserve):
            status, body = post(server.url(HINTQ_PATHS[server.name]), hintq_body(server.name, request))
            assert status == 200, (server.name, request, body)
            assert comparable(answer_of(body)) == expected, (server.name, request)
        if request["user_id"] in misses:
            assert any(s["source"] == "direct" for s in expected["suggestions"]), request
            generated += 1
    assert generated >= 10
