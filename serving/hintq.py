"""The online HintQ path, shared by every server (in-process, BentoML, KServe).

    request (user id, k, optional context)
      -> Feast online features (`hintq_online_v2`: user context + the nearline Direct list)
      -> Think candidates for the user's triggers (`think_candidates_v1`)
      -> merge: dedupe, drop already-searched, blocklisted and malformed queries
      -> CTR scores of every candidate in one batch, with a query-popularity prior
      -> diversity-aware re-rank (slots per interest category, or MMR over categories and domains)
      -> top K, each with its source (direct | think | fallback) and score

It is split in two so a server can score remotely between the halves (the KServe transformer
calls its predictor, the BentoML orchestrator its CTR service): `prepare(request)` does the
lookups and builds the CTR rows, `finish(prepared, scores)` ranks and logs. `recommend(request)`
does both in process.

Nothing fails a request: an unknown user gets a context-popular list; an online store or model
that is down gives the cached popular list (or the unscored candidates), marked degraded.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from models.generator import to_plain
from pipelines.config import aigq_home, option
from pipelines.errors import AigqError

log = logging.getLogger(__name__)

MAX_K = 20
MAX_USER_ID_CHARS = 128
MAX_CONTEXT_ITEMS = 20
MAX_CONTEXT_TEXT = 100
USER_SERVICE = "hintq_online_v2"
THINK_SERVICE = "think_candidates_v1"
SOURCES = ("direct", "think", "fallback")
BLOCKLIST = Path(__file__).with_name("blocklist.txt")


class RequestError(AigqError):
    """A malformed request: servers answer it with HTTP 400 and this message."""


@dataclass(frozen=True)
class HintQRequest:
    user_id: str
    k: int = 8
    context: Mapping[str, Any] = field(default_factory=dict)


# request-time context fields a caller may send: (type, check, description)
CONTEXT_FIELDS = {
    "hour": "integer 0..23, the user's local hour (default: the server's UTC hour)",
    "session_queries": f"list of up to {MAX_CONTEXT_ITEMS} strings, searches of the current session not yet in Feast",
    "categories": f"list of up to {MAX_CONTEXT_ITEMS} category ids the page is about (cold-start hint)",
}


def parse_request(payload: Any) -> HintQRequest:
    """A validated request, or RequestError naming the field at fault."""
    if not isinstance(payload, Mapping):
        raise RequestError(f"request must be a JSON object, got {type(payload).__name__}")
    unknown = set(payload) - {"user_id", "k", "context"}
    if unknown:
        raise RequestError(f"unknown request fields {sorted(unknown)}; expected user_id, k, context")
    user_id = payload.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        raise RequestError("user_id: required, a non-empty string")
    if len(user_id) > MAX_USER_ID_CHARS or any(ord(ch) < 32 for ch in user_id):
        raise RequestError(f"user_id: at most {MAX_USER_ID_CHARS} printable characters")
    k = payload.get("k", 8)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RequestError(f"k: an integer between 1 and {MAX_K}, got {k!r}"[:200])
    context = payload.get("context") or {}
    if not isinstance(context, Mapping):
        raise RequestError("context: an object of optional request-time fields")
    return HintQRequest(user_id, k, parse_context(context))


def parse_context(context: Mapping) -> dict:
    unknown = set(context) - set(CONTEXT_FIELDS)
    if unknown:
        raise RequestError(f"context: unknown fields {sorted(map(str, unknown))[:5]}; known: "
                           + "; ".join(f"{k} ({v})" for k, v in CONTEXT_FIELDS.items()))
    out: dict = {}
    if "hour" in context:
        hour = context["hour"]
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise RequestError(f"context.hour: {CONTEXT_FIELDS['hour']}, got {hour!r}"[:200])
        out["hour"] = hour
    for name in ("session_queries", "categories"):
        if name in context:
            values = context[name]
            if (not isinstance(values, list) or len(values) > MAX_CONTEXT_ITEMS
                    or not all(isinstance(v, str) and len(v) <= MAX_CONTEXT_TEXT for v in values)):
                raise RequestError(f"context.{name}: {CONTEXT_FIELDS[name]} of at most {MAX_CONTEXT_TEXT} characters")
            out[name] = list(values)
    return out


@dataclass
class ServingConfig:
    store: str = option("sqlite", "feature store config (sqlite | redis_postgres)")
    ctr_model: str = option("", "CTR model directory (default $AIGQ_HOME/models/ctr)")
    direct_model: str = option("", "Direct model for users without a nearline list (default: none, the "
                                   "nearline list or the fallback is served)")
    think_triggers: int = option(5, "look up Think mappings for at most this many of the user's triggers")
    per_source: int = option(16, "take at most this many candidates from each source")
    rerank: str = option("interest", "interest (slots per top interest category, each category at most max_share "
                                     "of the list) | mmr (maximal marginal relevance over categories)")
    max_share: float = option(0.75, "interest re-rank: most of the list one category may take")
    popularity_weight: float = option(0.2, "ranking score = sigmoid(CTR logit + this * log1p(the query's 30-day "
                                           "searches)); 0 ranks by the CTR model alone")
    mmr_lambda: float = option(0.7, "MMR trade-off (also for users without interests): 1 ranks by CTR only")
    drop_recent_searches: int = option(3, "drop the user's last N searches (and the session's) from the list")
    query_cache_seconds: float = option(600.0, "query features are cached this long (they change daily)")
    store_retry_seconds: float = option(2.0, "after an online-store failure, serve the cached popular list this "
                                             "long before trying the store again")
    ranker_retry_seconds: float = option(2.0, "after a ranker failure, serve the merge order this long before "
                                              "calling the ranker again")
    store_timeout_seconds: float = option(0.25, "an online-store read waits at most this long (Redis socket "
                                                "timeouts, SQLite busy timeout) before the request degrades")
    log_url: str = option("", "serving log SQLAlchemy URL (default $AIGQ_SERVING_LOG_URL or SQLite under "
                              "$AIGQ_HOME/serving)")
    log: bool = option(True, "log every answer")
    server: str = option("inprocess", "name written to the log's server column")


def load_blocklist(path: Path = BLOCKLIST) -> tuple[str, ...]:
    """Lower-case phrases; a query containing one is never served or logged."""
    from pipelines.text import normalize_query

    if not path.exists():
        return ()
    lines = [normalize_query(x) for x in path.read_text().splitlines() if x.strip() and not x.startswith("#")]
    return tuple(x for x in lines if x)


def output_filter(blocklist: Sequence[str]) -> Callable[[str], str | None]:
    """The last gate before a query is served or logged: well formed (length, no control
    characters, normalised) and not blocklisted; None drops it."""
    from models.generator import clean_query

    def check(query: Any) -> str | None:
        q = clean_query(query) if isinstance(query, str) else None
        if q is None or any(b in q for b in blocklist):
            return None
        return q

    return check


class PopularLists:
    """Context-popular fallbacks from the latest daily query statistics (the batch feature table,
    read once at start-up, so they survive an online-store outage)."""

    def __init__(self, query_stats_path: Path, k: int = 40):
        import pandas as pd

        if not query_stats_path.exists():
            raise AigqError(f"{query_stats_path}: no query statistics; run `aigq simulate` or `aigq ingest DIR`")
        stats = pd.read_parquet(query_stats_path, columns=["query", "query_category_id", "q_n_search_30d",
                                                            "event_timestamp"])
        latest = stats[stats["event_timestamp"] == stats["event_timestamp"].max()]
        latest = latest.sort_values(["q_n_search_30d", "query"], ascending=[False, True])
        total = max(float(latest["q_n_search_30d"].sum()), 1.0)
        self.share = dict(zip(latest["query"], latest["q_n_search_30d"] / total))
        self.global_list = list(latest["query"][:k])
        self.by_category = {c: list(g["query"][:k]) for c, g in latest.groupby("query_category_id")}

    def for_categories(self, categories: Sequence[str], k: int) -> list[str]:
        """Round-robin over the categories' popular queries, then the global list."""
        from pipelines.baselines import pool

        return pool([self.by_category.get(c, []) for c in categories] + [self.global_list])[: max(k, 0)]


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

    def __init__(self, cfg: ServingConfig | None = None, scorer=None, store=None,
                 direct_fn: Callable[[Mapping], list[str]] | None = None, direct_version: str = ""):
        from pipelines.catalog import QueryCatalogue
        from serving.log import ServingLog

        self.cfg = cfg or ServingConfig()
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
        if direct_fn is None and self.cfg.direct_model:
            self.direct_fn, self.direct_version = local_direct(self.cfg.direct_model, self.catalogue)
        self.store = store if store is not None else open_online_store(self.cfg.store, self.cfg.store_timeout_seconds)
        self._query_cache: dict[str, tuple[float, dict]] = {}
        self._store_down_until = 0.0
        self._ranker_down_until = 0.0
        # registry lookups cost ~1.5 ms each: resolve the services once, not per request
        self.user_service = self.store.get_feature_service(USER_SERVICE)
        self.think_service = self.store.get_feature_service(THINK_SERVICE)
        self.query_refs = [f"query_stats:{f.name}" for f in self.store.get_feature_view("query_stats").features]
        self.log = ServingLog(self.cfg.log_url or None) if self.cfg.log else None
        self.versions = {"ctr": getattr(self.scorer, "version", "remote"), "feature_service": USER_SERVICE}

    # ---- lookups -------------------------------------------------------------------------
    def user_features(self, request: HintQRequest) -> dict:
        hour = request.context.get("hour", datetime.now(timezone.utc).hour)
        out = self.store.get_online_features(features=self.user_service,
                                             entity_rows=[{"user_id": request.user_id, "request_hour": hour}]).to_dict()
        return {k: to_plain(v[0]) for k, v in out.items()}

    def think_lists(self, triggers: Sequence[str]) -> tuple[list[list[str]], str | None]:
        if not triggers:
            return [], None
        out = self.store.get_online_features(features=self.think_service,
                                             entity_rows=[{"trigger": t} for t in triggers]).to_dict()
        versions = [v for v in out.get("think_model_version", []) if v]
        return [to_plain(q) or [] for q in out["think_queries"]], (versions[0] if versions else None)

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
            out = self.store.get_online_features(features=self.query_refs, entity_rows=[{"query": q} for q in missing]).to_dict()
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
        if time.monotonic() < self._store_down_until:  # circuit open: do not wait on a dead store
            return self._popular(request, request_id, started, versions, "online store unavailable (circuit open)")
        try:
            user = self.user_features(request)
        except Exception as e:  # noqa: BLE001 - any store failure degrades to the cached list
            log.warning("online store unavailable: %s", e)
            self._store_down_until = time.monotonic() + self.cfg.store_retry_seconds
            return self._popular(request, request_id, started, versions, f"online store unavailable: {type(e).__name__}")
        known = user.get("n_events_30d") is not None or user.get("gender") is not None
        if not known:
            return self._popular(request, request_id, started, versions, "")
        # what the user just searched is not suggested again (older searches may come back)
        searched = set((user.get("recent_queries") or [])[:self.cfg.drop_recent_searches]) \
            | set(user.get("session_queries") or []) | set(request.context.get("session_queries", []))
        direct = user.get("direct_queries") or []
        if user.get("direct_model_version"):
            versions["direct"] = user["direct_model_version"]
        partial = ""  # a part that failed after the user's features: the answer is degraded
        if not direct and self.direct_fn is not None:
            try:
                direct = self.direct_fn(user)
                versions["direct"] = self.direct_version
            except Exception as e:  # noqa: BLE001 - the generator is optional: serve without it
                log.warning("Direct generation failed: %s", e)
                partial = f"Direct generation failed: {type(e).__name__}"
        lists: dict[str, list[str]] = {"direct": direct}
        try:
            think, think_version = self.think_lists(self.triggers(user, request))
        except Exception as e:  # noqa: BLE001
            log.warning("think lookup failed: %s", e)
            think, think_version = [], None
            partial = partial or f"think lookup failed: {type(e).__name__}"
        if think_version:
            versions["think"] = think_version
        from pipelines.baselines import pool

        lists["think"] = pool(think)
        top = list(request.context.get("categories", [])) + list(user.get("top_categories_30d") or [])[:4]
        lists["fallback"] = self.popular.for_categories(top, 2 * request.k)
        candidates, sources = self.merge(lists, searched)
        try:
            qfeats = self.query_features(candidates)
        except Exception as e:  # noqa: BLE001
            log.warning("query features unavailable: %s", e)
            qfeats, partial = {}, partial or f"query features unavailable: {type(e).__name__}"
        user_row = {k: v for k, v in user.items() if k not in ("direct_queries", "direct_model_version")}
        rows = [{**user_row, **qfeats.get(q, {}), "query": q, "position": 0} for q in candidates]
        categories = [qfeats.get(q, {}).get("query_category_id") or self.catalogue.category(q) for q in candidates]
        prior = [1.0 / (1 + i) for i in range(len(candidates))]
        interests = list(zip(user.get("top_categories_30d") or [], user.get("top_category_weights_30d") or []))
        return Prepared(request, request_id, started, candidates, sources, categories, rows, prior, versions,
                        degraded_reason=partial, interests=interests)

    def finish(self, prepared: Prepared, scores: Sequence[float] | None, degraded_reason: str = "") -> dict:
        """Rank, cut to K, log; `scores` None means the ranker was unavailable (degraded)."""
        reason = prepared.degraded_reason or degraded_reason
        if scores is None or len(scores) != len(prepared.candidates):
            reason = reason or "ranker unavailable"
            scores = prepared.prior
        elif prepared.rows:
            scores = with_popularity_prior(scores, prepared.rows, self.cfg.popularity_weight)
        order = rerank(np.asarray(scores, dtype=float), prepared.categories, prepared.interests,
                       self.catalogue.domain, prepared.request.k, self.cfg)
        suggestions = [{"query": prepared.candidates[i], "score": round(float(scores[i]), 6),
                        "source": prepared.sources[i]} for i in order]
        answer = {"request_id": prepared.request_id, "suggestions": suggestions, "degraded": bool(reason),
                  "model_versions": prepared.model_versions}
        if self.log is not None:
            self.log.submit({
                "request_id": prepared.request_id, "user_id": prepared.request.user_id, "k": prepared.request.k,
                "context": dict(prepared.request.context), "queries": [s["query"] for s in suggestions],
                "sources": [s["source"] for s in suggestions], "scores": [s["score"] for s in suggestions],
                "categories": [prepared.categories[i] for i in order], "degraded": bool(reason),
                "degraded_reason": reason, "model_versions": prepared.model_versions,
                "latency_ms": (time.perf_counter() - prepared.started) * 1000, "server": self.cfg.server})
        return answer

    def recommend(self, request: HintQRequest | Mapping) -> dict:
        """The whole path in process."""
        request = request if isinstance(request, HintQRequest) else parse_request(request)
        prepared = self.prepare(request)
        skipped = self.without_ranker(prepared)
        if skipped is not None:
            return self.finish(prepared, *skipped)
        try:
            scores = self.scorer(prepared.rows)
        except Exception as e:  # noqa: BLE001 - a failing ranker degrades to the merge order
            return self.finish(prepared, None, self.ranker_failed(e))
        return self.finish(prepared, scores)

    def without_ranker(self, prepared: Prepared) -> tuple[list[float] | None, str] | None:
        """(scores, degraded reason) when the ranker is not to be called, else None: the popular
        list is already ordered; after a ranker failure the merge order is served for
        `ranker_retry_seconds` (a dead ranker is not waited on by every request)."""
        if not prepared.rows:
            return prepared.prior, ""
        if time.monotonic() < self._ranker_down_until:
            return None, "ranker unavailable (circuit open)"
        return None

    def ranker_failed(self, error: Exception) -> str:
        log.warning("CTR scorer failed: %s", error)
        self._ranker_down_until = time.monotonic() + self.cfg.ranker_retry_seconds
        return f"ranker unavailable: {type(error).__name__}"

    # ---- helpers ---------------------------------------------------------------------------
    def triggers(self, user: Mapping, request: HintQRequest) -> list[str]:
        from pipelines.think import CATEGORY_PREFIX

        queries = list(request.context.get("session_queries", []))[::-1] + list(user.get("session_queries") or []) \
            + list(user.get("recent_queries") or [])
        cats = list(dict.fromkeys(user.get("recent_click_categories") or []))[:2]
        out = list(dict.fromkeys(q for q in queries if isinstance(q, str)))[:max(self.cfg.think_triggers - len(cats), 1)]
        return (out + [CATEGORY_PREFIX + c for c in cats])[: self.cfg.think_triggers]

    def merge(self, lists: Mapping[str, Sequence[str]], searched: set[str]) -> tuple[list[str], list[str]]:
        return merge_candidates(lists, searched, self.allow, self.cfg.per_source)

    def _popular(self, request, request_id, started, versions, reason) -> Prepared:
        """The context-popular list (the request's categories first, then the global list)."""
        cats = list(request.context.get("categories", []))
        searched = set(request.context.get("session_queries", []))
        candidates, sources = self.merge({"fallback": self.popular.for_categories(cats, 2 * request.k)}, searched)
        # the context's categories come first: keep that order (scores fall with the rank)
        prior = [1.0 / (1 + i) for i in range(len(candidates))]
        categories = [self.catalogue.category(q) for q in candidates]
        return Prepared(request, request_id, started, candidates, sources, categories, [], prior, versions,
                        degraded_reason=reason)

    def close(self) -> None:
        if self.log is not None:
            self.log.close()


