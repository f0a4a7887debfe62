"""Point-in-time training frames through Feast (DuckDB offline store).

- CTR samples: one row per impression slot (user, query, position, clicked) with the
  `ctr_ranking_v1` features as of the impression time (from a log without impressions: the
  next-search samples of `next_search_impressions`).
- IL-SFT contexts: one row per session start with the `direct_generation_v1` features as of
  the session start (the session's own events come later, so they cannot leak in).

Feast does not keep row order: frames carry their own keys and are sorted on them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from core.config import aigq_home
from core.feature_store import CTR_SERVICE, DIRECT_SERVICE, data_dir


def _historical(fs, service: str, entity_df: pd.DataFrame) -> pd.DataFrame:
    job = fs.get_historical_features(entity_df=entity_df, features=fs.get_feature_service(service))
    return job.to_df()


def ctr_training_frame(fs, impressions: pd.DataFrame | None = None) -> pd.DataFrame:
    if impressions is None:
        impressions = pd.read_parquet(
            data_dir() / "hintq_impressions.parquet",
            columns=["impression_id", "user_id", "impression_ts", "position", "query", "clicked"],
        )
        if impressions.empty:  # a search log from a shop without HintQ yet
            impressions = next_search_impressions(data_dir())
    if impressions.empty:
        return pd.DataFrame(columns=[*impressions.columns, "event_timestamp", "request_hour"])
    entity_df = impressions.rename(columns={"impression_ts": "event_timestamp"})
    entity_df["request_hour"] = entity_df["event_timestamp"].dt.hour.astype("int64")
    frame = _historical(fs, CTR_SERVICE, entity_df)
    return frame.sort_values(["event_timestamp", "impression_id", "position"], kind="stable").reset_index(drop=True)


def next_search_impressions(data: Path, k: int = 8, pool_size: int = 200, seed: int = 0) -> pd.DataFrame:
    """Impression-shaped CTR samples from a log without HintQ impressions: at every session start
    after the first day, the list the stage before the ranker would show without it (popular
    queries up to the day before, a random draw of `pool_size`) plus up to k/2 of the queries
    the user then searched in that session; a slot is `clicked` when the user searched it. The
    ranker so learns which candidate a user goes on to search, from features as of the session
    start (point-in-time: the session's own searches come later)."""
    events = pd.read_parquet(data / "events.parquet", columns=["session_id", "event_ts", "event_type", "query"])
    searches = events[events["event_type"] == "search"]
    sessions = pd.read_parquet(data / "sessions.parquet", columns=["session_id", "user_id", "session_start"])
    rng = np.random.default_rng(seed)
    searched = searches.groupby("session_id")["query"].agg(lambda q: list(dict.fromkeys(q)))
    day = searches["event_ts"].dt.floor("D")
    rows = []
    for start_day, group in sessions.groupby(sessions["session_start"].dt.floor("D")):
        counts = searches.loc[day < start_day, "query"].value_counts()
        if counts.empty:
            continue
        pool = counts.index[:pool_size].to_numpy()
        weights = counts.to_numpy()[:pool_size].astype(float)
        for session_id, user_id, ts in group.itertuples(index=False):
            positives = searched.get(session_id, [])[: k // 2]
            draws = rng.choice(pool, size=min(len(pool), 3 * k), replace=False, p=weights / weights.sum())
            negatives = [q for q in draws if q not in positives][: k - len(positives)]
            slate = list(positives) + negatives
            for position, i in enumerate(rng.permutation(len(slate))):
                rows.append((session_id, user_id, ts, position, slate[i], slate[i] in positives))
    return pd.DataFrame(rows, columns=["impression_id", "user_id", "impression_ts", "position", "query", "clicked"])


def sft_context_frame(fs, sessions: pd.DataFrame | None = None, service: str = DIRECT_SERVICE) -> pd.DataFrame:
    if sessions is None:
        sessions = pd.read_parquet(data_dir() / "sessions.parquet", columns=["session_id", "user_id", "session_start"])
    entity_df = sessions.rename(columns={"session_start": "event_timestamp"})
    entity_df["request_hour"] = entity_df["event_timestamp"].dt.hour.astype("int64")
    frame = _historical(fs, service, entity_df)
    return frame.sort_values(["event_timestamp", "session_id"], kind="stable").reset_index(drop=True)


def frames_dir() -> Path:
    return aigq_home() / "frames"


def main(fs) -> dict[str, int]:
    """Write both frames under $AIGQ_HOME/frames; returns their row counts."""
    out = frames_dir()
    out.mkdir(parents=True, exist_ok=True)
    counts = {}
    for name, build in (("ctr", ctr_training_frame), ("sft_contexts", sft_context_frame)):
        frame = build(fs)
        frame.to_parquet(out / f"{name}.parquet", index=False)
        counts[name] = len(frame)
    return counts
