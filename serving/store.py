"""The online store as serving opens it: the Feast store with its reads bounded in time, so a
hung Redis or a locked SQLite file degrades a request instead of holding every worker."""

from __future__ import annotations

from core.errors import AigqError
from core.feature_store import open_store


def open_online_store(store: str, timeout_s: float = 0.25):
    """The Feast store for serving, its reads bounded by `timeout_s`: a hung Redis or a locked
    SQLite file fails the read fast (the request degrades) instead of holding every worker."""

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
        extra = [
            f"{k}={timeout_s}"
            for k in ("socket_timeout", "socket_connect_timeout")
            if f"{k}=" not in online.connection_string
        ]
        online.connection_string = ",".join([online.connection_string, *extra])
        client = fs._get_provider().online_store._get_client(online)
        # redis-py 7 retries a timed-out read 3 times with backoff from 1 s: seconds per request
        # on a hung Redis. One immediate retry still replaces a stale pooled connection.
        client.set_retry(Retry(NoBackoff(), 1))
    elif online.type == "sqlite":
        # Feast opens one connection with sqlite3's 5 s busy wait; there is no config key for it
        conn = fs._get_provider().online_store._get_conn(fs.config)
        conn.execute(f"PRAGMA busy_timeout = {int(timeout_s * 1000)}")