def merge_candidates(lists: Mapping[str, Sequence[str]], searched: set[str], allow: Callable[[str], str | None],
                     per_source: int) -> tuple[list[str], list[str]]:
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


def with_popularity_prior(ctr: Sequence[float], rows: Sequence[Mapping], weight: float) -> np.ndarray:
    """Ranking scores: each CTR probability with `weight * log1p(30-day searches)` added to its
    logit (`rows` carry the candidates' query_stats; a query without stats gets no bonus).
    Why: the ranker learns from the legacy policy's impressions, where head queries were shown to
    everyone and so look less clickable than they are to the users whose interests they match;
    on the demo evaluation the prior doubles the hybrid's HitRate@8 (0.29 -> 0.50) and raises its
    simulated clicks slightly, at the same diversity."""
    p = np.clip(np.asarray(ctr, dtype=float), 1e-6, 1 - 1e-6)
    if weight == 0 or len(p) == 0:
        return p
    searches = np.array([_count(r.get("q_n_search_30d")) for r in rows], dtype=float)
    return 1.0 / (1.0 + np.exp(-(np.log(p / (1 - p)) + weight * np.log1p(searches))))


def _count(value) -> float:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) \
        and math.isfinite(value) and value > 0 else 0.0


def rerank(scores: np.ndarray, categories: Sequence[str | None], interests: Sequence[tuple[str, float]],
           domain_of: Mapping[str, str], k: int, cfg: ServingConfig) -> list[int]:
    """The configured diversity-aware re-rank; MMR where the user has no interests to cover."""
    if cfg.rerank == "interest" and interests:
        return interest_rerank(scores, categories, interests, k, cfg.max_share)
    return mmr(scores, categories, domain_of, k, cfg.mmr_lambda)


