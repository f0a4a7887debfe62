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
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from threadpoolctl import threadpool_limits

from core.history import DAY_US, ENGAGEMENT, EventLog, to_us
from core.lexicon import Lexicon
from core.lists import fill


class Policy(ABC):
    """(user, time) -> ranked list of queries. Later generators implement the same interface;
    `recommend_batch` lets them batch (the default loops)."""

    name: str = "policy"

    def prepare(self, requests: Sequence[tuple[str, object]]) -> None:  # noqa: B027 - an optional hook
        """Called once with every request before evaluation (e.g. to fetch features in bulk)."""

    @abstractmethod
    def recommend(self, user_id: str, time, k: int = 8) -> list[str]: ...

    def recommend_batch(self, requests: Sequence[tuple[str, object]], k: int = 8) -> list[list[str]]:
        return [self.recommend(u, t, k) for u, t in requests]


def _before(events: pd.DataFrame, cutoff_us: int) -> pd.DataFrame:
    return events[events["event_ts"].astype("datetime64[us, UTC]").astype("int64") < cutoff_us]


class PopularityPolicy(Policy):
    def __init__(
        self, log: EventLog, cutoff, half_life_days: float = 7.0, in_categories: bool = False, pool: int = 200
    ):
        self.name = "popularity_incat" if in_categories else "popularity"
        self.log, self.in_categories = log, in_categories
        cut = to_us(cutoff)
        ev = _before(log.events, cut)
        s = ev[ev["event_type"] == "search"]
        age_days = (cut - s["event_ts"].astype("datetime64[us, UTC]").astype("int64").to_numpy()) / DAY_US
        weight = np.power(0.5, age_days / half_life_days)
        self.searches = s[["user_id", "query"]].assign(weight=weight)
        scores = pd.Series(weight, index=s["query"].to_numpy()).groupby(level=0).sum()
        scores = scores.sort_values(ascending=False, kind="stable")
        self.scores = scores.to_dict()
        self.ranked_all = list(scores.index)
        self.ranked = self.ranked_all[:pool]
        cat = s.drop_duplicates("query").set_index("query")["category_id"]
        self.category_of = cat.to_dict()
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
            picks.extend(self.by_category.get(c, [])[: max(1, round(w * k))])
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
            a: list(zip(g["b"], g["p"]))
            for a, g in counts.sort_values(["a", "n", "b"], ascending=[True, False, True]).groupby("a", sort=False)
        }

    def recommend(self, user_id, time, k=8):
        seeds = self.log.recent_queries(user_id, time, self.seeds)
        scores: dict[str, float] = collections.defaultdict(float)
        for rank, seed in enumerate(seeds):
            for b, p in self.next.get(seed, []):
                scores[b] += self.decay**rank * p
        ranked = sorted(scores, key=lambda q: (-scores[q], q))
        return fill(ranked, self.fallback.recommend(user_id, time, k * 2), k, exclude=set(seeds))


class ItemCFPolicy(Policy):
    name = "itemcf"

    def __init__(
        self, log: EventLog, cutoff, recent_items: int = 5, neighbours: int = 20, fallback: Policy | None = None
    ):
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
        self.similar = {
            i: list(zip(g["item_id_y"][:neighbours], g["sim"][:neighbours]))
            for i, g in co.groupby("item_id_x", sort=False)
        }
        clicks = items[items["event_type"] == "click"].groupby(["item_id", "query"]).size().rename("n").reset_index()
        clicks["p"] = clicks["n"] / clicks.groupby("item_id")["n"].transform("sum")
        self.item_queries = {i: list(zip(g["query"], g["p"])) for i, g in clicks.groupby("item_id")}

    def recommend(self, user_id, time, k=8):
        recent = self.log.recent_items(user_id, time, self.recent)
        item_w: dict[str, float] = collections.defaultdict(float)
        for rank, item in enumerate(recent):
            w = 0.8**rank
            item_w[item] += w
            for j, sim in self.similar.get(item, []):
                item_w[j] += w * sim
        scores: dict[str, float] = collections.defaultdict(float)
        for item, w in item_w.items():
            for q, p in self.item_queries.get(item, []):
                scores[q] += w * p
        ranked = sorted(scores, key=lambda q: (-scores[q], q))
        return fill(ranked, self.fallback.recommend(user_id, time, k * 2), k)


