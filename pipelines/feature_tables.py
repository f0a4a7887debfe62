"""Behaviour logs -> the parquet tables behind Feast's batch sources.

Batch features are daily snapshots stamped at the end of the day they describe (midnight UTC),
so a point-in-time join at time t sees only days that ended before t. Session features are one
row per event: the state of the session up to and including that event. Lists are most recent
first. The nearline tables (Direct candidates, Think mappings) start empty and are written by
their jobs.

Everything here is vectorised numpy/Arrow: the `large` profile (7M events) builds in seconds.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from core.schemas import TIMESTAMP

DAY_US = 86_400_000_000
WINDOWS = (1, 7, 30)
TOP_CATEGORIES = 5
RECENT_QUERIES = 10
RECENT_CLICK_CATEGORIES = 5
SESSION_LIST = 5
ENGAGEMENT = {"search": 1.0, "click": 1.0, "cart": 3.0, "purchase": 5.0}
EVENT_TYPES = tuple(ENGAGEMENT)

FEATURE_TABLES = (
    "user_profile",
    "user_interests",
    "query_stats",
    "session_features",
    "direct_candidates",
    "think_mappings",
)

LIST_STR = pa.list_(pa.string())
NEARLINE_SCHEMAS = {
    "direct_candidates": pa.schema(
        [
            ("user_id", pa.string()),
            ("event_timestamp", TIMESTAMP),
            ("direct_queries", LIST_STR),
            ("direct_model_version", pa.string()),
        ]
    ),
    "think_mappings": pa.schema(
        [
            ("trigger", pa.string()),
            ("event_timestamp", TIMESTAMP),
            ("think_queries", LIST_STR),
            ("think_rationale", pa.string()),
            ("think_model_version", pa.string()),
        ]
    ),
}


@dataclass
class Logs:
    users: pd.DataFrame
    categories: pd.DataFrame
    queries: pd.DataFrame
    events: pd.DataFrame
    impressions: pd.DataFrame


def read_logs(data_dir: Path) -> Logs:
    def read(name, columns=None):
        return pq.read_table(data_dir / f"{name}.parquet", columns=columns).to_pandas()

    return Logs(
        users=read("users"),
        categories=read("categories"),
        queries=read("queries"),
        events=read("events", ["session_id", "user_id", "event_ts", "event_type", "query", "category_id", "item_id"]),
        impressions=read("hintq_impressions", ["user_id", "impression_ts", "position", "query", "clicked"]),
    )


def build_feature_tables(data_dir: Path, out_dir: Path) -> dict[str, int]:
    """Write every batch-source table; returns rows written per table."""
    out_dir.mkdir(parents=True, exist_ok=True)
    logs = read_logs(data_dir)
    tables = {
        "user_profile": user_profile_table(logs.users),
        "user_interests": user_interests_table(logs.events),
        "query_stats": query_stats_table(logs),
        "session_features": session_features_table(logs.events),
    }
    for name, table in tables.items():
        pq.write_table(table, out_dir / f"{name}.parquet")
    for name, schema in NEARLINE_SCHEMAS.items():
        path = out_dir / f"{name}.parquet"
        if not path.exists():  # written by nearline jobs later; never clobber their results
            pq.write_table(schema.empty_table(), path)
    return {name: t.num_rows for name, t in tables.items()}


def user_profile_table(users: pd.DataFrame) -> pa.Table:
    return pa.table(
        {
            "user_id": users["user_id"].astype(str),
            "event_timestamp": _ts_array(users["signup_ts"]),
            "age_band": users["age_band"],
            "gender": users["gender"],
            # null where a real log has no profile (the models read null as "unknown")
            "city_tier": pa.array(users["city_tier"].astype("Int64"), pa.int64(), from_pandas=True),
            "price_sensitivity": pa.array(users["price_sensitivity"], pa.float64(), from_pandas=True),
        }
    )


def _ts_us(series: pd.Series) -> np.ndarray:
    return (
        series.dt.tz_convert("UTC").astype("datetime64[us, UTC]").astype(np.int64).to_numpy()
        if series.dt.tz is not None
        else series.astype("datetime64[us]").astype(np.int64).to_numpy()
    )


def _ts_array(series_or_us) -> pa.Array:
    us = series_or_us if isinstance(series_or_us, np.ndarray) else _ts_us(series_or_us)
    return pa.array(us.astype(np.int64), pa.int64()).cast(TIMESTAMP)


def window_lists(values: pa.Array, first: np.ndarray, end: np.ndarray, max_len: int) -> pa.ListArray:
    """Row r: values[max(first[r], end[r] - max_len) : end[r]], most recent first."""
    start = np.maximum(first, end - max_len)
    lengths = np.maximum(end - start, 0)
    offsets = np.concatenate([[0], np.cumsum(lengths)])
    row = np.repeat(np.arange(len(lengths)), lengths)
    k = np.arange(offsets[-1]) - offsets[row]
    idx = end[row] - 1 - k
    return pa.ListArray.from_arrays(pa.array(offsets, pa.int32()), values.take(pa.array(idx)))


def _day_index(ts_us: np.ndarray, t0: int) -> np.ndarray:
    return (ts_us - t0) // DAY_US


def user_interests_table(events: pd.DataFrame) -> pa.Table:
    """One row per (user, day) with activity in the last 30 days, stamped at the day's end."""
    ts = _ts_us(events["event_ts"])
    t0 = (ts.min() // DAY_US) * DAY_US
    day = _day_index(ts, t0)
    n_days = int(day.max()) + 1
    user_codes, users = pd.factorize(events["user_id"], sort=True)
    cat_codes, cats = pd.factorize(events["category_id"].fillna(""), sort=True)
    etype = pd.Categorical(events["event_type"], categories=EVENT_TYPES).codes
    weight = np.array(list(ENGAGEMENT.values()))[etype]
    n_users = len(users)

    # event counts per (user, day, type) and their trailing-window sums
    counts = np.zeros((n_users, n_days + 1, len(EVENT_TYPES)), np.int32)
    np.add.at(counts, (user_codes, day + 1, etype), 1)
    cum = counts.cumsum(axis=1)

    def window(c: np.ndarray, w: int) -> np.ndarray:  # sums over days (d-w, d], index d+1
        return c[:, 1:] - c[:, np.maximum(np.arange(1, c.shape[1]) - w, 0)]

    cum30 = window(cum, 30)
    active = cum30.sum(axis=2) > 0  # [user, day]
    snap_user, snap_day = np.nonzero(active)
    cols: dict[str, pa.Array] = {
        "user_id": pa.array(np.asarray(users)[snap_user], pa.string()),
        "event_timestamp": _ts_array(t0 + (snap_day + 1) * DAY_US),
    }
    for w in WINDOWS:
        wc = window(cum, w)[snap_user, snap_day]
        for t, name in enumerate(EVENT_TYPES):
            cols[f"n_{name}_{w}d"] = pa.array(wc[:, t].astype(np.int64))
    cols["n_events_30d"] = pa.array(cum30[snap_user, snap_day].sum(axis=1).astype(np.int64))

    # engagement per (user, category, day); windows via cumulative sums over days
    pair_codes, pairs = pd.factorize(user_codes.astype(np.int64) * len(cats) + cat_codes, sort=True)
    pair_user, pair_cat = np.asarray(pairs) // len(cats), np.asarray(pairs) % len(cats)
    eng = np.zeros((len(pairs), n_days + 1), np.float32)
    np.add.at(eng, (pair_codes, day + 1), weight)
    eng_cum = eng.cumsum(axis=1)
    snap_key = snap_user.astype(np.int64) * n_days + snap_day
    for w in WINDOWS:
        cats_col, weights_col = _top_categories(
            window(eng_cum, w), pair_user, pair_cat, np.asarray(cats), n_days, snap_key
        )
        cols[f"top_categories_{w}d"], cols[f"top_category_weights_{w}d"] = cats_col, weights_col

    cols["recent_queries"] = _recent_per_snapshot(
        events, ts, user_codes, etype == 0, "query", snap_user, t0 + (snap_day + 1) * DAY_US, RECENT_QUERIES
    )
    cols["recent_click_categories"] = _recent_per_snapshot(
        events,
        ts,
        user_codes,
        etype == 1,
        "category_id",
        snap_user,
        t0 + (snap_day + 1) * DAY_US,
        RECENT_CLICK_CATEGORIES,
    )
    return pa.table(cols)


def _top_categories(win: np.ndarray, pair_user, pair_cat, cat_names, n_days, snap_key):
    """Top categories and their shares of the window's engagement, per snapshot."""
    p, d = np.nonzero(win > 0)
    value = win[p, d]
    key = pair_user[p].astype(np.int64) * n_days + d
    order = np.lexsort((pair_cat[p], -value, key))
    key, value, cat = key[order], value[order], pair_cat[p][order]
    total = np.bincount(np.searchsorted(snap_key, key), weights=value, minlength=len(snap_key))
    rank = np.arange(len(key)) - np.searchsorted(key, key)
    keep = rank < TOP_CATEGORIES
    key, value, cat = key[keep], value[keep], cat[keep]
    slot = np.searchsorted(snap_key, key)
    counts = np.bincount(slot, minlength=len(snap_key))
    offsets = pa.array(np.concatenate([[0], np.cumsum(counts)]), pa.int32())
    shares = (value / total[slot]).astype(np.float32)
    return (
        pa.ListArray.from_arrays(offsets, pa.array(cat_names[cat], pa.string())),
        pa.ListArray.from_arrays(offsets, pa.array(shares, pa.float32())),
    )


def _recent_per_snapshot(events, ts, user_codes, mask, column, snap_user, snap_end_us, max_len):
    """The last `max_len` values of `column` among masked events before each snapshot's end,
    within its 30-day window."""
    idx = np.flatnonzero(mask)
    order = np.lexsort((ts[idx], user_codes[idx]))
    idx = idx[order]
    key = (user_codes[idx].astype(np.int64) << 42) | (ts[idx] - ts.min())
    values = pa.array(events[column].to_numpy()[idx], pa.string())
    snap_base = snap_user.astype(np.int64) << 42
    end = np.searchsorted(key, snap_base | (snap_end_us - ts.min()), side="left")
    first = np.searchsorted(key, snap_base | np.maximum(snap_end_us - 30 * DAY_US - ts.min(), 0), side="left")
    return window_lists(values, first, end, max_len)


def query_stats_table(logs: Logs) -> pa.Table:
    """One row per (query, day) for every catalogue query: popularity, CTR, category."""
    ev = logs.events[logs.events["event_type"] == "search"]
    q = logs.queries.merge(logs.categories[["category_id", "domain"]], on="category_id", how="left")
    index = pd.Index(q["query"])
    ts = _ts_us(ev["event_ts"])
    imp_ts = _ts_us(logs.impressions["impression_ts"])
    all_ts = np.concatenate([_ts_us(logs.events["event_ts"]), imp_ts])
    t0 = (all_ts.min() // DAY_US) * DAY_US
    n_days = int(_day_index(all_ts, t0).max()) + 1

    def per_day(query_text: pd.Series, day: np.ndarray, weight=None) -> np.ndarray:
        codes = index.get_indexer(query_text)
        ok = codes >= 0  # queries outside the catalogue have no stats row
        grid = np.zeros((len(index), n_days + 1))
        np.add.at(grid, (codes[ok], day[ok] + 1), 1 if weight is None else weight[ok])
        return grid.cumsum(axis=1)

    searches = per_day(ev["query"], _day_index(ts, t0))
    shown = per_day(logs.impressions["query"], _day_index(imp_ts, t0))
    clicked = logs.impressions["clicked"].to_numpy().astype(float)
    clicks = per_day(logs.impressions["query"], _day_index(imp_ts, t0), clicked)
    # clicks expected at the positions a query was shown: the denominator of COEC, a CTR with
    # the position bias of past placements divided out
    position = logs.impressions["position"].to_numpy()
    ctr_at = pd.Series(clicked).groupby(position).mean()
    expected = per_day(logs.impressions["query"], _day_index(imp_ts, t0), ctr_at.reindex(position).to_numpy())

    def window(c, w):
        return c[:, 1:] - c[:, np.maximum(np.arange(1, c.shape[1]) - w, 0)]

    s7, s30 = window(searches, 7), window(searches, 30)
    imp30, clk30, exp30 = window(shown, 30), window(clicks, 30), window(expected, 30)
    global_ctr = clicks[:, -1].sum() / max(shown[:, -1].sum(), 1)
    qi, d = np.meshgrid(np.arange(len(index)), np.arange(n_days), indexing="ij")
    qi, d = qi.ravel(), d.ravel()
    share = s30 / np.maximum(s30.sum(axis=0, keepdims=True), 1)
    return pa.table(
        {
            "query": pa.array(q["query"].to_numpy()[qi], pa.string()),
            "event_timestamp": _ts_array(t0 + (d + 1) * DAY_US),
            "query_category_id": pa.array(q["category_id"].to_numpy()[qi], pa.string()),
            "query_domain": pa.array(q["domain"].fillna("").to_numpy()[qi], pa.string()),
            "q_n_search_7d": s7.ravel().astype(np.int64),
            "q_n_search_30d": s30.ravel().astype(np.int64),
            "q_search_share_30d": share.ravel().astype(np.float32),
            "q_impressions_30d": imp30.ravel().astype(np.int64),
            "q_clicks_30d": clk30.ravel().astype(np.int64),
            # smoothed towards the global CTR so a rarely shown query does not get 0 or 1
            "q_ctr_30d": ((clk30 + 20 * global_ctr) / (imp30 + 20)).ravel().astype(np.float32),
            # clicks over expected clicks, smoothed towards 1 (an average query)
            "q_coec_30d": ((clk30 + 1.0) / (exp30 + 1.0)).ravel().astype(np.float32),
        }
    )


def session_features_table(events: pd.DataFrame) -> pa.Table:
    """One row per event: the session so far (last searches and categories, most recent first)."""
    ev = events.sort_values(["session_id", "event_ts"], kind="stable")
    return session_state_rows(ev)


def session_state_rows(ev: pd.DataFrame) -> pa.Table:
    """Session-state rows for events sorted by (session_id, event_ts). Shared by the batch table
    and `aigq features push-sessions`, so offline and online values are computed identically."""
    sess = ev["session_id"].to_numpy()
    first = np.searchsorted(sess, sess, side="left")  # sessions are contiguous
    is_search = (ev["event_type"] == "search").to_numpy()
    search_pos = np.cumsum(is_search)  # searches up to and including each event
    search_idx = np.flatnonzero(is_search)
    first_search = np.searchsorted(search_idx, first, side="left")
    queries = pa.array(ev["query"].to_numpy()[search_idx], pa.string())
    categories = pa.array(ev["category_id"].to_numpy(), pa.string())
    return pa.table(
        {
            "user_id": pa.array(ev["user_id"].to_numpy(), pa.string()),
            "event_timestamp": _ts_array(ev["event_ts"]),
            "session_id": pa.array(sess.astype(np.int64)),
            "session_queries": window_lists(queries, first_search, search_pos, SESSION_LIST),
            "session_categories": window_lists(categories, first, np.arange(len(sess)) + 1, SESSION_LIST),
            "session_event_count": pa.array((np.arange(len(sess)) - first + 1).astype(np.int64)),
        }
    )


def query_stats_at(path, cutoff=None) -> dict[str, dict]:
    """The latest daily query statistics at or before the cut-off (None: the newest), per query."""
    stats = pd.read_parquet(path)
    if cutoff is not None:
        stats = stats[stats["event_timestamp"] <= cutoff]
    latest = stats.sort_values("event_timestamp").drop_duplicates("query", keep="last")
    return {r.pop("query"): r for r in latest.drop(columns=["event_timestamp"]).to_dict("records")}
