"""`aigq nearline`: AIGQ-Direct lists for users with new activity, pushed to Feast.

Each run covers the activity window (watermark, newest event]. It is idempotent and resumable:

- the run and its window are recorded before any work; a run killed half way is resumed (same
  window) by the next invocation instead of starting a new one;
- each batch's lists are first written to the state database (primary key run + user, so a user
  is recorded once per run), then pushed to Feast, then marked pushed; on resume, recorded but
  unpushed lists are pushed again (the online write is an upsert of the same row and timestamp,
  so a repeat leaves the store unchanged) and only unrecorded users are generated;
- the watermark moves only after every list of the run is pushed.

The state lives in SQL through SQLAlchemy (SQLite under $AIGQ_HOME/nearline by default,
PostgreSQL by URL). `models.direct.DirectBatch` is the unit of work: a callable over a pandas batch
of user contexts. With engine `ray` it runs as Ray Data actors (`map_batches`, the model loaded
once per actor, contexts read from Feast by another actor); the driver keeps the state, pushes
each batch and moves the watermark exactly as the local loop does.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.compute as pc
import pyarrow.parquet as pq
import sqlalchemy as sa
from tqdm import tqdm

from core.config import aigq_home, option
from core.engine import check_ray_address, engine_name, ensure_ray, stage_env
from core.errors import AigqError
from core.feature_store import DIRECT_SERVICE, open_store
from models.direct import DirectBatch, newest_direct_model
from models.generator import model_version

JOB = "direct"

metadata = sa.MetaData()
watermarks = sa.Table(
    "nearline_watermarks",
    metadata,
    sa.Column("job", sa.String(64), primary_key=True),
    sa.Column("watermark", sa.DateTime(timezone=True), nullable=False),
)
runs = sa.Table(
    "nearline_runs",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(64), nullable=False, index=True),
    sa.Column("since", sa.DateTime(timezone=True), nullable=False),
    sa.Column("until", sa.DateTime(timezone=True), nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),  # running | done
    sa.Column("users", sa.Integer, nullable=False),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
lists = sa.Table(
    "nearline_lists",
    metadata,
    sa.Column("run_id", sa.Integer, primary_key=True),
    sa.Column("user_id", sa.String(256), primary_key=True),
    sa.Column("queries", sa.JSON, nullable=False),
    sa.Column("model_version", sa.String(128), nullable=False),
    sa.Column("generated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("pushed", sa.Boolean, nullable=False, default=False),
)


@dataclass
class NearlineConfig:
    model: str = option("", "Direct model directory (default: the newest of $AIGQ_HOME/models/direct_grpo, direct_sft)")
    store: str = option("sqlite", "feature store (sqlite | redis_postgres)")
    batch_size: int = option(64, "users per generation batch")
    initial_days: float = option(
        30.0,
        "first run (no watermark): users active in the last N days of logs "
        "(the interest window: every user the ranker knows gets a list)",
    )
    state_url: str = option(
        "", "SQLAlchemy URL of the job state (default $AIGQ_NEARLINE_STATE_URL or SQLite under $AIGQ_HOME/nearline)"
    )
    workers: int = option(
        1,
        "generation processes: 1 generates in this process; N > 1 runs a pool of N "
        "single-threaded workers. On Ray: the number of generation actors (1: one per Ray CPU)",
    )
    engine: str = option("", "local | ray (default $AIGQ_ENGINE or local; `aigq --engine`)")
    max_users: int = option(0, "stop after this many users in this invocation (0: all; the rest resume next time)")
    seed: int = option(0, "generation seed")


def state_engine(url: str = "") -> sa.Engine:
    url = url or os.environ.get("AIGQ_NEARLINE_STATE_URL", "")
    if not url:
        path = aigq_home() / "nearline" / "state.db"
        path.parent.mkdir(parents=True, exist_ok=True)
        url = f"sqlite:///{path}"
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    return engine


def active_users(since: datetime, until: datetime) -> list[str]:
    """Users with any event in (since, until], sorted (a stable order makes resumption simple)."""
    events = pd.read_parquet(
        aigq_home() / "data" / "events.parquet",
        columns=["user_id", "event_ts"],
        filters=[("event_ts", ">", pd.Timestamp(since)), ("event_ts", "<=", pd.Timestamp(until))],
    )
    return sorted(events["user_id"].unique())


def newest_event() -> datetime:
    path = aigq_home() / "data" / "events.parquet"
    if not path.exists():
        raise AigqError(f"{path}: no activity log; run `aigq simulate` or `aigq ingest DIR`")
    return pc.max(pq.read_table(path, columns=["event_ts"]).column(0)).as_py()


_worker_batch: DirectBatch | None = None


def _start_worker(model_dir: str, batch_size: int, seed: int) -> None:
    import torch

    global _worker_batch
    torch.set_num_threads(1)  # one core per worker: N workers beat one N-thread process here
    _worker_batch = DirectBatch(Path(model_dir), batch_size, seed)


def _worker_generate(contexts: pd.DataFrame) -> pd.DataFrame:
    return _worker_batch(contexts)


def generated_batches(model_dir: Path, cfg: NearlineConfig, contexts: Iterator[pd.DataFrame]) -> Iterator[pd.DataFrame]:
    """Direct lists for each batch of contexts, in order: in process, or on a pool of workers
    with up to two batches per worker in flight (the parent fetches contexts meanwhile)."""
    if cfg.workers <= 1:
        batch_fn = DirectBatch(model_dir, cfg.batch_size, cfg.seed)
        for frame in contexts:
            yield batch_fn(frame)
        return

    with ProcessPoolExecutor(
        cfg.workers,
        mp_context=multiprocessing.get_context("spawn"),
        initializer=_start_worker,
        initargs=(str(model_dir), cfg.batch_size, cfg.seed),
    ) as pool:
        pending: deque = deque()
        for frame in contexts:
            pending.append(pool.submit(_worker_generate, frame))
            if len(pending) >= 2 * cfg.workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


class _ContextReader:
    """Ray Data actor: the Direct prompt's features for a batch of users, from the online store."""

    def __init__(self, store: str, hour: int, env: dict[str, str]):
        os.environ.update(env)  # the driver's home and store settings (a worker may serve many jobs)
        self.fs, self.hour = open_store(store), hour

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        return fetch_contexts(self.fs, list(batch["user_id"]), self.hour)


