"""`aigq ingest DIR`: validate real logs written in the simulator's parquet schemas and take
them in (copy under $AIGQ_HOME/data, then build the feature tables), so the rest of the
pipeline runs unchanged on them.

Every problem names the file, the column and, for bad values, the first offending row; all
tables are checked before anything is written, so a failed ingest changes nothing.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from core.config import aigq_home, option
from core.errors import AigqError
from core.schemas import EVENT_TYPES, SCHEMAS, SEARCH_SOURCES
from core.text import normalize_query
from pipelines import search_log

# (table, column) -> allowed values
ALLOWED = {("events", "event_type"): EVENT_TYPES, ("events", "search_source"): SEARCH_SOURCES}
# (table, column) -> (referenced table, column)
REFERENCES = {
    ("events", "user_id"): ("users", "user_id"),
    ("sessions", "user_id"): ("users", "user_id"),
    ("hintq_impressions", "user_id"): ("users", "user_id"),
    ("events", "session_id"): ("sessions", "session_id"),
    ("queries", "category_id"): ("categories", "category_id"),
    ("items", "category_id"): ("categories", "category_id"),
}
UNIQUE = {
    "users": "user_id",
    "categories": "category_id",
    "queries": "query_id",
    "items": "item_id",
    "sessions": "session_id",
    "events": "event_id",
}
QUERY_COLUMNS = {"queries": "query", "events": "query", "hintq_impressions": "query"}


class IngestError(AigqError):
    pass


@dataclass
class IngestConfig:
    source_dir: str = option(
        "", "folder holding the parquet logs (one file per table), or a search log (user_id, ts, query: .csv/.parquet)"
    )


def _cast_column(path: Path, name: str, column: pa.ChunkedArray, field: pa.Field) -> pa.ChunkedArray:
    if column.type == field.type:
        return column
    if pa.types.is_timestamp(field.type):
        if not pa.types.is_timestamp(column.type):
            raise IngestError(f"{path}: column {name!r} has type {column.type}, expected a timestamp (UTC)")
        if column.type.tz is None:
            raise IngestError(f"{path}: column {name!r} has naive timestamps; write them timezone-aware (UTC)")
        return pc.cast(column, field.type)  # unit and time zone normalised to microsecond UTC
    try:
        return pc.cast(column, field.type, safe=True)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError):
        raise IngestError(f"{path}: column {name!r} has type {column.type}, expected {field.type}") from None


def _first_row(mask: pa.ChunkedArray | pa.Array) -> int:
    return int(np.flatnonzero(np.asarray(mask.to_numpy(zero_copy_only=False), dtype=bool))[0])


def read_table(path: Path, table: str) -> pa.Table:
    """Read one log file and conform it to its schema, or raise naming what is wrong."""
    if not path.is_file():
        raise IngestError(
            f"{path}: missing (expected table {table!r}; see core/schemas.py), or give a search log "
            "(search_log.csv: user_id, ts, query; README 'Your own logs')"
        )
    try:
        raw = pq.read_table(path)
    except (pa.ArrowInvalid, OSError) as e:
        raise IngestError(f"{path}: not a readable parquet file ({str(e).splitlines()[0]})") from None
    return conform(raw, path, table)


def conform(raw: pa.Table, path: Path, table: str) -> pa.Table:
    """`raw` in the table's schema, or raise naming the column and row at fault."""
    schema = SCHEMAS[table]
    missing = [f.name for f in schema if f.name not in raw.column_names]
    if missing:
        raise IngestError(f"{path}: missing column(s) {missing}")
    columns = []
    for field in schema:
        col = _cast_column(path, field.name, raw.column(field.name), field)
        if not field.nullable and col.null_count:
            row = _first_row(pc.is_null(col))
            raise IngestError(f"{path}: column {field.name!r} row {row}: null in a required column")
        allowed = ALLOWED.get((table, field.name))
        if allowed is not None:
            bad = pc.invert(pc.is_in(col, value_set=pa.array(allowed)))
            if pc.any(bad).as_py():
                row = _first_row(bad)
                raise IngestError(
                    f"{path}: column {field.name!r} row {row}: {col[row].as_py()!r} is not one of {list(allowed)}"
                )
        if field.name == "position" and pc.any(pc.less(col, 0)).as_py():
            raise IngestError(f"{path}: column 'position' row {_first_row(pc.less(col, 0))}: negative position")
        if table in QUERY_COLUMNS and field.name == QUERY_COLUMNS[table]:
            col = pa.chunked_array([pa.array([normalize_query(q) for q in col.to_pylist()], pa.string())])
        columns.append(col)
    out = pa.Table.from_arrays(columns, schema=schema)
    key = UNIQUE.get(table)
    if key and pc.count_distinct(out.column(key)).as_py() != out.num_rows:
        values = out.column(key).to_numpy(zero_copy_only=False)
        _, first_idx, counts = np.unique(values, return_index=True, return_counts=True)
        row = int(np.sort(first_idx[counts > 1])[0])
        raise IngestError(f"{path}: column {key!r} row {row}: duplicate id {values[row]!r}")
    return out


def validate_dir(source: Path) -> dict[str, pa.Table]:
    if not source.is_dir():
        raise IngestError(f"{source}: not a directory, nor a search log (.csv/.parquet); see README 'Your own logs'")
    return check_references({name: read_table(source / f"{name}.parquet", name) for name in SCHEMAS}, source)


def validate_search_log(path: Path) -> dict[str, pa.Table]:
    """The tables derived from a minimal search log, through the same checks as a full log."""
    derived = search_log.to_tables(search_log.read_search_log(path))
    tables = {name: conform(table, path, name) for name, table in derived.items()}
    return check_references(tables, path.parent)


def check_references(tables: dict[str, pa.Table], source: Path) -> dict[str, pa.Table]:
    for (table, col), (ref_table, ref_col) in REFERENCES.items():
        bad = pc.invert(pc.is_in(tables[table].column(col), value_set=tables[ref_table].column(ref_col)))
        if pc.any(bad).as_py():
            row = _first_row(bad)
            raise IngestError(
                f"{source / (table + '.parquet')}: column {col!r} row {row}: "
                f"{tables[table].column(col)[row].as_py()!r} not found in {ref_table}.{ref_col}"
            )
    if tables["events"].num_rows == 0:
        raise IngestError(f"{source / 'events.parquet'}: no events")
    return tables


def main(cfg: IngestConfig) -> dict[str, int]:
    """Validate every table, then replace $AIGQ_HOME/data with them (atomically per folder)."""
    source = Path(cfg.source_dir)
    log_file = search_log.find_search_log(source)
    tables = validate_search_log(log_file) if log_file else validate_dir(source)
    target = aigq_home() / "data"
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix="ingest-", dir=target.parent))
    for name, table in tables.items():
        pq.write_table(table, staging / f"{name}.parquet")
    if target.exists():
        shutil.rmtree(target)
    staging.rename(target)
    # a simulated world's ground truth does not describe real logs
    shutil.rmtree(aigq_home() / "world", ignore_errors=True)
    return {name: t.num_rows for name, t in tables.items()}
