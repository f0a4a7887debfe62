"""Generated lists as an evaluation `Policy`: user contexts come from Feast point-in-time at the
request time (the same `direct_generation_v1` features serving reads online), the generator
writes the list, and a baseline fills any shortfall (marked as fallback)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np
import pandas as pd

from core.catalogue import QueryCatalogue
from core.feature_store import DIRECT_SERVICE
from core.history import to_us
from models.generator import DirectGenerator
from pipelines.baselines import Policy
from pipelines.datasets import prompts_for
from pipelines.training_frames import sft_context_frame


def catalogue_validator(queries: pd.DataFrame) -> Callable[[str], bool]:
    """A query is valid if it is in the vocabulary or names a product type (it would return items)."""
    no_categories = pd.DataFrame(columns=["category_id", "category_name", "domain"])
    return QueryCatalogue(queries, no_categories).is_valid


def feast_contexts(fs, service: str = DIRECT_SERVICE) -> Callable[[Sequence[tuple[str, object]]], list[dict]]:
    """requests -> the feature service's user features as of each request time."""

    def fetch(requests):
        entity = pd.DataFrame(
            {
                "session_id": np.arange(len(requests)),
                "user_id": [u for u, _ in requests],
                "session_start": pd.to_datetime([t for _, t in requests], utc=True),
            }
        )
        frame = sft_context_frame(fs, entity, service).sort_values("session_id")
        return frame.to_dict("records")

    return fetch


class GeneratorPolicy(Policy):
    def __init__(
        self, name: str, generator: DirectGenerator, contexts: Callable, categories: pd.DataFrame, fallback: Policy
    ):
        self.name, self.generator, self.fetch = name, generator, contexts
        self.categories, self.fallback = categories, fallback
        self._contexts: dict[tuple[str, int], Mapping] = {}
        self.generated: list = []

    def prepare(self, requests) -> None:
        """Fetch every request's context in one point-in-time query."""
        for (u, t), ctx in zip(requests, self.fetch(requests)):
            self._contexts[(u, to_us(t))] = ctx

    def recommend_batch(self, requests, k=8):
        missing = [r for r in requests if (r[0], to_us(r[1])) not in self._contexts]
        if missing:
            self.prepare(missing)
        contexts = [self._contexts[(u, to_us(t))] for u, t in requests]
        fallbacks = [self.fallback.recommend(u, t, 2 * k) for u, t in requests]
        prompts = prompts_for(contexts, self.categories, self.generator.is_valid)
        out = self.generator.generate(prompts, fallbacks, scopes=self.generator.scopes_for(contexts))
        self.generated.extend(out)
        return [g.queries[:k] for g in out]

    def recommend(self, user_id, time, k=8):
        return self.recommend_batch([(user_id, time)], k)[0]

    def generation_stats(self) -> dict:
        g = self.generated
        if not g:
            return {}
        k = self.generator.config.k
        return {
            "lists": len(g),
            "parse_failure_rate": float(np.mean([x.parse_failed for x in g])),
            "shortfall_rate": float(np.mean([x.n_parsed < k for x in g])),
            "model_share": float(np.mean([s == "model" for x in g for s in x.sources])),
            "raw_validity": float(sum(x.n_valid for x in g) / max(sum(x.n_candidates for x in g), 1)),
            "mean_candidates": float(np.mean([x.n_candidates for x in g])),
        }
