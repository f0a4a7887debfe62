"""The simulated world's ground truth: users' latent interests, seasonality and the click model.

Training and serving never read this module's saved state (`$AIGQ_HOME/world/`); the simulator
uses it to write logs and evaluation uses it to score lists (`World.click_probability`).

Each user has 8 interest slots over categories: up to 5 expressed ones (drive sessions), one
drift slot (absent at the start, grown by the end of the window for "drifters"), and up to 2
hidden ones that the user never expresses on their own but does click when shown (the ground
truth for serendipity). Weights move linearly from `w_start` to `w_end` over the window.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import numpy as np
import pandas as pd

from pipelines import catalog_spec as spec
from pipelines.catalog import Catalog, build_catalog
from pipelines.text import normalize_query

N_EXPRESSED, DRIFT_SLOT, N_SLOTS = 5, 5, 8
DAY_US = 86_400_000_000


@dataclass
class ClickModel:
    """Position-based click model: P(click) = examination(position) * attractiveness."""

    intercept: float = -4.0
    affinity_weight: float = 4.5  # on sqrt(interest weight of the query's category)
    season_weight: float = 1.0  # on log(seasonal multiplier of the query's domain)
    novelty_weight: float = 0.8  # on (user novelty preference - 0.3) * standardised novelty
    position_decay: float = 0.7  # examination = (1 + position) ** -decay, position 0-based
    invalid_penalty: float = 3.0  # on the logit of a query that names no product type


@dataclass
class WorldParams:
    seed: int
    n_users: int
    n_days: int
    burn_in_days: int
    start_us: int  # microseconds since epoch, UTC midnight of day 0
    cold_start_share: float
    season_amplitude: dict[str, float]
    season_phase: dict[str, float]
    season_period_days: float = 28.0
    trend_shift_day: int | None = None
    trend_shift_domains: list[str] = field(default_factory=list)
    trend_shift_boost: float = 1.0
    click: ClickModel = field(default_factory=ClickModel)


@dataclass
class Users:
    profile: pd.DataFrame  # public: user_id, age_band, gender, city_tier, price_sensitivity, signup_ts
    slot_category: np.ndarray  # [n, N_SLOTS] category index, -1 for an empty slot
    w_start: np.ndarray  # [n, N_SLOTS]
    w_end: np.ndarray  # [n, N_SLOTS]
    hidden: np.ndarray  # [n, N_SLOTS] bool
    novelty_pref: np.ndarray  # [n]
    activity: np.ndarray  # [n] expected sessions per day
    first_day: np.ndarray  # [n] first active day (negative: active before the window)


class World:
    def __init__(self, params: WorldParams, catalog: Catalog, users: Users):
        self.params, self.catalog, self.users = params, catalog, users
        self.query_category = catalog.query_category_index()
        self.category_domain = catalog.categories["domain"].to_numpy()
        self.domains = sorted(set(self.category_domain))
        self.category_domain_index = np.array([self.domains.index(d) for d in self.category_domain])
        self.query_novelty_z = _standardised_novelty(catalog, self.query_category)
        self._query_index = {q: i for i, q in enumerate(catalog.queries["query"])}
        self._user_index = {u: i for i, u in enumerate(users.profile["user_id"])}

    # ---- time -------------------------------------------------------------------------
    def days_since_start(self, ts_us: np.ndarray | int) -> np.ndarray:
        return (np.asarray(ts_us, dtype=np.int64) - self.params.start_us) / DAY_US

    def season(self, domain_index: np.ndarray, t_days: np.ndarray) -> np.ndarray:
        """Multiplicative seasonal demand of each domain at time t (days since start)."""
        p = self.params
        amp = np.array([p.season_amplitude[d] for d in self.domains])[domain_index]
        phase = np.array([p.season_phase[d] for d in self.domains])[domain_index]
        m = 1.0 + amp * np.sin(2 * np.pi * np.asarray(t_days) / p.season_period_days + phase)
        if p.trend_shift_day is not None:
            shifted = np.isin(np.array(self.domains)[domain_index], p.trend_shift_domains)
            m = np.where(shifted & (np.asarray(t_days) >= p.trend_shift_day), m * p.trend_shift_boost, m)
        return m

    # ---- interests ----------------------------------------------------------------------
    def interest_weights(self, user_idx: np.ndarray, t_days: np.ndarray) -> np.ndarray:
        """[n, N_SLOTS] interest weights at time t (expressed, drift and hidden slots)."""
        alpha = np.clip(np.asarray(t_days, dtype=float) / max(self.params.n_days, 1), 0.0, 1.0)[:, None]
        u = self.users
        return (1 - alpha) * u.w_start[user_idx] + alpha * u.w_end[user_idx]

    def session_slot_probs(self, user_idx: np.ndarray, t_days: np.ndarray) -> np.ndarray:
        """P(session intent slot): expressed interests only, times seasonal demand."""
        w = self.interest_weights(user_idx, t_days) * ~self.users.hidden[user_idx]
        cats = self.users.slot_category[user_idx]
        dom = self.category_domain_index[np.maximum(cats, 0)]
        w = w * self.season(dom, np.repeat(np.asarray(t_days)[:, None], N_SLOTS, axis=1)) * (cats >= 0)
        return w / w.sum(axis=1, keepdims=True)

    def affinity(self, user_idx: np.ndarray, category_idx: np.ndarray, t_days: np.ndarray) -> np.ndarray:
        """Interest weight of each (user, category) pair at time t, hidden interests included."""
        w = self.interest_weights(user_idx, t_days)
        match = self.users.slot_category[user_idx] == np.asarray(category_idx)[:, None]
        return (w * match).sum(axis=1)

    # ---- clicks -------------------------------------------------------------------------
    def click_probability_batch(self, user_idx, query_idx, position, t_days, category_idx=None) -> np.ndarray:
        """Vectorised ground-truth P(click) of showing query at 0-based position to user at t.

        `query_idx` -1 is a query outside the vocabulary: `category_idx` (from
        `resolve_queries`) then says which category it names; it is treated as a rare query of
        that category. One that names no category returns nothing and is rarely clicked."""
        c = self.params.click
        user_idx, query_idx = np.asarray(user_idx), np.asarray(query_idx)
        t_days = np.broadcast_to(np.asarray(t_days, dtype=float), user_idx.shape)
        known = query_idx >= 0
        cat = self.query_category[np.maximum(query_idx, 0)]
        if category_idx is not None:
            cat = np.where(known, cat, np.asarray(category_idx))
        else:
            cat = np.where(known, cat, -1)
        valid = cat >= 0
        aff = np.where(valid, self.affinity(user_idx, cat, t_days), 0.0)
        season = np.where(valid, self.season(self.category_domain_index[np.maximum(cat, 0)], t_days), 1.0)
        nov = np.where(known, self.query_novelty_z[np.maximum(query_idx, 0)],
                       np.where(valid, self.query_novelty_z.max(), 0.0))
        logit = (c.intercept + c.affinity_weight * np.sqrt(aff) + c.season_weight * np.log(season)
                 + c.novelty_weight * (self.users.novelty_pref[user_idx] - 0.3) * nov
                 - c.invalid_penalty * ~valid)
        attract = 1.0 / (1.0 + np.exp(-logit))
        exam = (1.0 + np.asarray(position, dtype=float)) ** -c.position_decay
        return exam * attract

    def click_probability(self, user: str, query: str, position: int, time) -> float:
        """Ground-truth probability that `user` clicks suggestion `query` shown at 0-based
        `position` at `time` (datetime, pandas Timestamp or microseconds). Evaluation only."""
        if user not in self._user_index:
            raise KeyError(f"unknown user {user!r}")
        ts = time if isinstance(time, (int, np.integer)) else int(pd.Timestamp(time).value // 1000)
        q, cat = self.resolve_queries([query])
        return float(self.click_probability_batch(
            np.array([self._user_index[user]]), q, np.array([position]),
            self.days_since_start(np.array([ts])), cat)[0])

    def user_index(self, user_ids) -> np.ndarray:
        return np.array([self._user_index[u] for u in user_ids], dtype=np.int64)

    def query_index(self, queries) -> np.ndarray:
        """Vocabulary index of each query text after normalisation, -1 if outside it."""
        return np.array([self._query_index.get(normalize_query(q), -1) for q in queries], dtype=np.int64)

    def resolve_queries(self, queries) -> tuple[np.ndarray, np.ndarray]:
        """(vocabulary index or -1, category index or -1) of each query text."""
        q = self.query_index(queries)
        cat = np.array([self.query_category[i] if i >= 0 else self.catalog.category_of_text(t)
                        for i, t in zip(q, queries)], dtype=np.int64)
        return q, cat

    # ---- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "world.json").write_text(json.dumps(asdict(self.params), indent=1, sort_keys=True))
        u = self.users
        np.savez_compressed(directory / "latent.npz", slot_category=u.slot_category, w_start=u.w_start,
                            w_end=u.w_end, hidden=u.hidden, novelty_pref=u.novelty_pref,
                            activity=u.activity, first_day=u.first_day,
                            query_prior=self.catalog.query_prior)

    @classmethod
    def load(cls, directory: Path, profile: pd.DataFrame) -> "World":
        """Load the ground truth saved by `aigq simulate` (evaluation only)."""
        raw = json.loads((directory / "world.json").read_text())
        raw["click"] = ClickModel(**raw["click"])
        params = WorldParams(**raw)
        z = np.load(directory / "latent.npz")
        users = Users(profile=profile, **{k: z[k] for k in z.files if k != "query_prior"})
        return cls(params, build_catalog(params.seed), users)


def _standardised_novelty(catalog: Catalog, query_category: np.ndarray) -> np.ndarray:
    """z-score of -log2 of a query's population-level popularity."""
    share = catalog.query_prior / len(catalog.categories)
    nov = -np.log2(share)
    return (nov - nov.mean()) / nov.std()


