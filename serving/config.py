"""The online path's settings (`aigq recommend` and the servers read the same keys)."""

from __future__ import annotations

from dataclasses import dataclass

from core.config import option


@dataclass
class ServingConfig:
    store: str = option("sqlite", "feature store config (sqlite | redis_postgres)")
    ctr_model: str = option("", "CTR model directory (default $AIGQ_HOME/models/ctr)")
    direct_model: str = option(
        "",
        "Direct model for users without a nearline list (default: none, the nearline list or the fallback is served)",
    )
    think_triggers: int = option(5, "look up Think mappings for at most this many of the user's triggers")
    per_source: int = option(16, "take at most this many candidates from each source")
    rerank: str = option(
        "interest",
        "interest (slots per top interest category, each category at most max_share "
        "of the list) | mmr (maximal marginal relevance over categories)",
    )
    max_share: float = option(0.75, "interest re-rank: most of the list one category may take")
    popularity_weight: float = option(
        0.2,
        "ranking score = sigmoid(CTR logit + this * log1p(the query's 30-day "
        "searches)); 0 ranks by the CTR model alone",
    )
    mmr_lambda: float = option(0.7, "MMR trade-off (also for users without interests): 1 ranks by CTR only")
    drop_recent_searches: int = option(3, "drop the user's last N searches (and the session's) from the list")
    query_cache_seconds: float = option(600.0, "query features are cached this long (they change daily)")
    store_retry_seconds: float = option(
        2.0, "after an online-store failure, serve the cached popular list this long before trying the store again"
    )
    ranker_retry_seconds: float = option(
        2.0, "after a ranker failure, serve the merge order this long before calling the ranker again"
    )
    store_timeout_seconds: float = option(
        0.25,
        "an online-store read waits at most this long (Redis socket "
        "timeouts, SQLite busy timeout) before the request degrades",
    )
    log_url: str = option(
        "", "serving log SQLAlchemy URL (default $AIGQ_SERVING_LOG_URL or SQLite under $AIGQ_HOME/serving)"
    )
    log: bool = option(True, "log every answer")
    server: str = option("inprocess", "name written to the log's server column")
