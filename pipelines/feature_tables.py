"""Behaviour logs -> the parquet tables behind Feast's batch sources.

Batch features are daily snapshots stamped at the end of the day they describe (midnight UTC),
so a point-in-time join at time t sees only days that ended before t. Session features are one
row per event: the state of the session up to and including that event. Lists are most recent
first. The nearline tables (Direct candidates, Think mappings) start empty and are written by
their jobs.

Everything here is vectorised numpy/Arrow: the `large` profile (7M events) builds in seconds.
The per-user tables (interests, session state) are built one partition of users at a time (a
hash of the user id; one streaming pass splits the event log), so memory is bounded by the
partition, not the world: in this process (engine `local`) or as Ray Data tasks (engine `ray`),
each writing its part files, joined in partition order after.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.engine import check_ray_address, engine_name, ensure_ray
from core.schemas import TIMESTAMP

DAY_US = 86_400_000_000
WINDOWS = (1, 7, 30)
TOP_CATEGORIES = 5
RECENT_QUERIES = 10
RECENT_CLICK_CATEGORIES = 5
PARTITION_USERS = 20_000  # users per partition of the per-user tables (about 1 GB at 30 days)
EVENT_COLUMNS = ["session_id", "user_id", "event_ts", "event_type", "query", "category_id", "item_id"]
PER_USER_TABLES = ("user_interests", "session_features")
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


def build_feature_tables(
    data_dir: Path, out_dir: Path, engine: str = "", partition_users: int = PARTITION_USERS
) -> dict[str, int]:
    """Write every batch-source table; returns rows written per table."""
    engine = engine_name(engine)  # a bad name or an unreachable cluster fails before any work
    if engine == "ray":
        check_ray_address()
    out_dir.mkdir(parents=True, exist_ok=True)
    users = pq.read_table(data_dir / "users.parquet").to_pandas()
    counts = {"user_profile": _write(user_profile_table(users), out_dir / "user_profile.parquet")}
    n_parts = max(1, -(-len(users) // max(partition_users, 1)))
    del users
    counts |= build_per_user_tables(data_dir, out_dir, n_parts, engine)
    counts["query_stats"] = _write(query_stats_table(data_dir), out_dir / "query_stats.parquet")
    for name, schema in NEARLINE_SCHEMAS.items():
        path = out_dir / f"{name}.parquet"
        if not path.exists():  # written by nearline jobs later; never clobber their results
            pq.write_table(schema.empty_table(), path)
    return counts


def _write(table: pa.Table, path: Path) -> int:
    pq.write_table(table, path)
    return table.num_rows


def first_and_last_us(path: Path, column: str) -> tuple[int, int]:
    """The earliest and latest timestamp of a log column, in microseconds (one column read)."""
    mm = pc.min_max(pq.read_table(path, columns=[column]).column(0))
    return int(pd.Timestamp(mm["min"].as_py()).value // 1000), int(pd.Timestamp(mm["max"].as_py()).value // 1000)


def user_partition(user_ids, n_parts: int) -> np.ndarray:
    """The partition of each user: a hash of the id, so one pass over the log splits it."""
    return (pd.util.hash_array(np.asarray(user_ids, dtype=object)) % np.uint64(n_parts)).astype(np.int64)


def bucket_events(events_path: Path, parts_dir: Path, n_parts: int) -> None:
    """Split the event log by user partition in one streaming pass (a batch in memory at a time),
    into parts_dir/events-PPPPP.parquet."""
    log = pq.ParquetFile(events_path)
    schema = pa.schema([log.schema_arrow.field(c) for c in EVENT_COLUMNS])
    writers: dict[int, pq.ParquetWriter] = {}
    try:
        for batch in log.iter_batches(batch_size=1_000_000, columns=EVENT_COLUMNS):
            part = user_partition(batch.column("user_id").to_numpy(zero_copy_only=False), n_parts)
            order = np.argsort(part, kind="stable")
            starts = np.searchsorted(part[order], np.arange(n_parts + 1))
            table = pa.Table.from_batches([batch]).take(pa.array(order))
            for p in range(n_parts):
                if starts[p + 1] > starts[p]:
                    if p not in writers:
                        writers[p] = pq.ParquetWriter(parts_dir / f"events-{p:05d}.parquet", schema)
                    writers[p].write_table(table.slice(starts[p], starts[p + 1] - starts[p]))
    finally:
        for w in writers.values():
            w.close()


def per_user_partition(events_path: Path, parts_dir: Path, part: int, day_range) -> dict[str, int]:
    """One partition's interest snapshots and session rows, written as part files."""
    if not events_path.exists():  # a partition whose users did nothing: no snapshots, no sessions
        return dict.fromkeys(PER_USER_TABLES, 0)
    events = pq.read_table(events_path, columns=EVENT_COLUMNS).to_pandas()
    tables = {
        "user_interests": user_interests_table(events, day_range),
        "session_features": session_features_table(events),
    }
    return {name: _write(t, parts_dir / f"{name}-{part:05d}.parquet") for name, t in tables.items()}


