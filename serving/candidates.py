"""Where the online path's candidates come from and what may be served: the blocklist and output
filter, the context-popular fallback lists, an in-process Direct generator, and the merge of the
sources in priority order."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd

from core.errors import AigqError
from core.lists import pool
from core.text import normalize_query
from models.direct import DirectBatch
from models.generator import clean_query

SOURCES = ("direct", "think", "fallback")


BLOCKLIST = Path(__file__).with_name("blocklist.txt")


def load_blocklist(path: Path = BLOCKLIST) -> tuple[str, ...]:
    """Lower-case phrases; a query containing one is never served or logged."""

    if not path.exists():
        return ()
    lines = [normalize_query(x) for x in path.read_text().splitlines() if x.strip() and not x.startswith("#")]
    return tuple(x for x in lines if x)


def output_filter(blocklist: Sequence[str]) -> Callable[[str], str | None]:
    """The last gate before a query is served or logged: well formed (length, no control
    characters, normalised) and not blocklisted; None drops it."""

    # the same candidates come back request after request (nearline, Think and popular lists):
    # remember each text's verdict instead of normalising and scanning it again (~1 ms a request)
    @functools.lru_cache(maxsize=1 << 16)
    def check_text(query: str) -> str | None:
        q = clean_query(query)
        if q is None or any(b in q for b in blocklist):
            return None
        return q

    def check(query: Any) -> str | None:
        return check_text(query) if isinstance(query, str) else None

    return check


class PopularLists:
    """Context-popular fallbacks from the latest daily query statistics (the batch feature table,
    read once at start-up, so they survive an online-store outage)."""

    def __init__(self, query_stats_path: Path, k: int = 40):
        if not query_stats_path.exists():
            raise AigqError(f"{query_stats_path}: no query statistics; run `aigq simulate` or `aigq ingest DIR`")
        stats = pd.read_parquet(
            query_stats_path, columns=["query", "query_category_id", "q_n_search_30d", "event_timestamp"]
        )
        latest = stats[stats["event_timestamp"] == stats["event_timestamp"].max()]
        latest = latest.sort_values(["q_n_search_30d", "query"], ascending=[False, True])
        total = max(float(latest["q_n_search_30d"].sum()), 1.0)
        self.share = dict(zip(latest["query"], latest["q_n_search_30d"] / total))
        self.global_list = list(latest["query"][:k])
        self.by_category = {c: list(g["query"][:k]) for c, g in latest.groupby("query_category_id")}

    def for_categories(self, categories: Sequence[str], k: int) -> list[str]:
        """Round-robin over the categories' popular queries, then the global list."""

        return pool([self.by_category.get(c, []) for c in categories] + [self.global_list])[: max(k, 0)]


def merge_candidates(
    lists: Mapping[str, Sequence[str]], searched: set[str], allow: Callable[[str], str | None], per_source: int
) -> tuple[list[str], list[str]]:
    """Distinct, allowed, not-yet-searched candidates, sources in priority order (direct, think,
    fallback); the first source to propose a query keeps it."""
    candidates, sources = [], []
    for source in SOURCES:
        taken = 0
        for raw in lists.get(source, []):
            q = allow(raw)
            if q is None or q in searched or q in candidates:
                continue
            candidates.append(q)
            sources.append(source)
            taken += 1
            if taken == per_source:
                break
    return candidates, sources


def local_direct(model_dir: str) -> tuple[Callable[[Mapping], list[str]], str]:
    """(user features -> the model's queries, version) for an in-process Direct model: the same
    prompt and decoding as the model servers' (`DirectBatch.lists`), so the answers agree."""

    batch = DirectBatch(Path(model_dir), batch_size=1)
    return (lambda user: batch.lists([user])[0]), batch.version
