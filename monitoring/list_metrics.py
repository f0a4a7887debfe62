"""Per-served-list metrics from the serving log, in plain pandas (no Evidently import).

One row per served list: diversity (distinct categories, category entropy, embedding intra-list
distance), relevance (mean CTR score of the ranked list; observed click-through where click
feedback exists), novelty, the source mix (Direct / Think / fallback shares), validity and the
degraded flag. The per-list functions are the evaluation harness's own (`core.metrics`).
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from core import metrics as M

COLUMNS = (
    "distinct_categories",
    "category_entropy",
    "ild_embedding",
    "mean_ctr_score",
    "click_through",
    "novelty",
    "share_direct",
    "share_think",
    "share_fallback",
    "validity",
    "degraded",
)
DIVERSITY = "distinct_categories"
RELEVANCE = "mean_ctr_score"


def list_metrics(
    served: pd.DataFrame,
    catalogue,
    search_counts: Mapping[str, int],
    total_searches: int,
    clicks: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """`served`: rows of the serving log (request_id, served_at, queries, sources, scores,
    categories, degraded, ...); `clicks`: clicks per request_id (feedback), if any."""
    vocabulary = max(len(catalogue.vocabulary), 1)
    rows = []
    for r in served.itertuples(index=False):
        queries, sources = list(r.queries), list(r.sources)
        cats = list(r.categories) if r.categories is not None else [catalogue.category(q) for q in queries]
        n = max(len(queries), 1)
        ranked = not r.degraded and any(s != "fallback" for s in sources)
        rows.append(
            {
                "request_id": r.request_id,
                "served_at": pd.Timestamp(r.served_at),
                "user_id": r.user_id,
                "n_items": len(queries),
                "distinct_categories": M.distinct_categories(cats),
                "category_entropy": M.category_entropy(cats),
                "ild_embedding": M.ild_embedding(queries),
                # the ranker's click probabilities: only meaningful when the CTR model ranked the list
                "mean_ctr_score": float(np.mean(r.scores)) if ranked and len(r.scores) else np.nan,
                "click_through": (clicks.get(r.request_id, 0) / n) if clicks is not None else np.nan,
                "novelty": M.novelty(queries, search_counts, total_searches, vocabulary),
                "share_direct": sources.count("direct") / n,
                "share_think": sources.count("think") / n,
                "share_fallback": sources.count("fallback") / n,
                "validity": M.share([catalogue.is_valid(q) for q in queries]),
                "degraded": float(bool(r.degraded)),
            }
        )
    frame = pd.DataFrame(rows)
    if not frame.empty:
        frame["served_at"] = pd.to_datetime(frame["served_at"], utc=True)
        frame["day"] = frame["served_at"].dt.floor("D")
    return frame


def daily(per_list: pd.DataFrame) -> pd.DataFrame:
    """Day-by-day means of the per-list columns (the dashboard's series)."""
    return per_list.groupby("day")[list(COLUMNS)].mean().reset_index()