class _DirectActor:
    """Ray Data actor: one Direct model per actor, one torch thread per Ray CPU."""

    def __init__(self, model_dir: str, batch_size: int, seed: int, env: dict[str, str]):
        os.environ.update(env)  # the driver's home: the model reads its catalogue there
        _start_worker(model_dir, batch_size, seed)

    def __call__(self, contexts: pd.DataFrame) -> pd.DataFrame:
        return _worker_generate(contexts)


def ray_generated_batches(
    model_dir: Path, cfg: NearlineConfig, users: Sequence[str], hour: int
) -> Iterator[pd.DataFrame]:
    """Direct lists for `users` on Ray Data, streamed back batch by batch in any order (Ray
    started: `ensure_ray`)."""
    import ray
    import ray.data

    if not users:
        return
    actors = cfg.workers if cfg.workers > 1 else max(1, int(ray.cluster_resources().get("CPU", 1)))
    blocks = [pd.DataFrame({"user_id": users[s : s + cfg.batch_size]}) for s in range(0, len(users), cfg.batch_size)]
    lists_ds = (
        ray.data.from_pandas(blocks)
        .map_batches(
            _ContextReader,
            fn_constructor_args=(cfg.store, hour, stage_env()),
            batch_size=cfg.batch_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(size=1),
            num_cpus=0,  # mostly waiting on the online store; generation takes the CPUs
        )
        .map_batches(
            _DirectActor,
            fn_constructor_args=(str(model_dir), cfg.batch_size, cfg.seed, stage_env()),
            batch_size=cfg.batch_size,
            batch_format="pandas",
            compute=ray.data.ActorPoolStrategy(min_size=1, max_size=actors),
            num_cpus=1,
        )
    )
    yield from lists_ds.iter_batches(batch_size=None, batch_format="pandas")


def fetch_contexts(fs, users: Sequence[str], hour: int) -> pd.DataFrame:
    frame = fs.get_online_features(
        features=fs.get_feature_service(DIRECT_SERVICE),
        entity_rows=[{"user_id": u, "request_hour": hour} for u in users],
    ).to_df()
    return frame


def push_lists(fs, rows: pd.DataFrame) -> None:
    from feast.data_source import PushMode

    frame = pd.DataFrame(
        {
            "user_id": rows["user_id"],
            "direct_queries": rows["queries"],
            "direct_model_version": rows["model_version"],
            "event_timestamp": pd.to_datetime(rows["generated_at"], utc=True),
        }
    )
    fs.push("direct_candidates_push", frame, to=PushMode.ONLINE)


def job_name(store: str) -> str:
    """One watermark per online store: switching to Redis fills Redis from the start."""
    return JOB if store == "sqlite" else f"{JOB}@{store}"


def open_run(engine: sa.Engine, model_version: str, initial_days: float, job: str = JOB) -> dict | None:
    """The unfinished run to resume, else a new run over (watermark, newest event]; None if no
    new activity."""
    with engine.begin() as conn:
        row = (
            conn.execute(sa.select(runs).where(runs.c.job == job, runs.c.status == "running").order_by(runs.c.run_id))
            .mappings()
            .first()
        )
        if row is not None:
            return dict(row)
        until = newest_event()
        mark = conn.execute(sa.select(watermarks.c.watermark).where(watermarks.c.job == job)).scalar()
        since = _utc(mark) if mark is not None else until - timedelta(days=initial_days)
        if until <= since:
            return None
        run = {
            "job": job,
            "since": since,
            "until": until,
            "model_version": model_version,
            "status": "running",
            "users": 0,
            "started_at": datetime.now(UTC),
        }
        run["run_id"] = conn.execute(runs.insert().values(**run)).inserted_primary_key[0]
        return run


def _utc(t: datetime) -> datetime:
    """SQLite hands back naive datetimes: they were written as UTC."""
    return t if t.tzinfo else t.replace(tzinfo=UTC)


