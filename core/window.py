"""The experiment's hold-out window: one definition for every stage and for evaluation.

The last `holdout_days()` whole UTC days of the logs are held out: no stage trains on them
(base LM corpus, IL-SFT samples, Think mining, IL-GRPO prompts and statistics) and evaluation
draws its requests from them. The number comes from one place, `$AIGQ_HOLDOUT_DAYS` (default 5;
`aigq --holdout-days N ...` sets it for the command and everything it starts), so training and
evaluation cannot disagree.

The window is whole days: it ends at the midnight after the newest timestamp in the log. A window
counted back from the newest timestamp itself would start at that time of day, take in a sliver
of one more calendar day, and show reports and dashboards by day an extra, nearly empty day.
"""

from __future__ import annotations

import os

import pandas as pd

from core.config import ConfigError

HOLDOUT_DAYS_ENV = "AIGQ_HOLDOUT_DAYS"
DEFAULT_HOLDOUT_DAYS = 5.0


def holdout_days() -> float:
    """The hold-out window's length in days ($AIGQ_HOLDOUT_DAYS, default 5)."""
    raw = os.environ.get(HOLDOUT_DAYS_ENV, "").strip()
    if not raw:
        return DEFAULT_HOLDOUT_DAYS
    try:
        days = float(raw)
    except ValueError:
        raise ConfigError(f"{HOLDOUT_DAYS_ENV}={raw!r}: not a number of days") from None
    if not days > 0:
        raise ConfigError(f"{HOLDOUT_DAYS_ENV}={raw!r}: the hold-out window must be longer than 0 days")
    return days


def log_end(timestamps: pd.Series) -> pd.Timestamp:
    """The midnight (UTC) after the newest timestamp: the end of the log's last day."""
    return pd.Timestamp(timestamps.max()).floor("D") + pd.Timedelta(days=1)


def holdout_start(timestamps: pd.Series, days: float | None = None) -> pd.Timestamp:
    """Timestamps from here on are held out: the log's last `days` whole days (default: the
    experiment's window, `holdout_days()`)."""
    return log_end(timestamps) - pd.Timedelta(days=holdout_days() if days is None else days)
