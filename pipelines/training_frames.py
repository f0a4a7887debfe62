"""Point-in-time training frames through Feast (DuckDB offline store).

- CTR samples: one row per impression slot (user, query, position, clicked) with the
  `ctr_ranking_v1` features as of the impression time.
- IL-SFT contexts: one row per session start with the `direct_generation_v1` features as of
  the session start (the session's own events come later, so they cannot leak in).

Feast does not keep row order: frames carry their own keys and are sorted on them.
"""

from __future__ import annotations

from pathlib import Path

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
    entity_df = impressions.rename(columns={"impression_ts": "event_timestamp"})
    entity_df["request_hour"] = entity_df["event_timestamp"].dt.hour.astype("int64")
    frame = _historical(fs, CTR_SERVICE, entity_df)
    return frame.sort_values(["event_timestamp", "impression_id", "position"], kind="stable").reset_index(drop=True)


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
