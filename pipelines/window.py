"""The experiment's hold-out window, one definition for every stage and for evaluation.

The window is whole UTC days: the last `days` days up to the midnight after the newest
timestamp in the log. A window counted back from the newest timestamp itself would start at
that time of day, so it would take in a sliver of one more calendar day, and how many sessions
fall into that sliver depends on the date the world ends: reports and dashboards by day would
then show an extra, nearly empty day.
"""

from __future__ import annotations

import pandas as pd


def log_end(timestamps: pd.Series) -> pd.Timestamp:
    """The midnight (UTC) after the newest timestamp: the end of the log's last day."""
    return pd.Timestamp(timestamps.max()).floor("D") + pd.Timedelta(days=1)


def holdout_start(timestamps: pd.Series, days: float) -> pd.Timestamp:
    """Timestamps from here on are held out: the log's last `days` whole days."""
    return log_end(timestamps) - pd.Timedelta(days=days)