def record(engine: sa.Engine, run_id: int, generated: pd.DataFrame, version: str, at: datetime) -> pd.DataFrame:
    rows = [
        {
            "run_id": run_id,
            "user_id": u,
            "queries": list(q),
            "model_version": version,
            "generated_at": at,
            "pushed": False,
        }
        for u, q in zip(generated["user_id"], generated["queries"])
    ]
    with engine.begin() as conn:
        conn.execute(lists.insert(), rows)
    return pd.DataFrame(rows)


def mark_pushed(engine: sa.Engine, run_id: int, users: Sequence[str]) -> None:
    with engine.begin() as conn:
        conn.execute(
            lists.update().where(lists.c.run_id == run_id, lists.c.user_id.in_(list(users))).values(pushed=True)
        )


def unpushed(engine: sa.Engine, run_id: int) -> pd.DataFrame:
    with engine.connect() as conn:
        return pd.DataFrame(
            conn.execute(sa.select(lists).where(lists.c.run_id == run_id, lists.c.pushed.is_(False))).mappings().all(),
            columns=[c.name for c in lists.columns],
        )


def recorded_users(engine: sa.Engine, run_id: int) -> set[str]:
    with engine.connect() as conn:
        return set(conn.execute(sa.select(lists.c.user_id).where(lists.c.run_id == run_id)).scalars())


def finish_run(engine: sa.Engine, run: dict, n_users: int) -> None:
    """Close the run and move the watermark, in one transaction."""
    with engine.begin() as conn:
        conn.execute(
            runs.update()
            .where(runs.c.run_id == run["run_id"])
            .values(status="done", users=n_users, finished_at=datetime.now(UTC))
        )
        updated = conn.execute(watermarks.update().where(watermarks.c.job == run["job"]).values(watermark=run["until"]))
        if updated.rowcount == 0:
            conn.execute(watermarks.insert().values(job=run["job"], watermark=run["until"]))


def main(cfg: NearlineConfig, fs=None, on_batch: Callable[[int], None] | None = None) -> dict:
    """One invocation: resume or start a run, generate and push every pending user, close it.
    `on_batch(i)` is called after each pushed batch (progress hooks; tests kill the job there)."""

    started = time.perf_counter()
    on_ray = engine_name(cfg.engine) == "ray"
    if on_ray:
        check_ray_address()
    model_dir = Path(cfg.model) if cfg.model else newest_direct_model()
    engine = state_engine(cfg.state_url)
    try:
        version = model_version(model_dir)
        run = open_run(engine, version, cfg.initial_days, job_name(cfg.store))
        if run is None:
            return {"status": "up to date", "users": 0, "generated": 0}
        fs = fs or open_store(cfg.store)
        users = active_users(_utc(run["since"]), _utc(run["until"]))
        replayed = unpushed(engine, run["run_id"])
        if len(replayed):  # recorded before a crash, maybe not pushed: push again (idempotent upsert)
            push_lists(fs, replayed)
            mark_pushed(engine, run["run_id"], list(replayed["user_id"]))
        done = recorded_users(engine, run["run_id"])
        todo = [u for u in users if u not in done]
        if cfg.max_users:
            todo = todo[: cfg.max_users]
        hour = _utc(run["until"]).hour
        generated = 0
        if on_ray:
            ensure_ray()
            results = ray_generated_batches(model_dir, cfg, todo, hour)
        else:
            batches = [todo[s : s + cfg.batch_size] for s in range(0, len(todo), cfg.batch_size)]
            results = generated_batches(model_dir, cfg, (fetch_contexts(fs, batch, hour) for batch in batches))
        n_batches = -(-len(todo) // cfg.batch_size)
        # closing: a failed batch stops the generation (a pool, Ray actors) before we leave
        with closing(results):
            for i, out in enumerate(tqdm(results, total=n_batches, desc="nearline direct", unit="batch")):
                rows = record(engine, run["run_id"], out, version, datetime.now(UTC))
                push_lists(fs, rows)
                mark_pushed(engine, run["run_id"], list(out["user_id"]))
                generated += len(out)
                if on_batch is not None:
                    on_batch(i)
        complete = len(recorded_users(engine, run["run_id"])) == len(users)
        if complete:
            finish_run(engine, run, len(users))
        seconds = time.perf_counter() - started
        return {
            "status": "done" if complete else "partial",
            "run_id": run["run_id"],
            "users": len(users),
            "generated": generated,
            "replayed": len(replayed),
            "model_version": version,
            "since": str(run["since"]),
            "until": str(run["until"]),
            "seconds": seconds,
            "lists_per_s": generated / seconds if seconds else 0.0,
        }
    finally:
        engine.dispose()


def watermark(url: str = "", store: str = "sqlite") -> datetime | None:
    engine = state_engine(url)
    try:
        with engine.connect() as conn:
            mark = conn.execute(sa.select(watermarks.c.watermark).where(watermarks.c.job == job_name(store))).scalar()
        return _utc(mark) if mark is not None else None
    finally:
        engine.dispose()
