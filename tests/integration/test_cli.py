"""The `aigq` command line as a user runs it: the demo end to end, and one-line errors."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

AIGQ = str(Path(sys.executable).parent / "aigq")


def run(*args, home: Path, timeout: int = 600, **env):
    return subprocess.run(
        [AIGQ, *args],
        env={**os.environ, "AIGQ_HOME": str(home), **env},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def test_demo_runs_end_to_end_on_the_tiny_profile(tmp_path):
    out = run("demo", "--profile", "tiny", home=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "AIGQ demo summary" in out.stdout
    for path in (
        "data/events.parquet",
        "features/user_interests.parquet",
        "feast/registry.db",
        "feast/online_store.db",
        "frames/ctr.parquet",
        "frames/sft_contexts.parquet",
        "world/world.json",
        "think/mappings.parquet",
        "nearline/state.db",
        "serving/log.db",
        "reports/eval.json",
        "monitoring/scenario_log.db",
        "monitoring/latest.json",
        "monitoring/workspace",
    ):
        assert (tmp_path / path).exists(), path
    assert "Traceback" not in out.stderr
    assert "hybrid" in out.stdout and "think" in out.stdout
    assert "aigq monitor ui" in out.stdout and "monitoring   :" in out.stdout
    user = next(
        line.split("aigq recommend ")[1].split("`")[0] for line in out.stdout.splitlines() if "aigq recommend " in line
    )
    answer = run("recommend", user, "--k", "4", "--json", home=tmp_path)
    assert answer.returncode == 0, answer.stderr[-2000:]
    import json

    body = json.loads(answer.stdout)
    assert len(body["suggestions"]) == 4 and not body["degraded"]


@pytest.mark.parametrize(
    "args,needle",
    [
        (["simulate", "--profile", "huge"], "unknown profile 'huge'; choose one of tiny, demo, large"),
        (["simulate", "--set", "seed=abc"], "config key 'seed': 'abc' is not a valid int"),
        (["simulate", "--config", "/nonexistent.yaml"], "/nonexistent.yaml: config file not found"),
        (["ingest", "/nonexistent/logs"], "/nonexistent/logs: not a directory"),
        (["features", "apply"], "feature tables missing under"),
        (["features", "materialize", "--set", "store=oracle"], "unknown feature store 'oracle'"),
        (["recommend", "u1", "--k", "99"], "k: an integer between 1 and 20"),
        (["recommend", "u1", "--context", "{bad"], "--context: not JSON"),
        (["recommend", "u1", "--context", '{"hour": 25}'], "context.hour"),
        (["recommend", "u1"], "no catalogue; run `aigq simulate`"),
        (["nearline"], "no Direct model under"),
        (["think"], "events.parquet: missing"),
    ],
)
def test_bad_input_is_one_line_naming_the_culprit(tmp_path, args, needle):
    out = run(*args, home=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("aigq: error: ") and needle in lines[0], out.stderr


def test_unknown_flag_is_rejected_by_argparse(tmp_path):
    out = run("simulate", "--nope", home=tmp_path)
    assert out.returncode == 2 and "unrecognized arguments: --nope" in out.stderr
