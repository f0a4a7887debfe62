"""Shared fixtures: a tiny simulated world under a temporary $AIGQ_HOME, and service checks."""

from __future__ import annotations

import os
import socket
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest

TINY_END_DATE = (datetime.now(timezone.utc).date()).isoformat()


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


def days_ago(n: float) -> datetime:
    return datetime.now(timezone.utc) - timedelta(days=n)
