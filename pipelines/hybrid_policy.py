"""The hybrid HintQ policy offline: what the online path serves, replayed on held-out requests.

Direct list + Think candidates of the user's triggers + context-popular fallback, merged and
filtered by the online path's own `merge_candidates`, scored by the CTR model with the user's
features as of the request (Feast, point in time) and the query statistics as of the cut-off,
ranked by the online path's own `with_popularity_prior` and `rerank`. Only the feature source
differs from serving (offline point-in-time instead of the online store), so the evaluation
measures the served policy.
"""

from __future__ import annotations

from collections.abc import Mapping

from core.history import EventLog, to_us
from core.lists import as_list
from pipelines.baselines import Policy
from serving.candidates import load_blocklist, merge_candidates, output_filter
from serving.config import ServingConfig
from serving.ranking import rerank, with_popularity_prior


class HybridPolicy(Policy):
    name = "hybrid"

    def __init__(
        self,
        direct,
        think,
        fallback: Policy,
        scorer,
        query_stats: Mapping[str, dict],
        catalogue,
        log: EventLog,
        serving=None,
    ):

        self.direct, self.think, self.fallback = direct, think, fallback
        self.scorer, self.query_stats, self.catalogue, self.log = scorer, query_stats, catalogue, log
        self.allow = output_filter(load_blocklist())
        self.cfg = serving or ServingConfig()  # the online path's own settings
        self.served: list[dict] = []  # per answer: queries, sources, scores, categories (for logs)

    def prepare(self, requests) -> None:
        self.direct.prepare(requests)

    def recommend_batch(self, requests, k=8):
        direct_lists = self.direct.recommend_batch(requests, k)
        generated = self.direct.generated[-len(requests) :]
        contexts, merged = [], []
        for (u, t), _, g in zip(requests, direct_lists, generated):
            model_part = g.model_queries
            lists = {
                "direct": model_part,
                "think": self.think.candidates(u, t),
                "fallback": self.fallback.recommend(u, t, 2 * k),
            }
            searched = set(self.log.recent_queries(u, t, self.cfg.drop_recent_searches))
            merged.append(merge_candidates(lists, searched, self.allow, self.cfg.per_source))
            contexts.append(self.direct._contexts[(u, to_us(t))])
        cands = [[{"query": q, **self.query_stats.get(q, {})} for q in c] for c, _ in merged]
        scores = self.scorer.score_users(contexts, cands)
        out = []
        for (candidates, sources), ctr_scores, rows, ctx_i in zip(merged, scores, cands, contexts):
            s = with_popularity_prior(ctr_scores, rows, self.cfg.popularity_weight)
            cats = [r.get("query_category_id") or self.catalogue.category(r["query"]) for r in rows]
            interests = list(
                zip(as_list(ctx_i.get("top_categories_30d")), as_list(ctx_i.get("top_category_weights_30d")))
            )
            order = rerank(s, cats, interests, self.catalogue.domain, k, self.cfg)
            out.append([candidates[i] for i in order])
            self.served.append(
                {
                    "queries": out[-1],
                    "sources": [sources[i] for i in order],
                    "scores": [round(float(s[i]), 6) for i in order],
                    "categories": [cats[i] for i in order],
                }
            )
        return out

    def recommend(self, user_id, time, k=8):
        return self.recommend_batch([(user_id, time)], k)[0]