def interest_rerank(scores: np.ndarray, categories: Sequence[str | None], interests: Sequence[tuple[str, float]],
                    k: int, max_share: float = 0.5) -> list[int]:
    """Top K that covers the user's interests: each top category (by engagement share) gets
    round(share * k) slots, at least one, filled with its best-scored candidates; the rest go to
    the best scores with no category over `max_share` of the list; the list is ordered by score.
    (Plain MMR penalises every repeat alike and drifts out of the user's interests; quotas keep
    the list where the clicks are while spreading it over them.)"""
    order = [int(i) for i in np.argsort(-np.asarray(scores), kind="stable")]
    cap = max(1, math.ceil(max_share * k))
    picked: list[int] = []
    per: dict = {}
    for cat, weight in interests:
        quota = min(max(1, round(weight * k)), cap)
        for i in order:
            if len(picked) == k or per.get(cat, 0) >= quota:
                break
            if categories[i] == cat and i not in picked:
                picked.append(i)
                per[cat] = per.get(cat, 0) + 1
    for i in order:
        if len(picked) == k:
            break
        if i not in picked and per.get(categories[i], 0) < cap:
            picked.append(i)
            per[categories[i]] = per.get(categories[i], 0) + 1
    return sorted(picked, key=lambda i: (-scores[i], i))


