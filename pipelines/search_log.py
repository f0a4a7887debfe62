"""A shop's search log -> the project's log tables (`aigq ingest search_log.csv`).

A shop that adopts AIGQ has search logs, not HintQ impressions from a system it does not have
yet. The minimal log is one row per search: `user_id`, `ts` (timezone-aware; ISO 8601 with `Z`
or an offset in CSV) and `query`. Optional columns, used when present:

- `session_id`: the shop's own sessions (otherwise a new session after 30 minutes of silence);
- `item_id`: an item clicked from that search's results (becomes a click event);
- `category`: the query's category (otherwise the query's head word, its last word: "wireless
  earbuds" -> "earbuds", the product type of most English product queries);
- `age_band`, `gender`, `city_tier`: profile fields (otherwise null, the model's "unknown").

Derived, never invented: users (first seen = signup), queries and categories from the searches,
items from the clicked ids (no attributes), sessions, events; `hintq_impressions` is empty, so
`legacy` is absent from evaluation and the CTR ranker learns from next searches
(`pipelines.training_frames`).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

from core.errors import AigqError
from core.schemas import SCHEMAS
from core.text import normalize_query

REQUIRED = ("user_id", "ts", "query")
OPTIONAL = ("session_id", "item_id", "category", "age_band", "gender", "city_tier")
SESSION_GAP = pd.Timedelta(minutes=30)
FILE_NAMES = ("search_log.csv", "search_log.parquet")


class SearchLogError(AigqError):
    pass


def find_search_log(source: Path) -> Path | None:
    """The search-log file `source` names: the file itself, or a folder's search_log.csv|parquet
    when the folder holds no full log (events.parquet)."""
    if source.is_file():
        return source
    if source.is_dir() and not (source / "events.parquet").exists():
        return next((source / n for n in FILE_NAMES if (source / n).is_file()), None)
    return None


def read_search_log(path: Path) -> pd.DataFrame:
    """The log's rows, typed, or SearchLogError naming the file, column and row at fault."""
    try:
        if path.suffix == ".csv":
            log = pd.read_csv(path, dtype=str, keep_default_na=False, na_values=[""])
        elif path.suffix == ".parquet":
            log = pd.read_parquet(path)
        else:
            raise SearchLogError(f"{path}: a search log is a .csv or .parquet file")
    except (ValueError, OSError, pd.errors.ParserError) as e:
        raise SearchLogError(f"{path}: not a readable search log ({str(e).splitlines()[0]})") from None
    missing = [c for c in REQUIRED if c not in log.columns]
    if missing:
        raise SearchLogError(f"{path}: missing column(s) {missing}; required: {list(REQUIRED)}")
    unknown = sorted(set(log.columns) - set(REQUIRED) - set(OPTIONAL))
    if unknown:
        raise SearchLogError(f"{path}: unknown column(s) {unknown}; optional: {list(OPTIONAL)}")
    if log.empty:
        raise SearchLogError(f"{path}: no rows")
    for column in ("user_id", "query"):
        bad = log[column].isna() | (log[column].astype(str).str.strip() == "")
        if bad.any():
            raise SearchLogError(f"{path}: column {column!r} row {int(np.flatnonzero(bad)[0])}: empty")
    log = log.assign(user_id=log["user_id"].astype(str), ts=_timestamps(path, log["ts"]))
    log["query"] = [normalize_query(str(q)) for q in log["query"]]
    if "city_tier" in log:
        tiers = pd.to_numeric(log["city_tier"], errors="coerce")
        bad = log["city_tier"].notna() & tiers.isna()
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            value = log["city_tier"].iloc[row]
            raise SearchLogError(f"{path}: column 'city_tier' row {row}: {value!r} is not a number")
        log["city_tier"] = tiers.astype("Int64")
    return log


def _timestamps(path: Path, values: pd.Series) -> pd.Series:
    if pd.api.types.is_datetime64_any_dtype(values):
        if values.dt.tz is None:
            raise SearchLogError(f"{path}: column 'ts' has naive timestamps; write them timezone-aware (UTC)")
        return values.dt.tz_convert("UTC").astype("datetime64[us, UTC]")
    parsed = []
    for row, text in enumerate(values):
        try:
            ts = pd.Timestamp(text)
        except (ValueError, TypeError):
            raise SearchLogError(f"{path}: column 'ts' row {row}: {text!r} is not a timestamp") from None
        if ts is pd.NaT or ts.tzinfo is None:
            raise SearchLogError(
                f"{path}: column 'ts' row {row}: {text!r} has no time zone (write e.g. 2026-11-02T08:15:00Z)"
            )
        parsed.append(ts.tz_convert("UTC"))
    return pd.Series(pd.DatetimeIndex(parsed).astype("datetime64[us, UTC]"), index=values.index)


