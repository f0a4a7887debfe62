"""Small list helpers shared by policies, training and serving: feature values as plain Python,
and the two ways lists of queries are combined."""

from __future__ import annotations

import math
from collections.abc import Sequence


def as_list(v) -> list:
    """A feature value as a list: Feast gives None, NaN (pandas) or an array for a missing list."""
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return []
    return list(v)


def to_plain(v):
    """A feature value as JSON-able Python: arrays -> lists, NaN -> None (recursively)."""
    if hasattr(v, "tolist"):
        v = v.tolist()
    if isinstance(v, float) and math.isnan(v):
        return None
    if isinstance(v, list):
        return [to_plain(x) for x in v]
    return v


def fill(ranked: Sequence[str], fallback: Sequence[str], k: int, exclude: set[str] = frozenset()) -> list[str]:
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