class ContentPopularityPolicy(PopularityPolicy):
    """In-category popularity re-ranked by the user's attribute words: queries of the user's
    categories that name the colours, materials, styles, audiences, price words and brands the user
    searched for or engaged with before score higher, whether or not anyone searched them yet."""

    def __init__(self, log: EventLog, cutoff, catalogue: Catalogue, weight: float = 3.0):
        super().__init__(log, cutoff, in_categories=True)
        self.name, self.weight = "popularity_content", weight
        queries, items = catalogue.queries, catalogue.items
        if queries.empty:
            self.query_tokens, self.item_tokens, self.by_category_all = {}, {}, {}
            return
        lexicon = Lexicon(items["brand"].dropna() if "brand" in items else ())
        self.query_tokens = {q: lexicon.token_ids(q, p) for q, p in zip(queries["query"], queries["ptype"])}
        self.item_tokens = (
            {}
            if items.empty
            else {
                i: lexicon.ids(v for v in row if v)
                for i, row in zip(
                    items["item_id"], items[["color", "material", "style", "audience", "brand"]].itertuples(index=False)
                )
            }
        )
        pop = {q: i for i, q in enumerate(self.ranked_all)}
        self.by_category_all: dict[str, list[str]] = collections.defaultdict(list)
        for q, c in sorted(zip(queries["query"], queries["category_id"]), key=lambda qc: pop.get(qc[0], len(pop))):
            self.by_category_all[c].append(q)

    def token_shares(self, user_id, time) -> dict[int, float]:
        sl = self.log.before(user_id, time)
        weights: dict[int, float] = collections.defaultdict(float)
        for q, item, kind in zip(self.log.query[sl], self.log.item[sl], self.log.type[sl]):
            tokens = self.item_tokens.get(item, []) if item is not None else self.query_tokens.get(q, [])
            for tok in tokens:
                weights[tok] += ENGAGEMENT.get(kind, 1.0)
        total = sum(weights.values())
        return {t: w / total for t, w in weights.items()} if total else {}

    def recommend(self, user_id, time, k=8):
        shares = self.token_shares(user_id, time)
        if not shares:
            return super().recommend(user_id, time, k)
        picks: list[str] = []
        for c, w in list(self.log.category_weights(user_id, time).items())[:k]:
            pool = self.by_category_all.get(c, [])
            score = {
                q: self.weight * sum(shares.get(t, 0.0) for t in self.query_tokens.get(q, ()))
                + np.log1p(self.scores.get(q, 0.0))
                for q in pool
            }
            picks.extend(sorted(pool, key=lambda q: -score[q])[: max(1, round(w * k))])
        return fill(picks, self.ranked, k)


class SegmentPopularityPolicy(PopularityPolicy):
    """Popularity within the user's demographic segment (age band x gender x city tier, backing
    off to age band x gender where a segment is thin). The user's category weights are blended
    with their segment's, `prior_events` pseudo-events of the segment against the user's own
    events: a new user gets their segment's categories, a regular one their own. Inside each
    category, queries rank by the segment's searches (then everyone's)."""

    def __init__(
        self,
        log: EventLog,
        cutoff,
        catalogue: Catalogue,
        half_life_days: float = 7.0,
        prior_events: float = 0.3,
        min_support: float = 200.0,
    ):
        super().__init__(log, cutoff, half_life_days, in_categories=True)
        self.name, self.prior_events = "popularity_segment", prior_events
        users = catalogue.users
        self.segments_of: dict[str, list[str]] = (
            {}
            if users.empty
            else {
                u: [f"{a}|{g}|{t}", f"{a}|{g}"]
                for u, a, g, t in zip(users["user_id"], users["age_band"], users["gender"], users["city_tier"])
            }
        )
        s = self.searches.assign(category=self.searches["query"].map(self.category_of))
        rows = [
            (seg, q, c, w)
            for u, q, c, w in zip(s["user_id"], s["query"], s["category"], s["weight"])
            for seg in self.segments_of.get(u, ())
        ]
        frame = pd.DataFrame(rows, columns=["segment", "query", "category", "weight"])
        support = frame.groupby("segment")["weight"].sum()
        self.supported = set(support.index[support >= min_support])
        self.query_score = frame.groupby(["segment", "query"])["weight"].sum().to_dict()
        shares = frame.groupby(["segment", "category"])["weight"].sum()
        shares = (shares / shares.groupby(level=0).transform("sum")).sort_values(ascending=False)
        self.category_share = {seg: dict(g.droplevel(0).items()) for seg, g in shares.groupby(level=0)}

    def segment(self, user_id) -> str | None:
        return next((seg for seg in self.segments_of.get(user_id, ()) if seg in self.supported), None)

    def recommend(self, user_id, time, k=8):
        segment = self.segment(user_id)
        own = self.log.category_weights(user_id, time)
        n = self.log.n_events_before(user_id, time)
        prior = self.category_share.get(segment, {})
        trust = n / (n + self.prior_events) if prior else 1.0
        weights = collections.Counter({c: trust * w for c, w in own.items()})
        for c, w in list(prior.items())[:k]:
            weights[c] += (1 - trust) * w
        picks: list[str] = []
        for c, w in weights.most_common(k):
            pool = self.by_category.get(c, [])[:50]
            pool = sorted(pool, key=lambda q: -(self.query_score.get((segment, q), 0.0) + 0.1 * self.scores[q]))
            picks.extend(pool[: max(1, round(w / sum(weights.values()) * k))])
        return fill(picks, self.ranked, k)