def build_per_user_tables(data_dir: Path, out_dir: Path, n_parts: int, engine: str) -> dict[str, int]:
    parts_dir = out_dir / ".parts"
    shutil.rmtree(parts_dir, ignore_errors=True)
    parts_dir.mkdir()
    day_range = first_and_last_us(data_dir / "events.parquet", "event_ts")
    if n_parts == 1:  # the whole log is the partition: no copy
        sources = [data_dir / "events.parquet"]
    else:
        bucket_events(data_dir / "events.parquet", parts_dir, n_parts)
        sources = [parts_dir / f"events-{p:05d}.parquet" for p in range(n_parts)]
    if engine == "ray":
        _per_user_partitions_on_ray(sources, parts_dir, day_range)
    else:
        for part, source in enumerate(sources):
            per_user_partition(source, parts_dir, part, day_range)
    counts = {name: _join_parts(parts_dir, name, n_parts, out_dir / f"{name}.parquet") for name in PER_USER_TABLES}
    shutil.rmtree(parts_dir)
    return counts


def _per_user_partitions_on_ray(sources: list[Path], parts_dir: Path, day_range) -> None:
    """The partitions as Ray Data tasks, one partition per batch; each task reads its bucket and
    writes its part files (shared storage: a cluster's workers need the same paths), so only
    counts travel back."""
    import ray.data

    def build(batch: dict) -> dict:
        rows = [per_user_partition(sources[int(p)], parts_dir, int(p), day_range) for p in batch["part"]]
        return {"part": batch["part"], **{name: [r[name] for r in rows] for name in PER_USER_TABLES}}

    ensure_ray()
    ray.data.range(len(sources)).rename_columns({"id": "part"}).map_batches(build, batch_size=1).materialize()


def _join_parts(parts_dir: Path, name: str, n_parts: int, path: Path) -> int:
    """Concatenate the part files in partition order, one row group at a time."""
    rows, writer = 0, None
    try:
        for part in range(n_parts):
            part_path = parts_dir / f"{name}-{part:05d}.parquet"
            if not part_path.exists():  # a partition without events
                continue
            part_file = pq.ParquetFile(part_path)
            if writer is None:
                writer = pq.ParquetWriter(path, part_file.schema_arrow)
            for group in range(part_file.num_row_groups):
                table = part_file.read_row_group(group)
                writer.write_table(table)
                rows += table.num_rows
    finally:
        if writer is not None:
            writer.close()
    return rows


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


def user_interests_table(events: pd.DataFrame, day_range: tuple[int, int] | None = None) -> pa.Table:
    """One row per (user, day) with activity in the last 30 days, stamped at the day's end.
    `day_range`: the whole log's first and last event (us), so every partition of users shares
    one day grid (default: these events' own)."""
    ts = _ts_us(events["event_ts"])
    first_us, last_us = day_range or (int(ts.min()), int(ts.max()))
    t0 = (first_us // DAY_US) * DAY_US
    day = _day_index(ts, t0)
    n_days = int(_day_index(np.int64(last_us), t0)) + 1
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


def query_stats_table(data_dir: Path, batch_rows: int = 1_000_000) -> pa.Table:
    """One row per (query, day) for every catalogue query: popularity, CTR, category. The search
    and impression logs are read in batches (streaming sums per query and day), so memory is
    bounded by the catalogue x days grid, not the log."""
    categories = pq.read_table(data_dir / "categories.parquet", columns=["category_id", "domain"]).to_pandas()
    queries = pq.read_table(data_dir / "queries.parquet", columns=["query", "category_id"]).to_pandas()
    q = queries.merge(categories, on="category_id", how="left")
    index = pd.Index(q["query"])
    events_path, impressions_path = data_dir / "events.parquet", data_dir / "hintq_impressions.parquet"
    ranges = [first_and_last_us(events_path, "event_ts")]
    if pq.ParquetFile(impressions_path).metadata.num_rows:
        ranges.append(first_and_last_us(impressions_path, "impression_ts"))
    t0 = (min(r[0] for r in ranges) // DAY_US) * DAY_US
    n_days = int(_day_index(np.int64(max(r[1] for r in ranges)), t0)) + 1

    def add(grid: np.ndarray, query_text, ts: np.ndarray, weight=None) -> None:
        codes = index.get_indexer(query_text)
        ok = codes >= 0  # queries outside the catalogue have no stats row
        np.add.at(grid, (codes[ok], _day_index(ts, t0)[ok] + 1), 1 if weight is None else weight[ok])

    def batches(path: Path, columns: list[str]):
        for batch in pq.ParquetFile(path).iter_batches(batch_size=batch_rows, columns=columns):
            yield batch.to_pandas()

    searches, shown, clicks, expected = (np.zeros((len(index), n_days + 1)) for _ in range(4))
    for ev in batches(events_path, ["event_ts", "event_type", "query"]):
        ev = ev[ev["event_type"] == "search"]
        add(searches, ev["query"], _ts_us(ev["event_ts"]))
    # clicks expected at the positions a query was shown: the denominator of COEC, a CTR with
    # the position bias of past placements divided out (first pass: the CTR of each position)
    impression_columns = ["impression_ts", "position", "query", "clicked"]
    at_position = pd.DataFrame({"clicks": [], "shown": []})
    for imp in batches(impressions_path, impression_columns):
        counts = imp.groupby("position")["clicked"].agg(clicks="sum", shown="size")
        at_position = at_position.add(counts, fill_value=0)
    ctr_at = at_position["clicks"] / at_position["shown"]
    for imp in batches(impressions_path, impression_columns):
        ts, clicked = _ts_us(imp["impression_ts"]), imp["clicked"].to_numpy().astype(float)
        add(shown, imp["query"], ts)
        add(clicks, imp["query"], ts, clicked)
        add(expected, imp["query"], ts, ctr_at.reindex(imp["position"].to_numpy()).to_numpy())
    searches, shown, clicks, expected = (g.cumsum(axis=1) for g in (searches, shown, clicks, expected))

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
