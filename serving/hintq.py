"""The online HintQ path, shared by every server (in-process, BentoML, KServe).

    request (user id, k, optional context)
      -> Feast online features (`hintq_online_v2`: user context + the nearline Direct list)
      -> Think candidates for the user's triggers (`think_candidates_v1`)
      -> merge: dedupe, drop already-searched, blocklisted, malformed and reviewer-flagged queries
      -> CTR scores of every candidate in one batch, with a query-popularity prior
      -> diversity-aware re-rank (slots per interest category, or MMR over categories and domains)
      -> top K, each with its source (direct | think | fallback) and score

Every server runs this one path (`recommend`); what differs is only where the two models run,
plugged in as callables: `scorer` (CTR rows -> probabilities) and `direct_fn` (user features ->
a Direct list for a user the nearline job has not reached), each in process or a call to a model
server (BentoML's services, KServe's predictor). Same request and state, same answer.

Nothing fails a request: an unknown user gets a context-popular list; an online store or model
that is down gives the cached popular list (or the unscored candidates), marked degraded, and a
circuit per dependency (`serving.circuit`) stops every request waiting on a dead one. Admission
control: a request that queued past `deadline_ms`, or finds `max_in_flight` requests in
progress, gets the cached popular list at once, marked degraded (`serving.admission` turns away
what is past even that with a 503).
"""

from __future__ import annotations

import gc
import logging
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np

from core.catalogue import QueryCatalogue
from core.config import aigq_home
from core.errors import AigqError
from core.feature_store import CATEGORY_PREFIX, HINTQ_SERVICE, THINK_SERVICE
from core.lists import pool, to_plain
from models.direct import newest_direct_model
from serving.candidates import PopularLists, load_blocklist, local_direct, merge_candidates, output_filter
from serving.circuit import Circuit
from serving.config import ServingConfig
from serving.contract import HintQRequest, parse_request
from serving.log import ServingLog, ServingLogProcess
from serving.ranking import limit_torch_threads, load_scorer, rerank, with_popularity_prior
from serving.review import FlagWatcher
from serving.store import open_online_store

log = logging.getLogger(__name__)


@dataclass
class Prepared:
    """What `prepare` found: candidates with their sources, the CTR rows, and why it degraded."""

    request: HintQRequest
    request_id: str
    started: float
    candidates: list[str]
    sources: list[str]
    categories: list[str | None]
    rows: list[dict]  # one CTR row per candidate (user + query features, position 0)
    prior: list[float]  # order-preserving fallback scores when the ranker is unavailable
    model_versions: dict
    degraded_reason: str = ""
    interests: list = field(default_factory=list)  # [(category, share)] strongest first


