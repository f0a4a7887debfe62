"""Nothing the suite checks may depend on the day or the hour it runs.

The parts that read the calendar are run at a month end, a year end, a leap day, a Sunday, and
just before and just after midnight UTC: the simulated window, the evaluation's hold-out, the
monitoring scenario's replayed days and the dashboard's days. The clock is moved with
time-machine, so the code that reads "today" (the simulator's default end date) reads those
instants; everything downstream reads the logs.
"""

import hashlib
from datetime import UTC, datetime

import pandas as pd
import pytest
import time_machine

from monitoring import dashboards, reports
from pipelines import evaluate, scenario, simulate
from pipelines.baselines import PopularityPolicy
from serving.log import ServingLog

N_DAYS, EVAL_DAYS, REFERENCE_DAYS = 10, 4, 1

CASES = {
    # name: (the instant the run happens, pinned end date or "" for "today")
    "month-end-just-before-midnight": ("2026-11-30T23:59:59.999", ""),
    "month-start-just-after-midnight": ("2026-12-01T00:00:00.001", ""),
    "last-logged-day-a-sunday": ("2026-11-23T13:30:00", "2026-11-23"),
    "leap-day-last-logged-day": ("2028-03-01T00:00:00.001", ""),
    "year-end-pinned-before-midnight": ("2026-12-31T23:59:59.999", "2027-01-01"),
}


def at(instant: str):
    return time_machine.travel(datetime.fromisoformat(instant).replace(tzinfo=UTC), tick=False)


def simulate_tiny(home, monkeypatch, end_date: str):
    monkeypatch.setenv("AIGQ_HOME", str(home))
    return simulate.main(simulate.SimulateConfig(profile="tiny", n_days=N_DAYS, end_date=end_date))


def expected_end(instant: str, end_date: str) -> pd.Timestamp:
    return pd.Timestamp(end_date or instant[:10], tz="UTC")


def serve_scenario_days(home, ctx: evaluate.EvalContext) -> str:
    """A serving log of the scenario's requests (the days `aigq monitor scenario` would replay),
    with in-category popularity lists: the dashboard's days come from this log alone."""
    picked = scenario.pick_requests(ctx.requests, scenario.ScenarioConfig(days=EVAL_DAYS, requests_per_day=30))
    policy = PopularityPolicy(ctx.log, ctx.cutoff, in_categories=True)
    url = f"sqlite:///{home / 'calendar_log.db'}"
    log = ServingLog(url)
    for i, (user, t) in enumerate(picked):
        queries = policy.recommend(user, t, 8)
        log.submit(
            {
                "request_id": f"cal-{i}",
                "served_at": t.to_pydatetime(),
                "user_id": user,
                "k": 8,
                "context": {},
                "queries": queries,
                "sources": ["fallback"] * len(queries),
                "scores": [0.0] * len(queries),
                "categories": [ctx.category(q) for q in queries],
                "degraded": False,
                "model_versions": {},
                "latency_ms": 0.0,
                "server": "test",
            }
        )
    log.close()
    return url


@pytest.mark.parametrize("instant,end_date", CASES.values(), ids=CASES.keys())
def test_windows_are_whole_days_whatever_the_date_and_hour(instant, end_date, tmp_path, monkeypatch):
    end = expected_end(instant, end_date)
    days = lambda n: [end - pd.Timedelta(days=d) for d in range(n, 0, -1)]  # noqa: E731
    with at(instant):
        data = simulate_tiny(tmp_path / "home", monkeypatch, end_date)
        sessions = pd.read_parquet(data / "sessions.parquet")
        assert sorted(sessions["session_start"].dt.floor("D").unique()) == days(N_DAYS)

        ctx = evaluate.load_context(evaluate.EvaluateConfig(max_requests=0), window_days=EVAL_DAYS)
        assert ctx.cutoff == end - pd.Timedelta(days=EVAL_DAYS)
        assert sorted({t.floor("D") for _, t in ctx.requests}) == days(EVAL_DAYS)

        url = serve_scenario_days(tmp_path / "home", ctx)
        cfg = reports.MonitorConfig(reference_days=REFERENCE_DAYS, log_url=url)
        deployed = dashboards.deploy(cfg)
    assert deployed["days"] == EVAL_DAYS - REFERENCE_DAYS
    assert deployed["reference"] == f"{days(EVAL_DAYS)[0].date()}..{days(EVAL_DAYS)[0].date()}"
    assert set(deployed["gate"]) == {str(d.date()) for d in days(EVAL_DAYS)[REFERENCE_DAYS:]}


def _digests(data_dir):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(data_dir.glob("*.parquet"))}


def test_the_hour_of_the_run_does_not_change_the_world(tmp_path, monkeypatch):
    """The same day at 00:00:01 and at 23:59:59: the same bytes (the window is the date's)."""
    with at("2026-11-30T00:00:01"):
        early = _digests(simulate_tiny(tmp_path / "early", monkeypatch, ""))
    with at("2026-11-30T23:59:59"):
        late = _digests(simulate_tiny(tmp_path / "late", monkeypatch, ""))
    with at("2026-12-01T00:00:01"):
        next_day = _digests(simulate_tiny(tmp_path / "next", monkeypatch, ""))
    assert early == late
    assert early["sessions.parquet"] != next_day["sessions.parquet"]  # a new day is a new window
