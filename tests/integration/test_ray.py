"""The Ray column of the scale-out table, on local Ray capped at 2 CPUs: the same feature tables,
nearline lists, Think mappings and experiment figures as the embedded path, exactly-once state
when a Ray run dies half way, and one clear line when RAY_ADDRESS points at nothing.
`pytest -m ray` runs these alone."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest
import sqlalchemy as sa

from core.errors import AigqError
from pipelines import experiment, nearline
from pipelines.feature_tables import build_feature_tables

pytestmark = pytest.mark.ray


@pytest.fixture(scope="module", autouse=True)
def ray_stops_after_these_tests():
    """A stage leaves Ray running for the rest of its process (`core.engine.ensure_ray`); here
    that would be the rest of the suite, whose tests would share two cores with Ray's idle
    daemons. Stop it once this module is done."""
    yield
    import ray

    ray.shutdown()


AIGQ = str(Path(sys.executable).with_name("aigq"))
TABLES = ("user_profile", "user_interests", "query_stats", "session_features", "direct_candidates", "think_mappings")


def comparable(frame: pd.DataFrame, name: str) -> pd.DataFrame:
    key = ["session_id", "event_timestamp"] if name == "session_features" else list(frame.columns[:2])
    return frame.sort_values(key).reset_index(drop=True).astype(str)


def test_feature_tables_on_ray_equal_the_embedded_ones(tiny_world, tmp_path):
    """Ray Data tasks over 6 partitions of users vs this process over one: row for row."""
    local = tmp_path / "local"
    on_ray = tmp_path / "ray"
    build_feature_tables(tiny_world / "data", local, engine="local", partition_users=100_000)
    counts = build_feature_tables(tiny_world / "data", on_ray, engine="ray", partition_users=50)
    assert counts["user_interests"] > 0 and counts["session_features"] > 0
    for name in TABLES:
        a = comparable(pd.read_parquet(local / f"{name}.parquet"), name)
        b = comparable(pd.read_parquet(on_ray / f"{name}.parquet"), name)
        pd.testing.assert_frame_equal(a, b, obj=name)


def stored_lists(home: Path) -> pd.DataFrame:
    engine = sa.create_engine(f"sqlite:///{home / 'nearline' / 'state.db'}")
    try:
        with engine.connect() as conn:
            return pd.DataFrame(conn.execute(sa.select(nearline.lists)).mappings().all())
    finally:
        engine.dispose()


def test_nearline_on_ray_killed_half_way_writes_every_user_once_with_the_local_lists(
    served_home, tmp_path, monkeypatch
):
    home = tmp_path / "home"
    shutil.copytree(served_home["home"], home)
    monkeypatch.setenv("AIGQ_HOME", str(home))
    (home / "nearline" / "state.db").unlink()  # no watermark: a full first run
    cfg = nearline.NearlineConfig(engine="ray", batch_size=16)

    def die(i: int) -> None:
        if i == 3:
            raise RuntimeError("killed half way")

    with pytest.raises(RuntimeError, match="killed half way"):
        nearline.main(cfg, on_batch=die)
    half = stored_lists(home)
    assert 0 < len(half) < served_home["nearline"]["users"]

    summary = nearline.main(cfg)
    assert summary["status"] == "done" and summary["users"] == served_home["nearline"]["users"]
    rows = stored_lists(home)
    assert rows["user_id"].is_unique and len(rows) == summary["users"] and rows["pushed"].all()
    assert summary["generated"] == summary["users"] - len(half)  # the second run did only the rest

    # the same prompts give the same lists on Ray (batches of 16) as in process (batches of 32)
    local = stored_lists(served_home["home"]).set_index("user_id")["queries"]
    assert rows.set_index("user_id")["queries"].sort_index().equals(local.sort_index())
    assert nearline.main(cfg)["status"] == "up to date"


def test_ray_address_pointing_at_nothing_fails_in_one_line_before_any_work(tiny_home, monkeypatch):
    monkeypatch.setenv("RAY_ADDRESS", "127.0.0.1:9")
    with pytest.raises(AigqError, match=r"RAY_ADDRESS=127.0.0.1:9: no Ray cluster answers there"):
        build_feature_tables(tiny_home / "data", tiny_home / "features_ray", engine="ray")
    assert not (tiny_home / "features_ray").exists()

    done = subprocess.run(
        [AIGQ, "--engine", "ray", "nearline"],
        env={**os.environ, "RAY_ADDRESS": "ray://127.0.0.1:9"},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "aigq: error: RAY_ADDRESS=ray://127.0.0.1:9: no Ray cluster answers there (Connection refused)"
    ]
    assert not (tiny_home / "nearline" / "state.db").exists()


def test_think_batch_on_ray_equals_the_local_batch(served_home, monkeypatch):
    """The offline Think batch: the same mappings from Ray actors (batches of 8) as in process."""
    from core.catalogue import QueryCatalogue
    from models.generator import DirectGenerator, GenerationConfig
    from pipelines import think

    home = served_home["home"]
    monkeypatch.setenv("AIGQ_HOME", str(home))
    events, catalogue = think.load_logs()
    triggers = think.frequent_triggers(events, 30)
    popular = think.category_popular(events, 8)
    fallbacks = {t: popular.get(think.trigger_category(catalogue, t) or "", []) for t in triggers}
    gen_config = GenerationConfig(k=8, max_new_tokens=48, batch_size=16, seed=0, temperature=0.7)
    model = think.model_dir()
    local = think.generate_mappings(
        DirectGenerator(model, gen_config, is_valid=QueryCatalogue.load(home / "data").is_valid),
        catalogue,
        triggers,
        fallbacks,
        16,
    )
    on_ray = think.ray_generate_mappings(model, gen_config, triggers, fallbacks, 8)
    assert list(on_ray["trigger"]) == triggers
    assert on_ray["think_queries"].map(len).between(1, 8).all()
    pd.testing.assert_frame_equal(local.astype(str), on_ray[local.columns].astype(str))


def test_experiment_runs_fan_out_on_ray_with_the_local_figures(tmp_path, monkeypatch):
    """Two baselines-only runs as Ray tasks side by side (1 CPU each) give the figures the local
    loop gives; a run that fails names its log in one line."""
    figures = {}
    for engine in ("local", "ray"):
        monkeypatch.setenv("AIGQ_HOME", str(tmp_path / engine))
        doc = experiment.main(experiment.ExperimentConfig(seeds=[1, 2], profile="tiny", models=False, engine=engine))
        figures[engine] = doc["summary"]
    assert json.dumps(figures["ray"]) == json.dumps(figures["local"])
    assert {"popularity_segment", "oracle"} <= set(figures["ray"]["world_v2"])

    monkeypatch.setenv("AIGQ_HOME", str(tmp_path / "broken"))
    bad = experiment.ExperimentConfig(seeds=[1], profile="no-such-profile", models=False, engine="ray")
    with pytest.raises(AigqError, match=r"experiment run world_v2 seed 1 failed: see .*experiment\.log"):
        experiment.main(bad)