def head_word(query: str) -> str:
    return query.split()[-1] if query.split() else query


def to_tables(log: pd.DataFrame) -> dict[str, pa.Table]:
    """The seven log tables of `core.schemas`, derived from the search rows."""
    log = log.sort_values(["user_id", "ts"], kind="stable").reset_index(drop=True)
    if "category" in log:
        category = log["category"].where(log["category"].notna(), log["query"].map(head_word)).astype(str)
    else:
        category = log["query"].map(head_word)
    log["category_id"] = category.map(normalize_query)
    log["session_id"] = _sessions(log)

    categories = pd.DataFrame({"category_id": sorted(set(log["category_id"]))})
    categories["category_name"] = categories["category_id"]
    categories["domain"] = "unknown"

    first = log.drop_duplicates("query")[["query", "category_id"]].reset_index(drop=True)
    queries = first.assign(
        query_id=[f"r{i:06d}" for i in range(len(first))],
        ptype=first["query"].map(head_word),
        n_attributes=first["query"].str.split().str.len().sub(1).clip(lower=0).astype("int64"),
        source="real",
    )
    query_id = dict(zip(queries["query"], queries["query_id"]))

    users = log.groupby("user_id", sort=True).agg(signup_ts=("ts", "min")).reset_index()
    for column in ("age_band", "gender", "city_tier"):
        users[column] = log.groupby("user_id", sort=True)[column].first().to_numpy() if column in log else None
    users["price_sensitivity"] = np.nan
    users["city_tier"] = users["city_tier"].astype("Int64")

    searches = log.assign(
        event_type="search", query_id=log["query"].map(query_id), item_id=None, search_source="organic"
    )
    frames = [searches]
    if "item_id" in log:
        clicked = log[log["item_id"].notna()]
        # the click follows its search; a microsecond keeps the order without inventing dwell time
        frames.append(
            clicked.assign(
                event_type="click",
                ts=clicked["ts"] + pd.Timedelta(microseconds=1),
                query_id=clicked["query"].map(query_id),
                item_id=clicked["item_id"].astype(str),
                search_source="organic",
            )
        )
    events = pd.concat(frames, ignore_index=True).sort_values(["ts", "user_id"], kind="stable").reset_index(drop=True)
    events = events.rename(columns={"ts": "event_ts"})
    events["event_id"] = np.arange(len(events), dtype=np.int64)

    items = (
        events[events["item_id"].notna()].drop_duplicates("item_id")[["item_id", "category_id"]].reset_index(drop=True)
    )
    for column in ("title", "ptype", "color", "material", "style", "audience", "brand", "price_tier", "price"):
        items[column] = None

    sessions = (
        events.groupby("session_id")
        .agg(
            user_id=("user_id", "first"),
            session_start=("event_ts", "min"),
            session_end=("event_ts", "max"),
            n_searches=("event_type", lambda t: int((t == "search").sum())),
            n_clicks=("event_type", lambda t: int((t == "click").sum())),
        )
        .reset_index()
        .assign(n_carts=0, n_purchases=0)
    )
    tables = {
        "users": users,
        "categories": categories,
        "queries": queries,
        "items": items,
        "sessions": sessions,
        "events": events,
        "hintq_impressions": pd.DataFrame({f.name: [] for f in SCHEMAS["hintq_impressions"]}),
    }
    return {name: _as_table(frame, SCHEMAS[name]) for name, frame in tables.items()}


def _sessions(log: pd.DataFrame) -> np.ndarray:
    """Integer session ids: the log's own (mapped to integers), or a new one per user after
    SESSION_GAP of silence."""
    if "session_id" in log and log["session_id"].notna().all():
        key = log["user_id"].astype(str) + "\x1f" + log["session_id"].astype(str)
        return pd.factorize(key)[0].astype(np.int64)
    gap = log["ts"].diff() > SESSION_GAP
    new_user = log["user_id"] != log["user_id"].shift()
    return (np.cumsum((gap | new_user).to_numpy()) - 1).astype(np.int64)


def _as_table(frame: pd.DataFrame, schema: pa.Schema) -> pa.Table:
    columns = []
    for f in schema:
        values = frame[f.name]
        if pa.types.is_timestamp(f.type):
            columns.append(pa.array(values, f.type) if len(values) else pa.array([], f.type))
        else:
            columns.append(pa.array([None if _missing(v) else v for v in values], f.type))
    return pa.Table.from_arrays(columns, schema=schema)


def _missing(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value))
