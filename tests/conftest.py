"""Shared fixtures: a tiny simulated world under a temporary $AIGQ_HOME, and service checks."""

from __future__ import annotations

import os
import socket
from pathlib import Path

import pytest

# Every test world ends on a pinned date: nothing a test checks may depend on the day or the hour
# the suite runs (tests/unit/test_calendar.py runs the day-sensitive parts at other dates/hours).
TINY_END_DATE = "2026-11-18"


def service_up(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


def require_services(*services: tuple[str, str, int]) -> None:
    """Skip when a service is absent, unless AIGQ_REQUIRE_SERVICES is set (CI): then fail."""
    down = [name for name, host, port in services if not service_up(host, port)]
    if down:
        msg = f"services not reachable: {', '.join(down)}"
        if os.environ.get("AIGQ_REQUIRE_SERVICES"):
            pytest.fail(msg + " (AIGQ_REQUIRE_SERVICES is set)")
        pytest.skip(msg)


POSTGRES = ("PostgreSQL", "127.0.0.1", 5432)
REDIS = ("Redis", "127.0.0.1", 6379)


@pytest.fixture(scope="session", autouse=True)
def isolated_home(tmp_path_factory):
    """Every test starts from an empty $AIGQ_HOME: nothing reads or writes the developer's
    ./artifacts, so a path computed outside a test's own home fails here as on a fresh clone."""
    old = os.environ.get("AIGQ_HOME")
    os.environ["AIGQ_HOME"] = str(tmp_path_factory.mktemp("empty_home"))
    yield
    if old is None:
        os.environ.pop("AIGQ_HOME", None)
    else:
        os.environ["AIGQ_HOME"] = old


@pytest.fixture
def aigq_home(tmp_path, monkeypatch) -> Path:
    home = tmp_path / "home"
    monkeypatch.setenv("AIGQ_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def tiny_world(tmp_path_factory) -> Path:
    """A `tiny` world simulated once per test session (logs + feature tables); read-only."""
    from pipelines import simulate
    from pipelines.feature_tables import build_feature_tables

    home = tmp_path_factory.mktemp("tiny_world")
    old = os.environ.get("AIGQ_HOME")
    os.environ["AIGQ_HOME"] = str(home)
    try:
        simulate.main(simulate.SimulateConfig(profile="tiny", end_date=TINY_END_DATE))
        build_feature_tables(home / "data", home / "features")
    finally:
        if old is None:
            os.environ.pop("AIGQ_HOME", None)
        else:
            os.environ["AIGQ_HOME"] = old
    return home


@pytest.fixture
def tiny_home(tiny_world, tmp_path, monkeypatch) -> Path:
    """A private copy of the tiny world as $AIGQ_HOME (tests may write to it)."""
    import shutil

    home = tmp_path / "home"
    shutil.copytree(tiny_world, home)
    monkeypatch.setenv("AIGQ_HOME", str(home))
    return home


@pytest.fixture(scope="session")
def direct_home(tiny_world, tmp_path_factory):
    """A tiny world with its Feast frames, a CTR model, a tiny base LM and an IL-SFT model, built
    once per test session (tiny sizes, a few steps each)."""
    import shutil

    from core import feature_store
    from pipelines import features, train_base, train_ctr, train_sft, training_frames

    home = tmp_path_factory.mktemp("direct_home")
    shutil.copytree(tiny_world, home, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(home))
        features.apply("sqlite")
        fs = feature_store.open_store("sqlite")
        frames = home / "frames"
        frames.mkdir()
        training_frames.sft_context_frame(fs).to_parquet(frames / "sft_contexts.parquet")
        ctr_frame = training_frames.ctr_training_frame(fs)
        ctr_cfg = train_ctr.TrainCTRConfig(test_days=3, epochs=8, batch_size=256)
        ctr = train_ctr.main(ctr_cfg, ctr_frame)
        base = train_base.main(
            train_base.TrainBaseConfig(
                steps=60, vocab_size=800, hidden_size=64, batch_size=16, block_size=64, warmup_steps=5
            )
        )
        sft_cfg = train_sft.TrainSFTConfig(trl={"max_steps": 30, "per_device_train_batch_size": 8}, max_samples=400)
        sft = train_sft.main(sft_cfg)
        dirs = {"sft_dir": train_sft.model_dir(sft_cfg), "ctr_dir": train_ctr.model_dir(ctr_cfg)}
    return {"home": home, "base": base, "sft": sft, "ctr": ctr, "ctr_frame": ctr_frame, "ctr_cfg": ctr_cfg, **dirs}


@pytest.fixture(scope="session")
def served_home(direct_home, tmp_path_factory):
    """direct_home plus what serving reads: the online store materialized, Think mappings and a
    nearline run pushed to Feast. Read-only for tests (copy it to write)."""
    import shutil

    from pipelines import features, nearline, think

    home = tmp_path_factory.mktemp("served_home")
    shutil.copytree(direct_home["home"], home, dirs_exist_ok=True)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(home))
        features.apply("sqlite")  # the registry's paths point into this home
        features.materialize("sqlite")
        think_summary = think.main(
            think.ThinkConfig(
                trl={"max_steps": 20}, max_triggers=120, min_support=2, gen_batch_size=40, max_new_tokens=48
            )
        )
        run = nearline.main(nearline.NearlineConfig(batch_size=32))
    return {**direct_home, "home": home, "think": think_summary, "nearline": run}
