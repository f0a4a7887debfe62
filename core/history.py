"""A time-indexed view of the behaviour log: what a user had done strictly before a time.

Shared by the baselines (which may only look at the past) and the evaluation harness.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DAY_US = 86_400_000_000
ENGAGEMENT = {"search": 1.0, "click": 1.0, "cart": 3.0, "purchase": 5.0}


def to_us(t) -> int:
    """Microseconds since the epoch (UTC) of a Timestamp, datetime, string or int."""
    if isinstance(t, (int, np.integer)):
        return int(t)
    ts = pd.Timestamp(t)
    if ts.tzinfo is None:
        ts = ts.tz_localize("UTC")
    return int(ts.value // 1000)


class EventLog:
    def __init__(self, events: pd.DataFrame):
        ev = events.sort_values(
            ["user_id", "event_ts", "event_id"] if "event_id" in events else ["user_id", "event_ts"], kind="stable"
        )
        self.ts = ev["event_ts"].astype("datetime64[us, UTC]").astype("int64").to_numpy()
        self.user = ev["user_id"].to_numpy()
        self.type = ev["event_type"].to_numpy()
        self.query = ev["query"].to_numpy()
        self.category = ev["category_id"].to_numpy()
        self.item = ev["item_id"].to_numpy()
        self.session = ev["session_id"].to_numpy()
        users, starts = np.unique(self.user, return_index=True)
        ends = np.append(starts[1:], len(self.user))
        self._slices = {u: (s, e) for u, s, e in zip(users, starts, ends)}
        self.events = ev.reset_index(drop=True)

    def before(self, user: str, t) -> slice:
        """Indices of the user's events strictly before t (chronological)."""
        if user not in self._slices:
            return slice(0, 0)
        s, e = self._slices[user]
        return slice(s, s + int(np.searchsorted(self.ts[s:e], to_us(t), side="left")))

    def n_events_before(self, user: str, t) -> int:
        sl = self.before(user, t)
        return sl.stop - sl.start

    def recent_queries(self, user: str, t, n: int) -> list[str]:
        """The last n distinct searches before t, most recent first (none for n <= 0)."""
        if n <= 0:
            return []
        sl = self.before(user, t)
        out: list[str] = []
        for i in range(sl.stop - 1, sl.start - 1, -1):
            if self.type[i] == "search" and self.query[i] not in out:
                out.append(self.query[i])
                if len(out) == n:
                    break
        return out

    def recent_items(self, user: str, t, n: int) -> list[str]:
        sl = self.before(user, t)
        out: list[str] = []
        for i in range(sl.stop - 1, sl.start - 1, -1):
            if self.item[i] is not None and self.item[i] not in out:
                out.append(self.item[i])
                if len(out) == n:
                    break
        return out

    def searched(self, user: str, t) -> set[str]:
        sl = self.before(user, t)
        return {q for q, e in zip(self.query[sl], self.type[sl]) if e == "search"}

    def categories(self, user: str, t) -> set[str]:
        sl = self.before(user, t)
        return {c for c in self.category[sl] if c is not None}

    def category_weights(self, user: str, t, days: float = 30) -> dict[str, float]:
        """Engagement share per category over the `days` before t (search 1, click 1, cart 3,
        purchase 5), strongest first."""
        sl = self.before(user, t)
        lo = np.searchsorted(self.ts[sl], to_us(t) - int(days * DAY_US), side="left") + sl.start
        weights: dict[str, float] = {}
        for i in range(lo, sl.stop):
            c = self.category[i]
            if c is not None:
                weights[c] = weights.get(c, 0.0) + ENGAGEMENT.get(self.type[i], 1.0)
        total = sum(weights.values())
        return {c: w / total for c, w in sorted(weights.items(), key=lambda kv: (-kv[1], kv[0]))}
