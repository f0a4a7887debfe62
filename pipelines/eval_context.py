"""What an evaluation is run on: its config, the held-out requests with their ground truth and
the users' histories, and (for simulated logs) the world whose click model scores the lists."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from core.catalogue import longest_named
from core.config import aigq_home, option
from core.errors import AigqError
from core.history import EventLog
from core.window import holdout_start
from pipelines.baselines import BASELINES, Catalogue
from world.shop import World

SLICES = ("all", "cold", "regular", "heavy")


# generator policies: evaluated when their model directory exists
GENERATORS = ("direct_sft", "direct_grpo", "direct_grpo_rel", "direct_grpo_rel_list")


# the served policies: evaluated when `aigq think` (and a Direct and CTR model) have run
SERVED = ("think", "hybrid")


@dataclass
class EvaluateConfig:
    max_requests: int = option(2000, "sample at most this many held-out session starts (0: all)")
    k: int = option(8, "list length K")
    policies: list[str] = option(
        list(BASELINES + GENERATORS[:2] + SERVED) + ["oracle"],
        f"policies to evaluate (baselines: {', '.join(BASELINES)}; generators, when "
        f"trained: {', '.join(GENERATORS)}; served, when built: {', '.join(SERVED)}; "
        "oracle (the best list under the world's click model; skipped for real logs); "
        "random)",
    )
    store: str = option("sqlite", "feature store config for generator contexts (sqlite | redis_postgres)")
    cold_events: int = option(5, "a request whose user has fewer events before it is cold-start")
    heavy_quantile: float = option(0.9, "requests above this quantile of prior events are heavy users")
    seed: int = option(0, "request sampling seed")
    plots: bool = option(True, "write PNG plots")
    output_dir: str = option("", "report folder (default $AIGQ_HOME/reports)")


@dataclass
class EvalContext:
    log: EventLog
    cutoff: pd.Timestamp
    requests: list[tuple[str, pd.Timestamp]]
    truth: list[set[str]]
    truth_organic: list[set[str]]  # what the user typed unprompted (no clicked suggestion)
    slices: np.ndarray
    query_category: dict[str, str]
    ptype_category: dict[str, str]
    search_counts: dict[str, int]
    total_searches: int
    vocabulary: list[str]
    popular: set[str]
    impressions: pd.DataFrame
    catalogue: Catalogue = field(default_factory=Catalogue)
    world: object | None = None
    history_cache: dict = field(default_factory=dict)

    def category(self, query: str) -> str | None:
        return self.query_category.get(query) or longest_named(query, self.ptype_category)

    def user_history(self, i: int) -> tuple[set[str], set[str], dict[str, float]]:
        """(searched queries, categories seen, 30-day category weights) before request i."""
        if i not in self.history_cache:
            u, t = self.requests[i]
            self.history_cache[i] = (
                self.log.searched(u, t),
                self.log.categories(u, t),
                self.log.category_weights(u, t),
            )
        return self.history_cache[i]


def load_context(cfg: EvaluateConfig, data_dir: Path | None = None, window_days: float | None = None) -> EvalContext:
    """Requests, ground truth and history of the hold-out window (the experiment's, or the last
    `window_days` days: the monitoring scenario replays a window of its own)."""
    data = data_dir or aigq_home() / "data"
    if not (data / "events.parquet").exists():
        raise AigqError(f"{data}: no logs; run `aigq simulate` or `aigq ingest DIR` first")
    events = pd.read_parquet(data / "events.parquet")
    sessions = pd.read_parquet(data / "sessions.parquet")
    queries = pd.read_parquet(data / "queries.parquet")
    impressions = pd.read_parquet(data / "hintq_impressions.parquet")
    cutoff = holdout_start(sessions["session_start"], window_days)
    held = sessions[sessions["session_start"] >= cutoff]
    if cfg.max_requests and len(held) > cfg.max_requests:
        held = held.sample(cfg.max_requests, random_state=cfg.seed)
    held = held.sort_values(["session_start", "session_id"])
    searches = events[events["event_type"] == "search"]
    truth_by_session = searches.groupby("session_id")["query"].agg(set)
    typed = searches[searches["search_source"] == "organic"].groupby("session_id")["query"].agg(set)
    requests = list(zip(held["user_id"], held["session_start"]))
    log = EventLog(events)
    prior = np.array([log.n_events_before(u, t) for u, t in requests])
    warm = prior[prior >= cfg.cold_events]
    heavy_at = np.quantile(warm, cfg.heavy_quantile) if len(warm) else np.inf
    slices = np.where(prior < cfg.cold_events, "cold", np.where(prior >= heavy_at, "heavy", "regular"))
    before = searches[searches["event_ts"] < cutoff]
    counts = before["query"].value_counts()
    return EvalContext(
        log=log,
        cutoff=cutoff,
        requests=requests,
        truth=[truth_by_session.get(s, set()) for s in held["session_id"]],
        truth_organic=[typed.get(s, set()) for s in held["session_id"]],
        slices=slices,
        query_category=dict(zip(queries["query"], queries["category_id"])),
        ptype_category=dict(zip(queries["ptype"], queries["category_id"])),
        search_counts=counts.to_dict(),
        total_searches=int(counts.sum()),
        vocabulary=list(queries["query"]),
        popular=set(counts.index[: cfg.k]),
        impressions=impressions,
        catalogue=Catalogue.load(data),
        world=load_world(data.parent),
    )


def load_world(home: Path):
    """The simulator's ground truth, if these logs came from it (real logs have none)."""
    if not (home / "world" / "world.json").exists():
        return None

    return World.load(home / "world", pd.read_parquet(home / "data" / "users.parquet"))
