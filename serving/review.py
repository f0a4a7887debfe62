"""Reviewers' decisions on served suggestions (maker-checker): flags with a reason code and
evidence, and approvals of whole lists, stored through SQLAlchemy (SQLite under
$AIGQ_HOME/review/ by default, `AIGQ_REVIEW_URL` for PostgreSQL). Append-only: nothing is
updated or deleted, every row says who decided, when and why.

The online path reads the flags (`FlagWatcher`: refreshed in the background every few seconds,
so a flag stops a query being served without a restart); IL-GRPO reads them as negatives
(`pipelines.rewards`: the `flagged` reward); the review page (`monitoring/review.py`) writes them.
"""

from __future__ import annotations

import logging
import threading
import unicodedata
from datetime import UTC, datetime

import pandas as pd
import sqlalchemy as sa

from core.config import aigq_home
from core.errors import AigqError
from core.sql import make_engine, url_from_env
from core.text import normalize_query

log = logging.getLogger(__name__)

REASONS = ("irrelevant", "offensive", "unavailable", "duplicate", "brand_safety")
SCOPES = ("global", "category")
MAX_EVIDENCE_CHARS = 2000
MAX_REVIEWER_CHARS = 64

metadata = sa.MetaData()
flags_table = sa.Table(
    "review_flags",
    metadata,
    sa.Column("flag_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("query", sa.String(256), nullable=False, index=True),
    sa.Column("category_id", sa.String(256), nullable=True),
    sa.Column("scope", sa.String(16), nullable=False),
    sa.Column("reason", sa.String(32), nullable=False),
    sa.Column("evidence", sa.Text, nullable=False, default=""),
    sa.Column("reviewer", sa.String(MAX_REVIEWER_CHARS), nullable=False),
    sa.Column("source", sa.String(16), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
approvals_table = sa.Table(
    "review_approvals",
    metadata,
    sa.Column("approval_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("request_id", sa.String(64), nullable=False, index=True),
    sa.Column("reviewer", sa.String(MAX_REVIEWER_CHARS), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)


class ReviewError(AigqError):
    """A decision that cannot be recorded: the review page answers it with a 4xx and this text."""


def review_url() -> str:
    """$AIGQ_REVIEW_URL, else SQLite under $AIGQ_HOME/review/."""
    return url_from_env("AIGQ_REVIEW_URL", aigq_home() / "review" / "review.db")


def _text(value: str, name: str, limit: int, required: bool = True) -> str:
    if not isinstance(value, str):
        raise ReviewError(f"{name}: a string")
    if required and not value.strip():
        raise ReviewError(f"{name}: required")
    if len(value) > limit:
        raise ReviewError(f"{name}: at most {limit} characters, got {len(value)}")
    if any(unicodedata.category(ch) == "Cc" and ch not in "\n\r\t" for ch in value):
        raise ReviewError(f"{name}: control characters are not allowed")
    return value.strip()


class ReviewStore:
    def __init__(self, url: str | None = None):
        self.url = url or review_url()
        self.engine = make_engine(self.url, metadata)

    def flag(
        self,
        request_id: str,
        position: int,
        query: str,
        category_id: str | None,
        source: str,
        reason: str,
        reviewer: str,
        scope: str = "global",
        evidence: str = "",
    ) -> int:
        """Record one flag; returns its id. The caller has checked the list exists."""
        if reason not in REASONS:
            raise ReviewError(f"reason: one of {', '.join(REASONS)}, got {reason[:40]!r}")
        if scope not in SCOPES:
            raise ReviewError(f"scope: one of {', '.join(SCOPES)}, got {scope[:40]!r}")
        if scope == "category" and not category_id:
            raise ReviewError("scope: 'category' needs a suggestion with a known category")
        row = {
            "request_id": request_id,
            "position": int(position),
            "query": normalize_query(query),
            "category_id": category_id,
            "scope": scope,
            "reason": reason,
            "evidence": _text(evidence, "evidence", MAX_EVIDENCE_CHARS, required=False),
            "reviewer": _text(reviewer, "reviewer", MAX_REVIEWER_CHARS),
            "source": source,
            "created_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            return int(conn.execute(flags_table.insert().values(**row)).inserted_primary_key[0])

    def approve(self, request_id: str, reviewer: str) -> int:
        row = {
            "request_id": request_id,
            "reviewer": _text(reviewer, "reviewer", MAX_REVIEWER_CHARS),
            "created_at": datetime.now(UTC),
        }
        with self.engine.begin() as conn:
            return int(conn.execute(approvals_table.insert().values(**row)).inserted_primary_key[0])

    def flags(self) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(flags_table).order_by(flags_table.c.flag_id)).mappings().all()
        return pd.DataFrame(rows, columns=[c.name for c in flags_table.columns])

    def approvals(self) -> pd.DataFrame:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(approvals_table).order_by(approvals_table.c.approval_id)).mappings().all()
        return pd.DataFrame(rows, columns=[c.name for c in approvals_table.columns])

    def blocked(self) -> Blocked:
        with self.engine.connect() as conn:
            rows = conn.execute(sa.select(flags_table.c.query, flags_table.c.category_id, flags_table.c.scope)).all()
        return Blocked(
            frozenset(q for q, _, scope in rows if scope == "global"),
            frozenset((q, c) for q, c, scope in rows if scope == "category"),
        )

    def close(self) -> None:
        self.engine.dispose()


class Blocked:
    """Flagged queries: everywhere (global scope) or within one category."""

    def __init__(self, everywhere: frozenset = frozenset(), in_category: frozenset = frozenset()):
        self.everywhere, self.in_category = everywhere, in_category

    def __call__(self, query: str, category: str | None) -> bool:
        return query in self.everywhere or (query, category) in self.in_category

    def __len__(self) -> int:
        return len(self.everywhere) + len(self.in_category)


class FlagWatcher:
    """The current flags, re-read every `refresh_seconds` by a background thread, so a reviewer's
    flag reaches every serving process within seconds and no request waits on the review
    database. A review database that is down keeps the last flags read."""

    def __init__(self, url: str | None = None, refresh_seconds: float = 2.0):
        self.store = ReviewStore(url)
        self.blocked = Blocked()
        self._stop = threading.Event()
        self.refresh()
        self._thread = threading.Thread(target=self._run, args=(refresh_seconds,), name="aigq-flags", daemon=True)
        self._thread.start()

    def refresh(self) -> None:
        try:
            self.blocked = self.store.blocked()
        except sa.exc.SQLAlchemyError as e:
            log.warning("review flags unavailable, keeping %d known: %s", len(self.blocked), e)

    def _run(self, every: float) -> None:
        while not self._stop.wait(every):
            self.refresh()

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.store.close()
