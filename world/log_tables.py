"""A simulated day as Arrow tables in the log contract's schemas (`core/schemas.py`)."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from core import schemas


def _take(values: np.ndarray | list, idx: np.ndarray) -> pa.Array:
    """Strings by index, built in Arrow (fast), null where idx < 0."""
    idx = np.asarray(idx, dtype=np.int64)
    return pc.take(pa.array(values, pa.string()), pa.array(idx, mask=idx < 0))


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), pa.int64()).cast(schemas.TIMESTAMP)


def sessions_table(world, sess_user, session_ids, start_us, ev) -> pa.Table:
    n = len(sess_user)
    counts = np.zeros((n, 4), np.int64)
    np.add.at(counts, (ev["sess"], ev["type"]), 1)
    end = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(end, ev["sess"], ev["ts"])
    return pa.table(
        {
            "session_id": session_ids,
            "user_id": _take(world.users.profile["user_id"], sess_user),
            "session_start": _ts(start_us),
            "session_end": _ts(end),
            "n_searches": counts[:, 0],
            "n_clicks": counts[:, 1],
            "n_carts": counts[:, 2],
            "n_purchases": counts[:, 3],
        },
        schema=schemas.SCHEMAS["sessions"],
    )


def events_table(world, sess_user, session_ids, event_ids, ev) -> pa.Table:
    c = world.catalog
    item_cat = c.items["category_id"].to_numpy()
    qcat = world.query_category
    cat_ids = c.categories["category_id"].to_numpy()
    category = np.where(ev["item"] >= 0, -1, qcat[ev["query"]])
    category_ids = pc.if_else(
        pa.array(ev["item"] >= 0), _take(item_cat, np.maximum(ev["item"], 0)), _take(cat_ids, np.maximum(category, 0))
    )
    return pa.table(
        {
            "event_id": event_ids,
            "session_id": session_ids[ev["sess"]],
            "user_id": _take(world.users.profile["user_id"], sess_user[ev["sess"]]),
            "event_ts": _ts(ev["ts"]),
            "event_type": _take(list(schemas.EVENT_TYPES), ev["type"]),
            "query_id": _take(c.queries["query_id"], ev["query"]),
            "query": _take(c.queries["query"], ev["query"]),
            "category_id": category_ids,
            "item_id": _take(c.items["item_id"], ev["item"]),
            "search_source": _take(["organic", "hintq"], ev["hintq"].astype(np.int64)),
        },
        schema=schemas.SCHEMAS["events"],
    )


def impressions_table(world, sess_user, session_ids, start_us, lists, clicked, explore) -> pa.Table:
    n, k = lists.shape
    rows, pos = np.nonzero(lists >= 0)
    q = lists[rows, pos]
    c = world.catalog
    return pa.table(
        {
            "impression_id": session_ids[rows],
            "session_id": session_ids[rows],
            "user_id": _take(world.users.profile["user_id"], sess_user[rows]),
            "impression_ts": _ts(start_us[rows]),
            "position": pos.astype(np.int64),
            "query_id": _take(c.queries["query_id"], q),
            "query": _take(c.queries["query"], q),
            "category_id": _take(c.categories["category_id"], world.query_category[q]),
            "clicked": clicked[rows, pos],
            "policy": _take(["legacy", "legacy_explore"], explore[rows].astype(np.int64)),
        },
        schema=schemas.SCHEMAS["hintq_impressions"],
    )
