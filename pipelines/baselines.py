"""Non-generative baselines: what AIGQ claims to beat. Each is a `Policy`: (user, time) -> a
ranked list of K queries, built from logs before the evaluation cut-off plus the user's own
events strictly before the request time; nothing later is ever read.

- `popularity`: time-decayed search counts (optionally within the user's top categories);
- `coclick`: query-flow, next-query transitions mined from sessions, seeded by recent queries;
- `itemcf`: items that co-occur in sessions with the user's recent items, mapped to the
  queries that led to clicks on them;
- `legacy`: the list the legacy system actually showed at that session start (from the log).
"""

from __future__ import annotations

import collections
from abc import ABC, abstractmethod
from typing import Sequence

import numpy as np
import pandas as pd

from pipelines.history import DAY_US, EventLog, to_us


class Policy(ABC):
    """(user, time) -> ranked list of queries. Later generators implement the same interface;
    `recommend_batch` lets them batch (the default loops)."""

    name: str = "policy"

    def prepare(self, requests: Sequence[tuple[str, object]]) -> None:
        """Called once with every request before evaluation (e.g. to fetch features in bulk)."""

    @abstractmethod
    def recommend(self, user_id: str, time, k: int = 8) -> list[str]:
        ...

    def recommend_batch(self, requests: Sequence[tuple[str, object]], k: int = 8) -> list[list[str]]:
        return [self.recommend(u, t, k) for u, t in requests]


def fill(ranked: list[str], fallback: Sequence[str], k: int, exclude: set[str] = frozenset()) -> list[str]:
    """The first k distinct queries of `ranked` then `fallback`, skipping `exclude`."""
    out: list[str] = []
    for q in list(ranked) + list(fallback):
        if q not in out and q not in exclude:
            out.append(q)
            if len(out) == k:
                break
    return out


def pool(lists: Sequence[Sequence[str]], exclude: set[str] = frozenset()) -> list[str]:
    """Round-robin over several ranked lists distinct, skipping `exclude`."""
    out: list[str] = []
    for rank in range(max((len(x) for x in lists), default=0)):
        for x in lists:
            if rank < len(x) and x[rank] not in exclude and x[rank] not in out:
                out.append(x[rank])
    return out


def _before(events: pd.DataFrame, cutoff_us: int) -> pd.DataFrame:
    return events[events["event_ts"].astype("datetime64[us, UTC]").astype("int64") < cutoff_us]


class PopularityPolicy(Policy):
    def __init__(self, log: EventLog, cutoff, half_life_days: float = 7.0, in_categories: bool = False,
                 pool: int = 200):
        self.name = "popularity_incat" if in_categories else "popularity"
        self.log, self.in_categories = log, in_categories
        cut = to_us(cutoff)
        ev = _before(log.events, cut)
        s = ev[ev["event_type"] == "search"]
        age_days = (cut - s["event_ts"].astype("datetime64[us, UTC]").astype("int64").to_numpy()) / DAY_US
        weight = np.power(0.5, age_days / half_life_days)
        scores = pd.Series(weight, index=s["query"].to_numpy()).groupby(level=0).sum()
        scores = scores.sort_values(ascending=False, kind="stable")
        self.ranked = list(scores.index[:pool])
        cat = s.drop_duplicates("query").set_index("query")["category_id"]
        self.by_category: dict[str, list[str]] = collections.defaultdict(list)
        for q in scores.index:
            self.by_category[cat[q]].append(q)

    def recommend(self, user_id, time, k=8):
        if not self.in_categories:
            return self.ranked[:k]
        weights = self.log.category_weights(user_id, time)
        picks: list[str] = []
        # slots per category proportional to the user's engagement share, at least one each
        for c, w in list(weights.items())[:k]:
            picks.extend(self.by_category.get(c, [])[:max(1, round(w * k))])
        return fill(picks, self.ranked, k)


