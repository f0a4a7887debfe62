"""IL-SFT samples: one (prompt, completion) per (user, session start).

- prompt: `models.generator.build_prompt` over the `direct_generation_v1` features of the user at
  the session start (the point-in-time SFT context frame from Feast);
- completion: K queries built by
  1. session-aware behaviour aggregation: the session's searches, clicked suggestions, item
     clicks, carts and purchases, each crediting its query with an engagement weight (search 1,
     clicked suggestion 2, click 1, cart 3, purchase 5); duplicates merge; a session with fewer
     than K distinct queries is extended with the user's next sessions within a window (at
     half weight);
  2. interest-guided re-ranking: engagement x (0.2 + the user's long-term interest weight of the
     query's category), then categories interleave (each round takes the best remaining query of
     every category, strongest category first) so the list covers several interests;
  3. a shortfall is filled from the user's recent searches, then the most searched queries of
     their top categories before the cut-off, then global ones.

Only sessions that start before the cut-off become samples (evaluation holds the rest out).
"""

from __future__ import annotations

import collections
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import pandas as pd

from core.catalogue import QueryCatalogue
from core.config import option
from core.lists import as_list, to_plain
from core.window import holdout_start
from models.generator import build_prompt, format_completion

WEIGHTS = {"search": 1.0, "click": 1.0, "cart": 3.0, "purchase": 5.0}
SUGGESTION_WEIGHT = 2.0  # a search that came from clicking a HintQ suggestion


@dataclass
class SFTDataConfig:
    k: int = option(8, "queries per list")
    extend_hours: float = option(24.0, "extend a short session with the user's sessions starting within this window")
    extend_weight: float = option(0.5, "weight of behaviour from those later sessions")
    interest_floor: float = option(0.2, "re-rank score = engagement x (floor + long-term interest weight)")


def session_engagement(events: pd.DataFrame, weight: float = 1.0) -> dict[str, float]:
    """Engagement per query over a set of events (merged duplicates)."""
    scores: dict[str, float] = collections.defaultdict(float)
    for etype, query, source in zip(events["event_type"], events["query"], events["search_source"]):
        if not isinstance(query, str):
            continue
        w = SUGGESTION_WEIGHT if etype == "search" and source == "hintq" else WEIGHTS.get(etype, 1.0)
        scores[query] += weight * w
    return dict(scores)


def interest_rerank(
    scores: Mapping[str, float], category_of: Mapping[str, str], interests: Mapping[str, float], floor: float
) -> list[str]:
    """Order by engagement x (floor + interest weight), then interleave categories."""
    weighted = {q: s * (floor + interests.get(category_of.get(q), 0.0)) for q, s in scores.items()}
    by_cat: dict[str, list[str]] = collections.defaultdict(list)
    for q in sorted(weighted, key=lambda q: (-weighted[q], q)):
        by_cat[category_of.get(q, "?")].append(q)
    order = sorted(by_cat, key=lambda c: (-weighted[by_cat[c][0]], c))
    out: list[str] = []
    for rnd in range(max((len(v) for v in by_cat.values()), default=0)):
        out.extend(by_cat[c][rnd] for c in order if rnd < len(by_cat[c]))
    return out


