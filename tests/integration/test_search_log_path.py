"""A shop's own search log to served suggestions, as a new user would run it: a small
hand-written log with no impressions, no profile and no item attributes (some queries not in
English) through `aigq ingest` -> features -> CTR (from next searches), base LM, IL-SFT, Think,
nearline -> evaluate -> `aigq recommend` -> both servers."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from servers.launch import spawn, stop_spawned

from tests.integration.servers import HINTQ_PATHS, answer_of, free_port, hintq_body, post
from tests.search_log_data import write_search_log

AIGQ = str(Path(sys.executable).parent / "aigq")
STEPS = [
    ["features", "build"],
    ["features", "apply"],
    ["features", "materialize"],
    ["features", "frames"],
    ["train", "ctr", "--set", "test_days=3", "--set", "epochs=8"],
    ["train", "base", *"--set steps=60 --set vocab_size=800 --set hidden_size=64 --set batch_size=16".split()],
    ["train", "sft", "--set", "trl.max_steps=30", "--set", "max_samples=400"],
    ["think", "--set", "trl.max_steps=20", "--set", "max_triggers=60", "--set", "min_support=2"],
    ["nearline"],
    ["evaluate"],
]


def aigq(home: Path, *args: str, stdout_only: bool = False) -> str:
    out = subprocess.run(
        [AIGQ, *args], capture_output=True, text=True, timeout=600, env={**os.environ, "AIGQ_HOME": str(home)}
    )
    assert out.returncode == 0, f"aigq {' '.join(args)}: {out.stderr[-2000:]}"
    return out.stdout if stdout_only else out.stdout + out.stderr


@pytest.fixture(scope="module")
def real_log_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("real_log") / "home"
    log = write_search_log(tmp_path_factory.mktemp("shop") / "search_log.csv")
    printed = {"ingest": aigq(home, "ingest", str(log))}
    for step in STEPS:
        printed[" ".join(step[:2])] = aigq(home, *step)
    return home, printed


def test_a_search_log_goes_through_every_stage(real_log_home):
    home, printed = real_log_home
    assert pd.read_parquet(home / "data" / "hintq_impressions.parquet").empty
    assert "feature tables built" in printed["features build"]
    assert json.loads((home / "models" / "ctr" / "metrics.json").read_text())["samples"].startswith("next searches")
    assert "Samples: next searches" in (home / "models" / "ctr" / "README.md").read_text()
    report = json.loads((home / "reports" / "eval.json").read_text())
    policies = report["policies"]
    assert "legacy" not in policies  # nothing to replay
    assert {"popularity", "mf", "direct_sft", "think", "hybrid"} <= set(policies)
    for slices in policies.values():
        assert set(slices) >= {"all", "cold", "regular"}
        assert 0 <= slices["all"]["hit_rate@8"] <= 1 and "mrr@8" in slices["all"]
    md = (home / "reports" / "eval.md").read_text()
    headers = [line for line in md.splitlines() if line.startswith("| policy")]
    assert len(headers) >= 3 and all("mrr@8" in h and "sim_ctr" not in h and "serendipity" not in h for h in headers)
    assert " nan " not in md
    assert "mrr@8" in printed["evaluate"] and "nan" not in printed["evaluate"]


def test_aigq_recommend_answers_known_and_new_users(real_log_home):
    home, _ = real_log_home
    for user in ("shopper001", "never-seen"):
        # --json: the answer alone on stdout (model loading may report on stderr)
        answer = json.loads(aigq(home, "recommend", user, "--k", "5", "--json", stdout_only=True))
        assert len(answer["suggestions"]) == 5 and not answer["degraded"], answer


@pytest.mark.parametrize("server", ["bento", "kserve"])
def test_both_servers_serve_the_search_log_home(real_log_home, server):
    home, _ = real_log_home
    proc = spawn(server, port := free_port(), home)
    try:
        url = f"http://127.0.0.1:{port}{HINTQ_PATHS[server]}"
        context = {"session_queries": ["连衣裙"]}
        for user in ("shopper001", "never-seen"):
            status, body = post(url, hintq_body(server, {"user_id": user, "k": 6, "context": context}))
            assert status == 200, body
            answer = answer_of(body)
            queries = [s["query"] for s in answer["suggestions"]]
            assert len(queries) == 6 and "连衣裙" not in queries and not answer["degraded"], answer
    finally:
        stop_spawned(proc)
