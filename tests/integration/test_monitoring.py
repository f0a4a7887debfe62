"""Monitoring end to end on the tiny world: a drift scenario written to a serving log, Evidently
reports, the gate (passes on healthy days, fails on degraded ones naming diversity), the
dashboard deployed twice (idempotent), `evidently ui` queried over its API, and a headless
Chromium screenshot of the dashboard that is not blank."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from monitoring import dashboards, reports
from monitoring.screenshot import find_chromium, not_blank, screenshot
from pipelines import scenario

AIGQ = str(Path(sys.executable).with_name("aigq"))


@pytest.fixture(scope="module")
def monitored(served_home, tmp_path_factory):
    home = tmp_path_factory.mktemp("monitored") / "home"
    shutil.copytree(served_home["home"], home)
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AIGQ_HOME", str(home))
        out = scenario.main(scenario.ScenarioConfig(days=4, requests_per_day=150, degrade_from_day=2))
        cfg = reports.MonitorConfig(reference_days=1)
        deployed = dashboards.deploy(cfg)
        again = dashboards.deploy(cfg)
    return {"home": home, "scenario": out, "cfg": cfg, "deployed": deployed, "again": again}


def gate(home: Path, day: str):
    return subprocess.run(
        [AIGQ, "monitor", "gate", "--set", "reference_days=1", "--set", f"current_day={day}"],
        env={**os.environ, "AIGQ_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_gate_passes_on_healthy_days_and_fails_on_degraded_ones_naming_diversity(monitored):
    days = monitored["scenario"]["days"]
    healthy, degraded = days[1], days[2]  # day 0 is the reference; the model loses diversity from day 2
    ok = gate(monitored["home"], healthy)
    assert ok.returncode == 0, ok.stderr[-2000:]
    bad = gate(monitored["home"], degraded)
    assert bad.returncode == 1
    failures = [line for line in bad.stderr.splitlines() if line.startswith("aigq monitor gate: FAIL")]
    assert failures and all("diversity" in f for f in failures)
    assert (monitored["home"] / "monitoring" / f"report_{degraded}.html").exists()
    summary = json.loads((monitored["home"] / "monitoring" / "latest.json").read_text())
    assert summary["means"]["current"]["distinct_categories"] < summary["means"]["reference"]["distinct_categories"]


def test_deploy_is_idempotent(monitored):
    first, second = monitored["deployed"], monitored["again"]
    assert first["project_id"] == second["project_id"] and first["days"] == second["days"] == 3
    from evidently.ui.workspace import Workspace

    ws = Workspace(second["workspace"])
    assert len(ws.list_runs(second["project_id"])) == 3
    assert len(ws.search_project(dashboards.PROJECT)) == 1
    assert second["gate"][monitored["scenario"]["days"][1]] == []
    assert any("diversity" in f for f in second["gate"][monitored["scenario"]["days"][3]])


@pytest.fixture(scope="module")
def ui(monitored):
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen(
        [AIGQ, "monitor", "ui", "--port", str(port), "--set", "reference_days=1"],
        env={**os.environ, "AIGQ_HOME": str(monitored["home"])},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/api/projects", timeout=2) as r:
                projects = json.loads(r.read())
                break
        except OSError:
            time.sleep(0.5)
    else:
        os.killpg(proc.pid, signal.SIGTERM)
        raise AssertionError("evidently ui did not start")
    yield {"port": port, "project": projects[0]["id"]}
    os.killpg(proc.pid, signal.SIGTERM)
    proc.wait(timeout=30)


def test_the_ui_serves_the_dashboard_series(ui, monitored):
    body = {
        "series_filter": [
            {
                "tags": [],
                "metadata": {},
                "metric": "evidently:metric_v2:MeanValue",
                "metric_labels": {"column": "distinct_categories"},
            }
        ]
    }
    req = urllib.request.Request(
        f"http://127.0.0.1:{ui['port']}/api/v2/snapshots/{ui['project']}/data_series_batch",
        data=json.dumps(body).encode(),
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(req, timeout=30) as r:
        series = json.loads(r.read())
    values = series["series"][0]["values"]
    assert len(values) == 3 and values[-1] < values[0]  # the drop is on the dashboard
    with urllib.request.urlopen(f"http://127.0.0.1:{ui['port']}/api/v2/dashboards/{ui['project']}", timeout=30) as r:
        panels = json.loads(r.read())["panels"]
    assert {"Diversity by day", "Relevance by day", "Source mix"} <= {p["title"] for p in panels}


def test_a_headless_chromium_screenshot_of_the_dashboard_is_not_blank(ui, monitored):
    if find_chromium() is None:
        if os.environ.get("AIGQ_REQUIRE_SERVICES"):
            pytest.fail("chromium is not installed (AIGQ_REQUIRE_SERVICES is set): apt-get install chromium")
        pytest.skip("chromium is not installed")
    out = monitored["home"] / "monitoring" / "dashboard.png"
    shot = screenshot(f"http://127.0.0.1:{ui['port']}/projects/{ui['project']}", out)
    assert out.stat().st_size > 20_000 and shot["paths"] >= 6  # charts drew their lines
    assert not_blank(out) > 0.03