class CompletionBuilder:
    """Builds completions from the event log; holds the per-session and popularity indexes."""

    def __init__(
        self,
        events: pd.DataFrame,
        sessions: pd.DataFrame,
        queries: pd.DataFrame,
        cutoff: pd.Timestamp,
        cfg: SFTDataConfig,
    ):
        self.cfg = cfg
        self.category_of = dict(zip(queries["query"], queries["category_id"]))
        self.events_by_session = {s: g for s, g in events.groupby("session_id", sort=False)}
        sessions = sessions.sort_values(["user_id", "session_start"])
        self.user_sessions = {
            u: list(zip(g["session_start"], g["session_id"])) for u, g in sessions.groupby("user_id", sort=False)
        }
        before = events[(events["event_type"] == "search") & (events["event_ts"] < cutoff)]
        counts = before["query"].value_counts()
        self.global_popular = list(counts.index[:50])
        self.popular_in: dict[str, list[str]] = collections.defaultdict(list)
        for q in counts.index:
            c = self.category_of.get(q)
            if c is not None and len(self.popular_in[c]) < 20:
                self.popular_in[c].append(q)

    def behaviour(self, user: str, session_id: int, start: pd.Timestamp) -> dict[str, float]:
        ev = self.events_by_session.get(session_id)
        scores = session_engagement(ev) if ev is not None else {}
        if len(scores) >= self.cfg.k:
            return scores
        horizon = start + pd.Timedelta(hours=self.cfg.extend_hours)
        for s_start, sid in self.user_sessions.get(user, []):
            if start < s_start <= horizon and sid != session_id and sid in self.events_by_session:
                for q, w in session_engagement(self.events_by_session[sid], self.cfg.extend_weight).items():
                    scores[q] = scores.get(q, 0.0) + w
                if len(scores) >= self.cfg.k:
                    break
        return scores

    def completion(self, user: str, session_id: int, start: pd.Timestamp, ctx: Mapping) -> list[str]:
        cats = as_list(ctx.get("top_categories_30d"))
        interests = dict(zip(cats, as_list(ctx.get("top_category_weights_30d"))))
        ranked = interest_rerank(
            self.behaviour(user, session_id, start), self.category_of, interests, self.cfg.interest_floor
        )
        fill = list(as_list(ctx.get("recent_queries")))
        for rnd in range(20):  # the top categories' popular queries, interleaved
            fill.extend(self.popular_in[c][rnd] for c in cats if rnd < len(self.popular_in[c]))
        out: list[str] = []
        for q in ranked + fill + self.global_popular:
            if q not in out:
                out.append(q)
            if len(out) == self.cfg.k:
                break
        return out


CONTEXT_KEYS = (
    "age_band",
    "gender",
    "city_tier",
    "price_sensitivity",
    "n_search_7d",
    "n_click_7d",
    "n_events_30d",
    "top_categories_7d",
    "top_category_weights_7d",
    "top_categories_30d",
    "top_category_weights_30d",
    "recent_queries",
    "recent_click_categories",
    "session_queries",
    "session_categories",
    "hour_of_day",
    "is_cold_start",
    "interest_entropy",
)


def context_json(ctx: Mapping) -> str:
    """The user context as JSON (lists for arrays, null for NaN): a dataset column for rewards."""

    return json.dumps({k: to_plain(ctx.get(k)) for k in CONTEXT_KEYS}, default=str)


def build_samples(
    contexts: pd.DataFrame,
    events: pd.DataFrame,
    sessions: pd.DataFrame,
    queries: pd.DataFrame,
    categories: pd.DataFrame,
    cfg: SFTDataConfig,
) -> pd.DataFrame:
    """One IL-SFT sample per session start before the cut-off. `contexts` is the SFT context frame
    (one row per session: session_id, user_id, event_timestamp and the direct_generation_v1
    features)."""
    cutoff = holdout_start(sessions["session_start"])
    builder = CompletionBuilder(events, sessions, queries, cutoff, cfg)
    names = dict(zip(categories["category_id"], categories["category_name"]))
    is_shopping = QueryCatalogue(queries, categories).is_valid  # the same prompt filter as serving
    rows = []
    train = contexts[contexts["event_timestamp"] < cutoff]
    for ctx in train.to_dict("records"):
        lst = builder.completion(ctx["user_id"], ctx["session_id"], ctx["event_timestamp"], ctx)
        rows.append(
            {
                "prompt": build_prompt(ctx, names, is_shopping),
                "completion": format_completion(lst),
                "context_json": context_json(ctx),
                "queries": lst,
                "user_id": ctx["user_id"],
                "session_id": ctx["session_id"],
                "event_timestamp": ctx["event_timestamp"],
            }
        )
    return pd.DataFrame(rows)


def prompts_for(
    contexts: Sequence[Mapping], categories: pd.DataFrame, is_shopping: Callable[[str], bool] | None = None
) -> list[str]:
    names = dict(zip(categories["category_id"], categories["category_name"]))
    return [build_prompt(c, names, is_shopping) for c in contexts]