def make_world(seed: int, n_users: int, n_days: int, end_date: str, cold_start_share: float,
               burn_in_days: int, trend_shift_day: int | None = None,
               trend_shift_domains: tuple[str, ...] = (), trend_shift_boost: float = 1.0) -> World:
    rng = np.random.default_rng(seed)
    catalog = build_catalog(seed)
    end = datetime.fromisoformat(end_date).replace(tzinfo=timezone.utc)
    start = end - timedelta(days=n_days)
    domains = sorted(set(catalog.categories["domain"]))
    params = WorldParams(
        seed=seed, n_users=n_users, n_days=n_days, burn_in_days=burn_in_days,
        start_us=int(start.timestamp()) * 1_000_000, cold_start_share=cold_start_share,
        season_amplitude={d: float(rng.uniform(0.1, 0.4)) for d in domains},
        season_phase={d: float(rng.uniform(0, 2 * np.pi)) for d in domains},
        trend_shift_day=trend_shift_day, trend_shift_domains=list(trend_shift_domains),
        trend_shift_boost=trend_shift_boost,
    )
    users = _make_users(rng, catalog, params)
    return World(params, catalog, users)


def _make_users(rng: np.random.Generator, catalog: Catalog, p: WorldParams) -> Users:
    n = p.n_users
    age = rng.choice(len(spec.AGE_BANDS), n, p=[0.18, 0.27, 0.22, 0.15, 0.11, 0.07])
    gender = rng.choice(len(spec.GENDERS), n, p=[0.52, 0.44, 0.04])
    cold = rng.random(n) < p.cold_start_share
    first_day = np.where(cold, rng.integers(max(p.n_days - 5, 0), p.n_days, n), -p.burn_in_days)
    signup_offset_us = np.where(
        cold, first_day * DAY_US + rng.integers(0, DAY_US // 2, n),
        -rng.integers(p.burn_in_days * DAY_US, 365 * DAY_US, n))
    profile = pd.DataFrame({
        "user_id": [f"u{i:06d}" for i in range(n)],
        "age_band": np.array(spec.AGE_BANDS)[age],
        "gender": np.array(spec.GENDERS)[gender],
        "city_tier": rng.choice([1, 2, 3, 4, 5], n, p=[0.15, 0.25, 0.3, 0.2, 0.1]).astype(np.int64),
        "price_sensitivity": np.round(rng.beta(2, 2, n), 3),
        "signup_ts": p.start_us + signup_offset_us,
    })
    slot_category = _draw_interest_categories(rng, catalog, age, gender)
    w_start, w_end, hidden = _draw_interest_weights(rng, n)
    slot_category = np.where((w_start + w_end) > 0, slot_category, -1)
    return Users(
        profile=profile, slot_category=slot_category, w_start=w_start, w_end=w_end, hidden=hidden,
        novelty_pref=rng.beta(2, 5, n),
        activity=np.clip(rng.lognormal(np.log(0.3), 1.0, n), 0.03, 5.0),
        first_day=first_day.astype(np.int64),
    )


def _draw_interest_categories(rng, catalog: Catalog, age: np.ndarray, gender: np.ndarray) -> np.ndarray:
    """N_SLOTS distinct categories per user by Gumbel top-k over a profile-dependent prior."""
    cats = catalog.categories
    domain_of = cats["domain"].to_numpy()
    n_in_domain = cats.groupby("domain")["category_id"].transform("size").to_numpy()
    # each domain gets similar total mass whatever its number of leaf categories
    base = rng.lognormal(0, 0.6, len(cats)) / n_in_domain
    out = np.empty((len(age), N_SLOTS), dtype=np.int64)
    for a, band in enumerate(spec.AGE_BANDS):
        for g, gen in enumerate(spec.GENDERS):
            rows = np.flatnonzero((age == a) & (gender == g))
            if not len(rows):
                continue
            aff = np.array([spec.AGE_DOMAIN_AFFINITY[band].get(d, 1.0)
                            * spec.GENDER_DOMAIN_AFFINITY[gen].get(d, 1.0) for d in domain_of])
            logp = np.log(base * aff)
            keys = logp + rng.gumbel(size=(len(rows), len(cats)))
            out[rows] = np.argsort(-keys, axis=1)[:, :N_SLOTS]
    return out


def _draw_interest_weights(rng, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    n_expressed = rng.choice([2, 3, 4, 5], n, p=[0.3, 0.35, 0.2, 0.15])
    slot = np.arange(N_SLOTS)[None, :]
    expressed = slot < n_expressed[:, None]
    w_start = rng.dirichlet(np.full(N_EXPRESSED, 0.8), n)
    w_start = np.concatenate([w_start, np.zeros((n, N_SLOTS - N_EXPRESSED))], axis=1) * expressed
    w_start = w_start / w_start.sum(axis=1, keepdims=True)
    # end of window: expressed weights wander, and 40% of users grow a new interest
    w_end = w_start * rng.lognormal(0, 0.35, (n, N_SLOTS))
    drifter = rng.random(n) < 0.4
    w_end = w_end / w_end.sum(axis=1, keepdims=True)
    new_weight = np.where(drifter, rng.uniform(0.2, 0.5, n), 0.0)
    w_end = w_end * (1 - new_weight)[:, None]
    w_end[:, DRIFT_SLOT] = new_weight
    # hidden interests: never expressed in sessions, clicked when shown
    n_hidden = rng.choice([0, 1, 2], n, p=[0.2, 0.5, 0.3])
    hidden = (slot > DRIFT_SLOT) & (slot <= DRIFT_SLOT + n_hidden[:, None])
    hidden_w = rng.uniform(0.15, 0.35, (n, N_SLOTS)) * hidden
    return w_start + hidden_w, w_end + hidden_w, hidden
