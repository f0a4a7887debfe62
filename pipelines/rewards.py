"""IL-GRPO rewards: plain functions with TRL's signature `(prompts, completions, **kwargs)` that
return one float per completion. The user's context arrives as the dataset column
`context_json` (the `direct_generation_v1` features at the session start, from Feast), one entry
per completion; nothing here reads logs or the world's ground truth.

- relevance: per query, the user's long-term interest in its category, recent interest (7-day
  and clicked categories) and text similarity to recent searches; position-discounted mean;
- diversity: distinct categories over K;
- coverage: share of the user's top-3 interest categories the list touches;
- novelty: share of queries the user has not searched recently;
- format: usable (well-formed, distinct, valid) queries over K;
- popularity: how often users search each query of the user's interest categories (log-scaled
  30-day search counts from the daily query statistics), position-discounted: keeps the list on
  queries people type, not rare attribute variants;
- ctr: the CTR model's position-discounted click probability, one batched forward pass per call;
- flagged: minus the position-discounted share of queries reviewers flagged (`aigq review`:
  everywhere, or in the query's category): what a product owner rejected becomes a negative.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from core.lists import as_list
from core.metrics import text_embedding
from models.generator import candidates

COMPONENTS = ("relevance", "diversity", "coverage", "novelty", "format", "popularity", "ctr", "flagged")


def completion_text(completion) -> str:
    """TRL passes strings for standard datasets and message lists for conversational ones."""
    if isinstance(completion, str):
        return completion
    return "".join(m.get("content", "") for m in completion)


def discounts(k: int) -> np.ndarray:
    d = 1.0 / np.log2(np.arange(k) + 2)
    return d / d.sum()


@dataclass
class RewardContext:
    """What the rewards need besides the batch: the catalogue lookups and the CTR scorer."""

    category_of: Callable[[str], str | None]
    is_valid: Callable[[str], bool]
    k: int = 8
    ctr_scorer: object | None = None
    query_features: Mapping[str, Mapping] | None = None  # query -> query_stats columns for the CTR model
    # share of relevance from text similarity to recent searches; kept small because it pulled
    # GRPO towards rare attribute variants of past searches (see reports/grpo_ablation.md)
    text_weight: float = 0.1
    # query -> log1p(30-day searches) / log1p(the most searched query's), as of the training cut-off
    query_popularity: Mapping[str, float] | None = None
    # (query, category) -> True when a reviewer flagged it (serving.review.Blocked)
    flagged: Callable[[str, str | None], bool] | None = None

    def parse(self, completion) -> list[str]:
        return [q for q in candidates(completion_text(completion)) if self.is_valid(q)][: self.k]


def _contexts(kwargs, n: int) -> list[dict]:
    raw = kwargs.get("context_json") or ["{}"] * n
    return [json.loads(c) if isinstance(c, str) else dict(c or {}) for c in raw]


def make_rewards(rc: RewardContext) -> dict[str, Callable]:
    """The reward functions by component name (each keeps its name for TRL's per-reward logs)."""
    disc = discounts(rc.k)

    def relevance(prompts, completions, **kwargs) -> list[float]:
        out = []
        for comp, ctx in zip(completions, _contexts(kwargs, len(completions))):
            queries = rc.parse(comp)
            long = dict(zip(as_list(ctx.get("top_categories_30d")), as_list(ctx.get("top_category_weights_30d"))))
            week = dict(zip(as_list(ctx.get("top_categories_7d")), as_list(ctx.get("top_category_weights_7d"))))
            clicked = set(as_list(ctx.get("recent_click_categories")))
            recent = as_list(ctx.get("recent_queries"))[:5] + as_list(ctx.get("session_queries"))[:3]
            sims = (
                (text_embedding(queries) @ text_embedding(recent).T).max(axis=1)
                if queries and recent
                else np.zeros(len(queries))
            )
            score = 0.0
            for i, (q, sim) in enumerate(zip(queries, sims)):
                c = rc.category_of(q)
                rel = min(1.0, long.get(c, 0.0) + 0.5 * week.get(c, 0.0) + 0.2 * (c in clicked)) if c else 0.0
                score += disc[i] * ((1 - rc.text_weight) * rel + rc.text_weight * float(sim))
            out.append(score)
        return out

    def diversity(prompts, completions, **kwargs) -> list[float]:
        out = []
        for comp in completions:
            cats = {rc.category_of(q) for q in rc.parse(comp)} - {None}
            out.append(len(cats) / rc.k)
        return out

    def coverage(prompts, completions, **kwargs) -> list[float]:
        out = []
        for comp, ctx in zip(completions, _contexts(kwargs, len(completions))):
            top = set(as_list(ctx.get("top_categories_30d"))[:3])
            cats = {rc.category_of(q) for q in rc.parse(comp)}
            out.append(len(top & cats) / len(top) if top else 0.0)
        return out

    def novelty(prompts, completions, **kwargs) -> list[float]:
        out = []
        for comp, ctx in zip(completions, _contexts(kwargs, len(completions))):
            seen = set(as_list(ctx.get("recent_queries"))) | set(as_list(ctx.get("session_queries")))
            queries = rc.parse(comp)
            out.append(sum(q not in seen for q in queries) / rc.k)
        return out

    def format_(prompts, completions, **kwargs) -> list[float]:
        out = []
        for comp in completions:
            raw = candidates(completion_text(comp))
            usable = rc.parse(comp)
            # usable share of K, minus the share of the output that was junk (invalid or beyond K)
            junk = max(len(raw) - len(usable), 0) / rc.k
            out.append(max(len(usable) / rc.k - 0.5 * junk, 0.0))
        return out

    format_.__name__ = "format"

    def popularity(prompts, completions, **kwargs) -> list[float]:
        # only queries in the user's interests count: globally popular lists are not the aim
        pop = rc.query_popularity or {}
        out = []
        for comp, ctx in zip(completions, _contexts(kwargs, len(completions))):
            interests = (
                set(as_list(ctx.get("top_categories_30d")))
                | set(as_list(ctx.get("top_categories_7d")))
                | set(as_list(ctx.get("recent_click_categories")))
            )
            out.append(
                float(
                    sum(
                        disc[i] * pop.get(q, 0.0)
                        for i, q in enumerate(rc.parse(comp))
                        if rc.category_of(q) in interests
                    )
                )
            )
        return out

    def ctr(prompts, completions, **kwargs) -> list[float]:
        if rc.ctr_scorer is None:
            return [0.0] * len(completions)
        contexts = _contexts(kwargs, len(completions))
        lists = [rc.parse(c) for c in completions]
        feats = rc.query_features or {}
        cands = [[{"query": q, **feats.get(q, {"query_category_id": rc.category_of(q)})} for q in qs] for qs in lists]
        positions = [list(range(len(qs))) for qs in lists]
        probs = rc.ctr_scorer.score_users(contexts, cands, positions)  # one forward pass
        return [float(np.dot(p, disc[: len(p)])) for p in probs]

    def flagged(prompts, completions, **kwargs) -> list[float]:
        if rc.flagged is None:
            return [0.0] * len(completions)
        return [
            -float(sum(disc[i] for i, q in enumerate(rc.parse(comp)) if rc.flagged(q, rc.category_of(q))))
            for comp in completions
        ]

    return {
        "relevance": relevance,
        "diversity": diversity,
        "coverage": coverage,
        "novelty": novelty,
        "format": format_,
        "popularity": popularity,
        "ctr": ctr,
        "flagged": flagged,
    }


def total_reward(
    rewards: Mapping[str, Callable],
    weights: Mapping[str, float],
    prompts: Sequence[str],
    completions: Sequence[str],
    **kwargs,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """The weighted sum TRL optimises, and each component, for a batch (evaluation and tests)."""
    parts = {
        name: np.asarray(fn(prompts, completions, **kwargs)) for name, fn in rewards.items() if weights.get(name, 0.0)
    }
    total = sum(weights[name] * v for name, v in parts.items())
    return np.asarray(total, dtype=float), parts
