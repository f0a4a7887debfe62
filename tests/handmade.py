"""Hand-built logs in the parquet contract, small enough to check every feature value by hand."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import SCHEMAS


def ts(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz="UTC")


def write_logs(directory: Path, events: list[tuple], impressions: list[tuple] = ()) -> Path:
    """events: (session_id, user_id, time, type, query, category_id, item_id|None)."""
    directory.mkdir(parents=True, exist_ok=True)
    users = pd.DataFrame(
        {
            "user_id": ["u1", "u2"],
            "age_band": ["25-34", "35-44"],
            "gender": ["F", "M"],
            "city_tier": [1, 2],
            "price_sensitivity": [0.5, 0.2],
            "signup_ts": [ts("2026-01-01"), ts("2026-01-02")],
        }
    )
    categories = pd.DataFrame(
        {
            "category_id": ["c1", "c2", "c3"],
            "category_name": ["Dresses", "Tents", "Mugs"],
            "domain": ["fashion", "sports", "home"],
        }
    )
    queries = pd.DataFrame(
        {
            "query_id": ["q1", "q2", "q3"],
            "query": ["red dress", "tent", "mug"],
            "category_id": ["c1", "c2", "c3"],
            "ptype": ["dress", "tent", "mug"],
            "n_attributes": [1, 0, 0],
            "source": ["real"] * 3,
        }
    )
    items = pd.DataFrame(
        {
            "item_id": ["i1", "i2", "i3"],
            "title": ["a dress", "a tent", "a mug"],
            "category_id": ["c1", "c2", "c3"],
            "ptype": ["dress", "tent", "mug"],
            "color": ["red", "green", "white"],
            "material": ["silk", "nylon", "clay"],
            "style": ["x", "y", "z"],
            "audience": ["", "", ""],
            "brand": ["b", "b", "b"],
            "price_tier": [1, 2, 3],
            "price": [10.0, 50.0, 5.0],
        }
    )
    qid = dict(zip(queries["query"], queries["query_id"]))
    ev = pd.DataFrame(
        [
            {
                "event_id": i,
                "session_id": s,
                "user_id": u,
                "event_ts": ts(t),
                "event_type": e,
                "query_id": qid.get(q),
                "query": q,
                "category_id": c,
                "item_id": it,
                "search_source": "organic",
            }
            for i, (s, u, t, e, q, c, it) in enumerate(events)
        ]
    )
    sessions = (
        ev.groupby("session_id")
        .agg(user_id=("user_id", "first"), session_start=("event_ts", "min"), session_end=("event_ts", "max"))
        .reset_index()
    )
    for name, etype in (
        ("n_searches", "search"),
        ("n_clicks", "click"),
        ("n_carts", "cart"),
        ("n_purchases", "purchase"),
    ):
        sessions[name] = (
            sessions["session_id"]
            .map(ev[ev["event_type"] == etype].groupby("session_id").size())
            .fillna(0)
            .astype("int64")
        )
    sessions["session_start"] = sessions["session_start"] - pd.Timedelta(seconds=5)
    imp = pd.DataFrame(
        [
            {
                "impression_id": i,
                "session_id": s,
                "user_id": u,
                "impression_ts": ts(t),
                "position": p,
                "query_id": qid.get(q),
                "query": q,
                "category_id": c,
                "clicked": k,
                "policy": "legacy",
            }
            for i, (s, u, t, p, q, c, k) in enumerate(impressions)
        ],
        columns=[f.name for f in SCHEMAS["hintq_impressions"]],
    )
    for name, df in (
        ("users", users),
        ("categories", categories),
        ("queries", queries),
        ("items", items),
        ("events", ev),
        ("sessions", sessions),
        ("hintq_impressions", imp),
    ):
        table = pa.Table.from_pandas(df, schema=SCHEMAS[name], preserve_index=False)
        pq.write_table(table, directory / f"{name}.parquet")
    return directory


# u1: a dress on day 1; on day 3 two tent searches and a tent purchase in one session.
LEAKAGE_EVENTS = [
    (1, "u1", "2026-03-01 10:00:00", "search", "red dress", "c1", None),
    (1, "u1", "2026-03-01 10:01:00", "click", "red dress", "c1", "i1"),
    (2, "u1", "2026-03-03 10:00:00", "search", "tent", "c2", None),
    (2, "u1", "2026-03-03 10:01:00", "search", "tent", "c2", None),
    (2, "u1", "2026-03-03 10:02:00", "purchase", "tent", "c2", "i2"),
    (3, "u2", "2026-03-02 09:00:00", "search", "mug", "c3", None),
]
LEAKAGE_IMPRESSIONS = [
    (1, "u1", "2026-03-01 09:59:55", 0, "mug", "c3", False),
    (2, "u1", "2026-03-03 09:59:55", 0, "tent", "c2", True),
]