def mmr(scores: np.ndarray, categories: Sequence[str | None], domain_of: Mapping[str, str], k: int,
        lam: float, domain_similarity: float = 0.5) -> list[int]:
    """Greedy maximal marginal relevance: each pick maximises lam * score/max - (1 - lam) * its
    similarity to what is already picked (same category 1, same domain `domain_similarity`)."""
    n = len(scores)
    if n == 0:
        return []
    top = float(np.max(scores)) or 1.0
    rel = scores / top
    picked: list[int] = []
    remaining = list(range(n))
    while remaining and len(picked) < k:
        def sim(i):
            ci = categories[i]
            if ci is None or not picked:
                return 0.0
            return max(1.0 if categories[j] == ci else domain_similarity
                       if domain_of.get(categories[j]) == domain_of.get(ci) else 0.0 for j in picked)

        best = max(remaining, key=lambda i: (lam * rel[i] - (1 - lam) * sim(i), -i))
        picked.append(best)
        remaining.remove(best)
    return picked


def local_direct(model_dir: str, catalogue) -> tuple[Callable[[Mapping], list[str]], str]:
    """(user features -> the model's queries, version) for an in-process Direct model."""
    from models.generator import DirectGenerator, build_prompt

    generator = DirectGenerator(model_dir, is_valid=catalogue.is_valid)

    def generate(user: Mapping) -> list[str]:
        out = generator.generate([build_prompt(user, catalogue.name)])[0]
        return [q for q, s in zip(out.queries, out.sources) if s == "model"]

    return generate, generator.version


