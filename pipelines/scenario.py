"""`aigq monitor scenario`: several days of served lists with a deliberate regression, for the
monitoring reports, the gate and the dashboard.

The held-out days of the simulated world are replayed through the hybrid online policy (Direct +
Think + fallback, CTR-ranked, interest-quota re-rank), one serving day per logged day, and
written to a serving log in the production schema (`serving.log`). From `degrade_from_day` on,
the re-rank is switched to "CTR only": a model that loses diversity. Clicks on each served list
are drawn from the world's click model (the simulated users' feedback; only evaluation and this
simulation read the world) into the `hintq_clicks` feedback table.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import sqlalchemy as sa
from tqdm import tqdm

from core.config import aigq_home, option
from core.errors import AigqError
from pipelines import think
from pipelines.eval_context import EvaluateConfig, load_context
from pipelines.eval_policies import served_policies
from pipelines.evaluate import click_probabilities
from serving.log import ServingLog, clicks_table, make_engine


@dataclass
class ScenarioConfig:
    days: int = option(5, "replay the last N days of the logs, one serving day each")
    requests_per_day: int = option(150, "served lists per day")
    degrade_from_day: int = option(3, "from this replayed day on (0-based) the re-rank loses diversity (-1: never)")
    seed: int = option(0, "request sampling and click seed")
    log_url: str = option("", "serving log to write (default: SQLite $AIGQ_HOME/monitoring/scenario_log.db)")


def scenario_log_url(cfg: ScenarioConfig) -> str:
    if cfg.log_url:
        return cfg.log_url
    path = aigq_home() / "monitoring" / "scenario_log.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{path}"


def main(cfg: ScenarioConfig) -> dict:
    started = time.perf_counter()
    home = aigq_home()
    if not think.mappings_path().exists() or not (home / "models" / "ctr" / "model.pt").exists():
        raise AigqError(
            "the scenario replays the hybrid policy: run `aigq train ctr`, `aigq train sft` and "
            "`aigq think` first (or `aigq demo`)"
        )
    ev_cfg = EvaluateConfig(max_requests=0, policies=["hybrid"], plots=False)
    ctx = load_context(ev_cfg, window_days=cfg.days)
    if ctx.world is None:
        raise AigqError("the scenario draws clicks from the simulated world; these logs have none")
    requests = pick_requests(ctx.requests, cfg)
    hybrid = served_policies(ev_cfg, ctx)[-1]
    url = scenario_log_url(cfg)
    engine = make_engine(url)
    with engine.begin() as conn:  # a scenario is a fresh log
        conn.execute(sa.text("DELETE FROM served_lists"))
        clicks_table.create(conn, checkfirst=True)
        conn.execute(clicks_table.delete())
    log = ServingLog(url)
    rng = np.random.default_rng(cfg.seed)
    days = sorted({t.floor("D") for _, t in requests})
    healthy, degraded = hybrid.cfg, replace(hybrid.cfg, rerank="mmr", mmr_lambda=1.0)
    n_clicks = 0
    for day_index, day in enumerate(tqdm(days, desc="scenario days", unit="day")):
        todays = [r for r in requests if r[1].floor("D") == day]
        bad = 0 <= cfg.degrade_from_day <= day_index
        hybrid.cfg = degraded if bad else healthy
        hybrid.served.clear()
        lists = []
        for start in range(0, len(todays), 64):
            lists.extend(hybrid.recommend_batch(todays[start : start + 64], 8))
        probs = click_probabilities(ctx.world, todays, lists, 8)
        clicks = []
        for (user, t), served, p in zip(todays, hybrid.served, probs):
            request_id = f"scn-{day_index}-{user}-{int(t.value // 1000)}"
            log.submit(
                {
                    "request_id": request_id,
                    "served_at": t.to_pydatetime(),
                    "user_id": user,
                    "k": 8,
                    "context": {},
                    "queries": served["queries"],
                    "sources": served["sources"],
                    "scores": served["scores"],
                    "categories": served["categories"],
                    "degraded": False,
                    "model_versions": {"rerank": "ctr-only (degraded)" if bad else hybrid.cfg.rerank},
                    "latency_ms": 0.0,
                    "server": "scenario",
                }
            )
            for pos in np.flatnonzero(rng.random(len(p)) < p):
                clicks.append(
                    {
                        "request_id": request_id,
                        "position": int(pos),
                        "query": served["queries"][pos],
                        "clicked_at": t.to_pydatetime(),
                    }
                )
        if clicks:
            with engine.begin() as conn:
                conn.execute(clicks_table.insert(), clicks)
        n_clicks += len(clicks)
    log.close()
    engine.dispose()
    return {
        "log_url": url,
        "days": [str(d.date()) for d in days],
        "lists": len(requests),
        "clicks": n_clicks,
        "degraded_from": str(days[cfg.degrade_from_day].date()) if 0 <= cfg.degrade_from_day < len(days) else None,
        "seconds": time.perf_counter() - started,
    }


def pick_requests(requests, cfg: ScenarioConfig) -> list:
    """Up to requests_per_day session starts of each replayed day, in time order."""
    frame = pd.DataFrame(requests, columns=["user_id", "t"])
    frame["day"] = frame["t"].dt.floor("D")
    picked = frame.groupby("day", group_keys=False).apply(
        lambda g: g.sample(min(len(g), cfg.requests_per_day), random_state=cfg.seed)
    )
    picked = picked.sort_values("t")
    return list(zip(picked["user_id"], picked["t"]))