class CoClickPolicy(Policy):
    name = "coclick"

    def __init__(self, log: EventLog, cutoff, seeds: int = 3, decay: float = 0.6, fallback: Policy | None = None):
        self.log, self.seeds, self.decay = log, seeds, decay
        self.fallback = fallback or PopularityPolicy(log, cutoff)
        s = _before(log.events, to_us(cutoff))
        s = s[s["event_type"] == "search"].sort_values(["session_id", "event_ts"], kind="stable")
        same = s["session_id"].to_numpy()[1:] == s["session_id"].to_numpy()[:-1]
        q = s["query"].to_numpy()
        pairs = pd.DataFrame({"a": q[:-1][same], "b": q[1:][same]})
        pairs = pairs[pairs["a"] != pairs["b"]]
        counts = pairs.value_counts().rename("n").reset_index()
        counts["p"] = counts["n"] / counts.groupby("a")["n"].transform("sum")
        self.next: dict[str, list[tuple[str, float]]] = {
            a: list(zip(g["b"], g["p"])) for a, g in counts.sort_values(["a", "n", "b"], ascending=[True, False, True])
            .groupby("a", sort=False)}

    def recommend(self, user_id, time, k=8):
        seeds = self.log.recent_queries(user_id, time, self.seeds)
        scores: dict[str, float] = collections.defaultdict(float)
        for rank, seed in enumerate(seeds):
            for b, p in self.next.get(seed, []):
                scores[b] += self.decay ** rank * p
        ranked = sorted(scores, key=lambda q: (-scores[q], q))
        return fill(ranked, self.fallback.recommend(user_id, time, k * 2), k, exclude=set(seeds))


class ItemCFPolicy(Policy):
    name = "itemcf"

    def __init__(self, log: EventLog, cutoff, recent_items: int = 5, neighbours: int = 20,
                 fallback: Policy | None = None):
        self.log, self.recent, self.neighbours = log, recent_items, neighbours
        self.fallback = fallback or PopularityPolicy(log, cutoff)
        ev = _before(log.events, to_us(cutoff))
        items = ev[ev["item_id"].notna()]
        basket = items[["session_id", "item_id"]].drop_duplicates()
        n_item = basket["item_id"].value_counts()
        pairs = basket.merge(basket, on="session_id")
        pairs = pairs[pairs["item_id_x"] != pairs["item_id_y"]]
        co = pairs.groupby(["item_id_x", "item_id_y"]).size().rename("co").reset_index()
        co["sim"] = co["co"] / np.sqrt(n_item[co["item_id_x"]].to_numpy() * n_item[co["item_id_y"]].to_numpy())
        co = co.sort_values(["item_id_x", "sim", "item_id_y"], ascending=[True, False, True])
        self.similar = {i: list(zip(g["item_id_y"][:neighbours], g["sim"][:neighbours]))
                        for i, g in co.groupby("item_id_x", sort=False)}
        clicks = items[items["event_type"] == "click"].groupby(["item_id", "query"]).size().rename("n").reset_index()
        clicks["p"] = clicks["n"] / clicks.groupby("item_id")["n"].transform("sum")
        self.item_queries = {i: list(zip(g["query"], g["p"])) for i, g in clicks.groupby("item_id")}

    def recommend(self, user_id, time, k=8):
        recent = self.log.recent_items(user_id, time, self.recent)
        item_w: dict[str, float] = collections.defaultdict(float)
        for rank, item in enumerate(recent):
            w = 0.8 ** rank
            item_w[item] += w
            for j, sim in self.similar.get(item, []):
                item_w[j] += w * sim
        scores: dict[str, float] = collections.defaultdict(float)
        for item, w in item_w.items():
            for q, p in self.item_queries.get(item, []):
                scores[q] += w * p
        ranked = sorted(scores, key=lambda q: (-scores[q], q))
        return fill(ranked, self.fallback.recommend(user_id, time, k * 2), k)


class LoggedPolicy(Policy):
    """Replays the lists a policy actually showed (e.g. the legacy system) at logged impressions;
    elsewhere falls back."""

    def __init__(self, impressions: pd.DataFrame, fallback: Policy, name: str = "legacy"):
        self.name, self.fallback = name, fallback
        imp = impressions.sort_values(["impression_id", "position"])
        ts = imp["impression_ts"].astype("datetime64[us, UTC]").astype("int64")
        self.lists = {(u, t): list(g) for (u, t), g in imp.groupby([imp["user_id"], ts], sort=False)["query"]}

    def recommend(self, user_id, time, k=8):
        shown = self.lists.get((user_id, to_us(time)))
        return shown[:k] if shown else self.fallback.recommend(user_id, time, k)


def build_baselines(log: EventLog, impressions: pd.DataFrame, cutoff, names: Sequence[str]) -> list[Policy]:
    popularity = PopularityPolicy(log, cutoff)
    makers = {
        "legacy": lambda: LoggedPolicy(impressions, popularity),
        "popularity": lambda: popularity,
        "popularity_incat": lambda: PopularityPolicy(log, cutoff, in_categories=True),
        "coclick": lambda: CoClickPolicy(log, cutoff, fallback=popularity),
        "itemcf": lambda: ItemCFPolicy(log, cutoff, fallback=popularity),
    }
    return [makers[n]() for n in names if n in makers]


BASELINES = ("legacy", "popularity", "popularity_incat", "coclick", "itemcf")
