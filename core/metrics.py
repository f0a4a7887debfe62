"""Per-list metrics: plain Python/numpy, one implementation for the evaluation harness and for
monitoring. A list is a ranked sequence of normalised query strings; duplicates count once
(at their first position), so a list cannot score twice for repeating a hit.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Iterable, Mapping, Sequence

import numpy as np

EMBEDDING_DIM = 256


def dedupe(items: Sequence) -> list:
    seen, out = set(), []
    for x in items:
        if x not in seen:
            seen.add(x)
            out.append(x)
    return out


def _hits(ranked: Sequence[str], truth: set[str], k: int) -> list[int]:
    """0-based positions (in the list as shown) of first occurrences that are relevant."""
    seen, hits = set(), []
    for pos, q in enumerate(ranked[:k]):
        if q in truth and q not in seen:
            hits.append(pos)
        seen.add(q)
    return hits


def hit_rate(ranked: Sequence[str], truth: Iterable[str], k: int = 8) -> float:
    return float(bool(_hits(ranked, set(truth), k)))


def mrr(ranked: Sequence[str], truth: Iterable[str], k: int = 8) -> float:
    hits = _hits(ranked, set(truth), k)
    return 1.0 / (hits[0] + 1) if hits else 0.0


def ndcg(ranked: Sequence[str], truth: Iterable[str], k: int = 8) -> float:
    """Binary-relevance NDCG@k; NaN when there is nothing relevant to find."""
    truth = set(truth)
    if not truth:
        return math.nan
    dcg = sum(1.0 / math.log2(p + 2) for p in _hits(ranked, truth, k))
    ideal = sum(1.0 / math.log2(p + 2) for p in range(min(len(truth), k)))
    return dcg / ideal


def ild_category(categories: Sequence[str | None]) -> float:
    """Share of pairs of (distinct, categorised) items whose categories differ; 0 below 2 items."""
    cats = [c for c in categories if c is not None]
    n = len(cats)
    if n < 2:
        return 0.0
    same = sum(cats.count(c) * (cats.count(c) - 1) for c in set(cats)) / 2
    return 1.0 - same / (n * (n - 1) / 2)


def category_entropy(categories: Sequence[str | None]) -> float:
    """Shannon entropy (nats) of the list's category distribution; 0 for one category."""
    cats = [c for c in categories if c is not None]
    if not cats:
        return 0.0
    n = len(cats)
    return float(-sum(cats.count(c) / n * math.log(cats.count(c) / n) for c in set(cats)))


def distinct_categories(categories: Sequence[str | None]) -> int:
    return len({c for c in categories if c is not None})


def text_embedding(queries: Sequence[str], dim: int = EMBEDDING_DIM) -> np.ndarray:
    """L2-normalised hashed character-trigram counts: a cheap, deterministic text embedding."""
    out = np.zeros((len(queries), dim))
    for i, q in enumerate(queries):
        s = f" {q} "
        for j in range(len(s) - 2):
            out[i, zlib.crc32(s[j : j + 3].encode()) % dim] += 1.0
    norms = np.linalg.norm(out, axis=1, keepdims=True)
    return out / np.where(norms == 0, 1, norms)


def ild_embedding(queries: Sequence[str]) -> float:
    """Mean pairwise cosine distance of the (distinct) queries' text embeddings."""
    qs = dedupe(queries)
    if len(qs) < 2:
        return 0.0
    e = text_embedding(qs)
    sim = e @ e.T
    iu = np.triu_indices(len(qs), 1)
    return float(np.mean(1.0 - sim[iu]))


def interest_coverage(categories: Sequence[str | None], interests: Iterable[str]) -> float:
    """Share of the user's interest categories the list touches; NaN without interests."""
    interests = set(interests)
    if not interests:
        return math.nan
    return len(interests & set(categories)) / len(interests)


def novelty(queries: Sequence[str], counts: Mapping[str, int], total: int, vocabulary: int) -> float:
    """Mean -log2 of add-one-smoothed search popularity (higher: less known queries)."""
    qs = dedupe(queries)
    if not qs:
        return math.nan
    return float(np.mean([-math.log2((counts.get(q, 0) + 1) / (total + vocabulary)) for q in qs]))


def share(flags: Sequence[bool]) -> float:
    return float(np.mean(flags)) if len(flags) else math.nan


def repeat_rate(queries: Sequence[str], searched: set[str]) -> float:
    return share([q in searched for q in dedupe(queries)])
