"""The online path's settings (`aigq recommend` and the servers read the same keys)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, fields

from core.config import ConfigError, option
from core.errors import AigqError

# `aigq serve --config/--set` hands the whole ServingConfig to every server process it starts
# (BentoML's workers, KServe's transformer) through this variable, the same way to each
CONFIG_ENV = "AIGQ_SERVING_CONFIG"


@dataclass
class ServingConfig:
    store: str = option("sqlite", "feature store config (sqlite | redis_postgres)")
    ctr_model: str = option("", "CTR model directory (default $AIGQ_HOME/models/ctr)")
    ctr_remote: bool = option(
        False,
        "score through the separate CTR model server (BentoML's aigq_ctr service, KServe's predictor) "
        "instead of in the serving process (one hop less per request)",
    )
    direct_model: str = option(
        "",
        "Direct model that generates a list for a known user the nearline job has not reached "
        "(default: the newest trained one; `none`: serve such users without a Direct list)",
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
    warm_query_cache: bool = option(True, "read every catalogue query's features into the cache at start-up")
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
    ctr_timeout_seconds: float = option(
        0.25,
        "a remote CTR call (KServe's transformer) waits at most this long before the request is served "
        "in merge order; BentoML's aigq_ctr service declares the same 0.25 s as its traffic timeout",
    )
    direct_timeout_seconds: float = option(
        2.0, "a remote Direct generation waits at most this long before the request is served without it"
    )
    direct_retry_seconds: float = option(
        2.0, "after a Direct generation failure, serve without Direct this long before trying it again"
    )
    deadline_ms: float = option(
        100.0,
        "admission: a request that waited longer than this for a worker gets the cached popular list, "
        "marked degraded, at once (a late answer is worth less than a quick degraded one)",
    )
    max_in_flight: int = option(
        8, "admission: past this many requests in progress in one process, new ones get the popular list"
    )
    reject_in_flight: int = option(
        32,
        "admission: past this many requests open in one process (queued for a worker included), new "
        "ones get 503 with Retry-After before their body is read",
    )
    workers: int = option(
        0,
        "HintQ processes (BentoML's aigq_hintq workers, KServe's transformer workers), each with its "
        "models, store client and log writer (0: one per core this process may use)",
    )
    torch_threads: int = option(
        1,
        "torch intra-op threads in a serving process: its batches are tiny, and more threads only "
        "contend for the cores with the other requests (0 keeps torch's default)",
    )
    freeze_gc: bool = option(
        True,
        "after start-up, exempt what is loaded from garbage collection (gc.freeze): a full "
        "collection over the models and Feast objects otherwise stalls a request",
    )
    log_url: str = option(
        "", "serving log SQLAlchemy URL (default $AIGQ_SERVING_LOG_URL or SQLite under $AIGQ_HOME/serving)"
    )
    log: bool = option(True, "log every answer")
    log_writer: str = option(
        "process",
        "process (a child process writes the log: its SQL work never holds this process's GIL) "
        "| thread (a thread of the serving process)",
    )
    review_url: str = option(
        "", "reviewers' flags SQLAlchemy URL (default $AIGQ_REVIEW_URL or SQLite under $AIGQ_HOME/review)"
    )
    flags_refresh_seconds: float = option(2.0, "re-read the reviewers' flags this often (a flag stops a query then)")
    server: str = option("inprocess", "name written to the log's server column")

    def __post_init__(self):
        # a negative count would otherwise be read as "one per core" or "no limit" without a word
        counts = ("workers", "torch_threads", "think_triggers", "per_source", "max_in_flight", "reject_in_flight")
        for name in counts:
            if getattr(self, name) < 0:
                raise ConfigError(f"config key {name!r}: {getattr(self, name)} is negative")
        for name in ("deadline_ms", "ctr_timeout_seconds", "direct_timeout_seconds"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"config key {name!r}: {getattr(self, name)} must be above 0")


def to_env(cfg: ServingConfig) -> str:
    return json.dumps(asdict(cfg))


def from_env(server: str) -> ServingConfig:
    """The ServingConfig `aigq serve` handed down ($AIGQ_SERVING_CONFIG), else the defaults with
    $AIGQ_FEATURE_STORE; `server` names the process in the serving log."""
    raw = os.environ.get(CONFIG_ENV)
    if not raw:
        return ServingConfig(store=os.environ.get("AIGQ_FEATURE_STORE", "sqlite"), server=server)
    try:
        values = json.loads(raw)
        known = {f.name for f in fields(ServingConfig)}
        return ServingConfig(**{k: v for k, v in values.items() if k in known and k != "server"}, server=server)
    except (ValueError, TypeError) as e:
        raise AigqError(f"${CONFIG_ENV}: not a ServingConfig ({e})") from None