def load_scorer(directory: str = ""):
    """The CTR model as `rows -> probabilities`; a missing or corrupt directory fails here."""
    from models.ctr import CTRScorer

    path = Path(directory) if directory else aigq_home() / "models" / "ctr"
    try:
        scorer = CTRScorer(path)
    except FileNotFoundError as e:
        raise AigqError(f"{e}; run `aigq train ctr` or set ctr_model") from None
    except Exception as e:  # noqa: BLE001 - a corrupt checkpoint: say which file
        raise AigqError(f"{path}: cannot load the CTR model ({type(e).__name__}: {e})"[:400]) from None
    return RecordScorer(scorer)


class RecordScorer:
    """CTRScorer over a list of row dicts (the wire format of both servers)."""

    def __init__(self, scorer):
        self.scorer, self.version = scorer, scorer.version

    def __call__(self, rows: Sequence[Mapping]) -> list[float]:
        keys = set().union(*[r.keys() for r in rows]) if rows else set()
        columns = {k: [r.get(k) for r in rows] for k in keys}
        return self.scorer.score_rows(columns).tolist() if rows else []


def open_online_store(store: str, timeout_s: float = 0.25):
    """The Feast store for serving, its reads bounded by `timeout_s`: a hung Redis or a locked
    SQLite file fails the read fast (the request degrades) instead of holding every worker."""
    from pipelines.features import open_store

    try:
        fs = open_store(store)
    except AigqError:
        raise
    except Exception as e:  # noqa: BLE001
        raise AigqError(f"cannot open the feature store ({store}): {type(e).__name__}: {e}"[:400]) from None
    bound_store_reads(fs, timeout_s)
    return fs


def bound_store_reads(fs, timeout_s: float) -> None:
    online = fs.config.online_store
    if online.type == "redis":
        from redis.backoff import NoBackoff
        from redis.retry import Retry

        # Feast passes `key=value` items of the connection string to redis-py and creates the
        # client once, here: serving only (materialize keeps its own client and defaults)
        extra = [f"{k}={timeout_s}" for k in ("socket_timeout", "socket_connect_timeout")
                 if f"{k}=" not in online.connection_string]
        online.connection_string = ",".join([online.connection_string, *extra])
        client = fs._get_provider().online_store._get_client(online)
        # redis-py 7 retries a timed-out read 3 times with backoff from 1 s: seconds per request
        # on a hung Redis. One immediate retry still replaces a stale pooled connection.
        client.set_retry(Retry(NoBackoff(), 1))
    elif online.type == "sqlite":
        # Feast opens one connection with sqlite3's 5 s busy wait; there is no config key for it
        conn = fs._get_provider().online_store._get_conn(fs.config)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