class MFPolicy(Policy):
    """Matrix factorisation (implicit ALS) over user x query search counts before the cut-off; at a
    request the user's factors are recomputed from their searches so far (fold-in), so users
    active only after the cut-off are served too. Users with no search yet get the fallback."""

    name = "mf"

    def __init__(
        self,
        log: EventLog,
        cutoff,
        fallback: Policy,
        factors: int = 48,
        regularization: float = 0.05,
        alpha: float = 10.0,
        iterations: int = 15,
    ):
        from implicit.cpu.als import AlternatingLeastSquares
        from scipy.sparse import csr_matrix

        self.log, self.fallback, self.csr = log, fallback, csr_matrix
        s = _before(log.events, to_us(cutoff))
        s = s[s["event_type"] == "search"]
        self.queries = sorted(set(s["query"]))
        self.index = {q: i for i, q in enumerate(self.queries)}
        users = {u: i for i, u in enumerate(sorted(set(s["user_id"])))}
        pairs = s.groupby(["user_id", "query"]).size()
        rows = [users[u] for u, _ in pairs.index]
        cols = [self.index[q] for _, q in pairs.index]
        self.alpha = alpha
        matrix = csr_matrix((alpha * pairs.to_numpy(np.float32), (rows, cols)), shape=(len(users), len(self.queries)))
        with threadpool_limits(1, "blas"):  # implicit's own advice: BLAS threads fight its solver
            self.model = AlternatingLeastSquares(
                factors=factors, regularization=regularization, iterations=iterations, random_state=0, num_threads=1
            )
            self.model.fit(matrix, show_progress=False)

    def recommend(self, user_id, time, k=8):
        return self.recommend_batch([(user_id, time)], k)[0]

    def recommend_batch(self, requests, k=8):
        rows = []
        for user_id, time in requests:
            counts = collections.Counter(q for q in self.log.query[self.log.before(user_id, time)] if q in self.index)
            rows.append(counts)
        known = [i for i, counts in enumerate(rows) if counts]
        out = [self.fallback.recommend(u, t, k) for u, t in requests]
        if known:
            data, r, c = [], [], []
            for j, i in enumerate(known):
                for q, n in rows[i].items():
                    data.append(self.alpha * n)
                    r.append(j)
                    c.append(self.index[q])
            items = self.csr((np.array(data, np.float32), (r, c)), shape=(len(known), len(self.queries)))
            with threadpool_limits(1, "blas"):
                ids, _ = self.model.recommend(
                    np.arange(len(known)), items, N=k, recalculate_user=True, filter_already_liked_items=False
                )
            for j, i in enumerate(known):
                out[i] = fill([self.queries[q] for q in ids[j] if q >= 0], out[i], k)
        return out


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


def build_baselines(
    log: EventLog, impressions: pd.DataFrame, cutoff, names: Sequence[str], catalogue: Catalogue | None = None
) -> list[Policy]:
    """The named baselines. `catalogue` (users, queries, items tables) feeds the ones that read
    profiles and attributes; without it they fall back to what the log alone supports."""
    catalogue = catalogue or Catalogue()
    popularity = PopularityPolicy(log, cutoff)
    makers = {
        "legacy": lambda: LoggedPolicy(impressions, popularity),
        "popularity": lambda: popularity,
        "popularity_incat": lambda: PopularityPolicy(log, cutoff, in_categories=True),
        "popularity_content": lambda: ContentPopularityPolicy(log, cutoff, catalogue),
        "popularity_segment": lambda: SegmentPopularityPolicy(log, cutoff, catalogue),
        "coclick": lambda: CoClickPolicy(log, cutoff, fallback=popularity),
        "itemcf": lambda: ItemCFPolicy(log, cutoff, fallback=popularity),
        "mf": lambda: MFPolicy(log, cutoff, fallback=SegmentPopularityPolicy(log, cutoff, catalogue)),
    }
    return [makers[n]() for n in names if n in makers]


@dataclass
class Catalogue:
    """The public tables that profile- and attribute-aware baselines read (empty when absent)."""

    users: pd.DataFrame = field(default_factory=pd.DataFrame)
    queries: pd.DataFrame = field(default_factory=pd.DataFrame)
    items: pd.DataFrame = field(default_factory=pd.DataFrame)

    @classmethod
    def load(cls, data_dir) -> Catalogue:
        read = lambda name: (
            pd.read_parquet(Path(data_dir) / f"{name}.parquet")
            if (Path(data_dir) / f"{name}.parquet").exists()
            else pd.DataFrame()
        )  # noqa: E731
        return cls(read("users"), read("queries"), read("items"))


BASELINES = (
    "legacy",
    "popularity",
    "popularity_incat",
    "popularity_content",
    "popularity_segment",
    "coclick",
    "itemcf",
    "mf",
)