class HintQ:
    """The online path. Loads everything at construction, so a missing or corrupt model fails
    at start-up with a clear error, not at the first request."""

    def __init__(
        self,
        cfg: ServingConfig | None = None,
        scorer=None,
        store=None,
        direct_fn: Callable[[Mapping], list[str]] | None = None,
        direct_version: str = "",
    ):

        self.cfg = cfg or ServingConfig()
        limit_torch_threads(self.cfg.torch_threads)
        home = aigq_home()
        if not (home / "data" / "queries.parquet").exists():
            raise AigqError(f"{home / 'data'}: no catalogue; run `aigq simulate` or `aigq ingest DIR` first")
        self.catalogue = QueryCatalogue.load(home / "data")
        self.popular = PopularLists(home / "features" / "query_stats.parquet")
        self.allow = output_filter(load_blocklist())
        self.scorer = scorer if scorer is not None else load_scorer(self.cfg.ctr_model)
        # Direct lists come from the nearline job through Feast; `direct_fn` (user features ->
        # queries) generates one on the request path for a known user the job has not reached yet
        self.direct_fn, self.direct_version = direct_fn, direct_version
        if direct_fn is None and self.cfg.direct_model != "none":
            model_dir = self.cfg.direct_model or newest_direct_model(required=False)
            if model_dir:
                self.direct_fn, self.direct_version = local_direct(str(model_dir))
        self.store = store if store is not None else open_online_store(self.cfg.store, self.cfg.store_timeout_seconds)
        self._query_cache: dict[str, tuple[float, dict]] = {}
        self.store_circuit = Circuit(self.cfg.store_retry_seconds)
        self.ranker_circuit = Circuit(self.cfg.ranker_retry_seconds)
        self.direct_circuit = Circuit(self.cfg.direct_retry_seconds)
        self._in_flight = 0
        self._in_flight_lock = threading.Lock()
        # registry lookups cost ~1.5 ms each: resolve the services once, not per request
        self.user_service = self.store.get_feature_service(HINTQ_SERVICE)
        self.think_service = self.store.get_feature_service(THINK_SERVICE)
        self.query_refs = [f"query_stats:{f.name}" for f in self.store.get_feature_view("query_stats").features]
        if self.cfg.warm_query_cache:
            try:
                self.warm_query_cache()
            except Exception as e:  # noqa: BLE001 - a store down at start-up: fill the cache per request
                log.warning("query features not warmed: %s", e)
        if self.cfg.freeze_gc:
            # everything loaded so far (models, Feast, catalogue) lives as long as the process:
            # move it out of the collector's sight, so a full collection walks only new objects
            gc.collect()
            gc.freeze()
        writer = ServingLogProcess if self.cfg.log_writer == "process" else ServingLog
        self.log = writer(self.cfg.log_url or None) if self.cfg.log else None
        self.flags = FlagWatcher(self.cfg.review_url or None, self.cfg.flags_refresh_seconds)
        self.versions = {"ctr": getattr(self.scorer, "version", "remote"), "feature_service": HINTQ_SERVICE}

    # ---- lookups -------------------------------------------------------------------------
    def user_features(self, request: HintQRequest) -> dict:
        hour = request.context.get("hour", datetime.now(UTC).hour)
        out = self.store.get_online_features(
            features=self.user_service, entity_rows=[{"user_id": request.user_id, "request_hour": hour}]
        ).to_dict()
        return {k: to_plain(v[0]) for k, v in out.items()}

    def think_lists(self, triggers: Sequence[str]) -> tuple[list[list[str]], str | None]:
        if not triggers:
            return [], None
        out = self.store.get_online_features(
            features=self.think_service, entity_rows=[{"trigger": t} for t in triggers]
        ).to_dict()
        versions = [v for v in out.get("think_model_version", []) if v]
        return [to_plain(q) or [] for q in out["think_queries"]], (versions[0] if versions else None)

    def warm_query_cache(self, chunk: int = 2000) -> None:
        """Every catalogue query's features, read from the online store at start-up (8,518
        queries of the demo world in about a second), so requests do not pay the misses."""
        vocabulary = sorted(self.catalogue.vocabulary)
        for start in range(0, len(vocabulary), chunk):
            self.query_features(vocabulary[start : start + chunk])

    def query_features(self, queries: Sequence[str]) -> dict[str, dict]:
        """query_stats of each query, cached (daily batch features); unknown queries get {}."""
        now = time.monotonic()
        fresh = {}
        for q in queries:
            hit = self._query_cache.get(q)
            if hit is not None and now - hit[0] < self.cfg.query_cache_seconds:
                fresh[q] = hit[1]
        missing = [q for q in dict.fromkeys(queries) if q not in fresh]
        if missing:
            out = self.store.get_online_features(
                features=self.query_refs, entity_rows=[{"query": q} for q in missing]
            ).to_dict()
            for i, q in enumerate(missing):
                feats = {k: to_plain(v[i]) for k, v in out.items() if k != "query"}
                self._query_cache[q] = (now, feats)
                fresh[q] = feats
        return fresh

    # ---- the two halves --------------------------------------------------------------------
    def prepare(self, request: HintQRequest) -> Prepared:
        started = time.perf_counter()
        request_id = uuid.uuid4().hex
        versions = dict(self.versions)
        # circuit open: do not wait on a dead store (a thread probes it with this request's read)
        if not self.store_circuit.allow(probe=lambda: self.user_features(request)):
            return self._popular(request, request_id, started, versions, "online store unavailable (circuit open)")
        try:
            user = self.user_features(request)
        except Exception as e:  # noqa: BLE001 - any store failure degrades to the cached list
            log.warning("online store unavailable: %s", e)
            self.store_circuit.failed()
            return self._popular(
                request, request_id, started, versions, f"online store unavailable: {type(e).__name__}"
            )
        self.store_circuit.succeeded()
        known = user.get("n_events_30d") is not None or user.get("gender") is not None
        if not known:
            return self._popular(request, request_id, started, versions, "")
        # what the user just searched is not suggested again (older searches may come back)
        # counted over shopping searches only: planted text must not free a slot for a real one
        recent = [q for q in user.get("recent_queries") or [] if isinstance(q, str) and self.catalogue.is_valid(q)]
        searched = (
            set(recent[: self.cfg.drop_recent_searches])
            | set(user.get("session_queries") or [])
            | set(request.context.get("session_queries", []))
        )
        direct = user.get("direct_queries") or []
        if user.get("direct_model_version"):
            versions["direct"] = user["direct_model_version"]
        partial = ""  # a part that failed after the user's features: the answer is degraded
        if not direct and self.direct_fn is not None:
            direct, partial = self.generate_direct(user, versions)
        lists: dict[str, list[str]] = {"direct": direct}
        try:
            think, think_version = self.think_lists(self.triggers(user, request))
        except Exception as e:  # noqa: BLE001
            log.warning("think lookup failed: %s", e)
            think, think_version = [], None
            partial = partial or f"think lookup failed: {type(e).__name__}"
        if think_version:
            versions["think"] = think_version

        lists["think"] = pool(think)
        top = list(request.context.get("categories", [])) + list(user.get("top_categories_30d") or [])[:4]
        lists["fallback"] = self.popular.for_categories(top, 2 * request.k)
        candidates, sources = self.merge(lists, searched)
        try:
            qfeats = self.query_features(candidates)
        except Exception as e:  # noqa: BLE001
            log.warning("query features unavailable: %s", e)
            qfeats, partial = {}, partial or f"query features unavailable: {type(e).__name__}"
        categories = [qfeats.get(q, {}).get("query_category_id") or self.catalogue.category(q) for q in candidates]
        candidates, sources, categories = self.unflagged(candidates, sources, categories)
        user_row = {k: v for k, v in user.items() if k not in ("direct_queries", "direct_model_version")}
        rows = [{**user_row, **qfeats.get(q, {}), "query": q, "position": 0} for q in candidates]
        prior = [1.0 / (1 + i) for i in range(len(candidates))]
        interests = list(zip(user.get("top_categories_30d") or [], user.get("top_category_weights_30d") or []))
        return Prepared(
            request,
            request_id,
            started,
            candidates,
            sources,
            categories,
            rows,
            prior,
            versions,
            degraded_reason=partial,
            interests=interests,
        )

    def finish(self, prepared: Prepared, scores: Sequence[float] | None, degraded_reason: str = "") -> dict:
        """Rank, cut to K, log; `scores` None means the ranker was unavailable (degraded)."""
        reason = prepared.degraded_reason or degraded_reason
        if scores is None or len(scores) != len(prepared.candidates):
            reason = reason or "ranker unavailable"
            scores = prepared.prior
        elif prepared.rows:
            scores = with_popularity_prior(scores, prepared.rows, self.cfg.popularity_weight)
        order = rerank(
            np.asarray(scores, dtype=float),
            prepared.categories,
            prepared.interests,
            self.catalogue.domain,
            prepared.request.k,
            self.cfg,
        )
        suggestions = [
            {"query": prepared.candidates[i], "score": round(float(scores[i]), 6), "source": prepared.sources[i]}
            for i in order
        ]
        answer = {
            "request_id": prepared.request_id,
            "suggestions": suggestions,
            "degraded": bool(reason),
            "model_versions": prepared.model_versions,
        }
        if self.log is not None:
            self.log.submit(
                {
                    "request_id": prepared.request_id,
                    "user_id": prepared.request.user_id,
                    "k": prepared.request.k,
                    "context": dict(prepared.request.context),
                    "queries": [s["query"] for s in suggestions],
                    "sources": [s["source"] for s in suggestions],
                    "scores": [s["score"] for s in suggestions],
                    "categories": [prepared.categories[i] for i in order],
                    "degraded": bool(reason),
                    "degraded_reason": reason,
                    "model_versions": prepared.model_versions,
                    "latency_ms": (time.perf_counter() - prepared.started) * 1000,
                    "server": self.cfg.server,
                }
            )
        return answer

    def recommend(self, request: HintQRequest | Mapping, arrived: float | None = None) -> dict:
        """The whole path in process. `arrived` (time.monotonic() when the server took the
        request in) lets admission control answer a request that queued past its deadline, or
        that finds the process full, with the cached popular list at once."""
        request = request if isinstance(request, HintQRequest) else parse_request(request)
        overloaded = self.overload_reason(arrived)
        if overloaded:
            started = time.perf_counter()
            return self.finish(self._popular(request, uuid.uuid4().hex, started, dict(self.versions), overloaded), None)
        with self._in_flight_lock:
            self._in_flight += 1
        try:
            prepared = self.prepare(request)
            return self.finish(prepared, *self.score(prepared))
        finally:
            with self._in_flight_lock:
                self._in_flight -= 1

    def overload_reason(self, arrived: float | None) -> str:
        """Why this request is answered with the popular list without doing the work, or ""."""
        if arrived is not None:
            waited_ms = (time.monotonic() - arrived) * 1000
            if waited_ms > self.cfg.deadline_ms:
                return f"overloaded: waited {waited_ms:.0f} ms for a worker (deadline {self.cfg.deadline_ms:.0f} ms)"
        if self._in_flight >= self.cfg.max_in_flight:
            return f"overloaded: {self._in_flight} requests in progress"
        return ""

    def score(self, prepared: Prepared) -> tuple[list[float] | None, str]:
        """(CTR scores, degraded reason): the popular list is already ordered; after a ranker
        failure the merge order is served until the circuit lets a probe through (a dead ranker
        is not waited on by every request)."""
        if not prepared.rows:
            return prepared.prior, ""
        if not self.ranker_circuit.allow(probe=lambda: self.scorer(prepared.rows)):
            return None, "ranker unavailable (circuit open)"
        try:
            scores = self.scorer(prepared.rows)
        except Exception as e:  # noqa: BLE001 - a failing ranker degrades to the merge order
            log.warning("CTR scorer failed: %s", e)
            self.ranker_circuit.failed()
            return None, f"ranker unavailable: {type(e).__name__}"
        self.ranker_circuit.succeeded()
        if getattr(self.scorer, "version", ""):  # a remote model says its version in each answer
            prepared.model_versions["ctr"] = self.scorer.version
        return scores, ""

    def generate_direct(self, user: Mapping, versions: dict) -> tuple[list[str], str]:
        """(a Direct list for a user the nearline job has not reached, degraded reason)."""
        if not self.direct_circuit.allow(probe=lambda: self.direct_fn(user)):
            return [], "Direct generation unavailable (circuit open)"
        try:
            direct = self.direct_fn(user)
        except Exception as e:  # noqa: BLE001 - the generator is optional: serve without it
            log.warning("Direct generation failed: %s", e)
            self.direct_circuit.failed()
            return [], f"Direct generation failed: {type(e).__name__}"
        self.direct_circuit.succeeded()
        versions["direct"] = getattr(self.direct_fn, "version", "") or self.direct_version
        return direct, ""

    # ---- helpers ---------------------------------------------------------------------------
    def triggers(self, user: Mapping, request: HintQRequest) -> list[str]:
        queries = (
            list(request.context.get("session_queries", []))[::-1]
            + list(user.get("session_queries") or [])
            + list(user.get("recent_queries") or [])
        )
        cats = list(dict.fromkeys(user.get("recent_click_categories") or []))[:2]
        # only text that names something the shop sells is a trigger: an injected "buy now" or
        # "ignore previous instructions" must not take a slot from the user's real searches
        shopping = (q for q in queries if isinstance(q, str) and self.catalogue.is_valid(q))
        out = list(dict.fromkeys(shopping))[: max(self.cfg.think_triggers - len(cats), 1)]
        return (out + [CATEGORY_PREFIX + c for c in cats])[: self.cfg.think_triggers]

    def merge(self, lists: Mapping[str, Sequence[str]], searched: set[str]) -> tuple[list[str], list[str]]:
        return merge_candidates(lists, searched, self.allow, self.cfg.per_source)

    def unflagged(self, candidates: list[str], sources: list[str], categories: list) -> tuple[list, list, list]:
        """The candidates no reviewer has flagged (everywhere, or in the candidate's category)."""
        blocked = self.flags.blocked
        if not len(blocked):
            return candidates, sources, categories
        keep = [i for i, (q, c) in enumerate(zip(candidates, categories)) if not blocked(q, c)]
        return [candidates[i] for i in keep], [sources[i] for i in keep], [categories[i] for i in keep]

    def _popular(self, request, request_id, started, versions, reason) -> Prepared:
        """The context-popular list (the request's categories first, then the global list)."""
        cats = list(request.context.get("categories", []))
        searched = set(request.context.get("session_queries", []))
        candidates, sources = self.merge({"fallback": self.popular.for_categories(cats, 2 * request.k)}, searched)
        categories = [self.catalogue.category(q) for q in candidates]
        candidates, sources, categories = self.unflagged(candidates, sources, categories)
        # the context's categories come first: keep that order (scores fall with the rank)
        prior = [1.0 / (1 + i) for i in range(len(candidates))]
        return Prepared(
            request, request_id, started, candidates, sources, categories, [], prior, versions, degraded_reason=reason
        )

    def close(self) -> None:
        self.flags.close()
        if self.log is not None:
            self.log.close()
