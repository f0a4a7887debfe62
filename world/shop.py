"""The simulated world's ground truth (version 2): who the shoppers are, what they like, and the
list-level click model. Training and serving never read it (`$AIGQ_HOME/world/`); the simulator
uses it to write logs and evaluation uses it to score lists.

Each user has 8 interest slots over categories (up to 5 expressed ones that drive visits, a drift
slot grown over the window by "drifters", up to 2 hidden ones never searched unprompted but
clicked when shown), one or two personas that those categories mostly come from, and tastes over
attribute words (colours, materials, styles, audiences, price words, brands). A visit opens with
a need (its first intent category). A suggestion's attractiveness depends on that need, the
long-term interest in its category, the taste match of the words it names, seasonal demand and
novelty; the shopper scans the list top-down, looking at position j with probability
(1 + j)^-decay, and after taking a suggestion rarely goes on (`click_continue`). Evaluation does
not know the need of a held-out visit any more than a policy does: expected clicks are averaged
over the user's need distribution. Every structure can be switched off (`world_v2.yaml`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from core.catalogue import longest_named_key
from core.lexicon import MAX_TOKENS, Lexicon
from core.text import normalize_query
from world.catalog import Catalog, build_catalog, novelty_by_category_and_length, standardised_novelty
from world.spec import load_spec
from world.users import DAY_US, N_SLOTS, Users, draw_users, persona_membership

NO_CATEGORY = -1


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
    version: int = 2
    flags: dict[str, bool] = field(default_factory=dict)
    spec: dict = field(default_factory=dict)  # the world_v2.yaml parameters this world was drawn with


@dataclass
class Texts:
    """What the world needs to judge a batch of suggestion texts (any shape, aligned)."""

    query: np.ndarray  # vocabulary index, -1 outside it
    category: np.ndarray  # category index, -1 if the text names no product type
    tokens: np.ndarray  # [..., MAX_TOKENS] attribute tokens, -1 padded
    novelty: np.ndarray  # standardised novelty


class World:
    def __init__(self, params: WorldParams, catalog: Catalog, users: Users):
        self.params, self.catalog, self.users = params, catalog, users
        self.flags, self.spec = params.flags, params.spec
        self.lexicon = Lexicon(catalog.items["brand"])
        queries = catalog.queries
        self.query_category = catalog.query_category_index()
        tokens = self.lexicon.token_matrix(list(queries["query"]), list(queries["ptype"]))
        self.query_n_tokens = (tokens >= 0).sum(axis=1)
        # vocabulary queries name at most two words: the hot paths gather only that many columns
        self.query_tokens = tokens[:, : max(int(self.query_n_tokens.max()), 1)]
        self.category_domain = catalog.categories["domain"].to_numpy()
        self.domains = sorted(set(self.category_domain))
        self.category_domain_index = np.array([self.domains.index(d) for d in self.category_domain])
        self.query_novelty_z = standardised_novelty(catalog)
        self._novelty_by_shape = novelty_by_category_and_length(
            self.query_category, self.query_n_tokens, self.query_novelty_z, len(self.category_domain)
        )
        self.persona_member = persona_membership(catalog, 1.0) > 0
        items = catalog.items
        self.item_tokens = np.stack(
            [
                [self.lexicon.index.get(normalize_query(v), -1) for v in items[column]]
                for column in ("color", "material", "style", "audience", "brand")
            ],
            axis=1,
        )
        self.item_tier = items["price_tier"].to_numpy()
        self._query_index = {q: i for i, q in enumerate(queries["query"])}
        self._user_index = {u: i for i, u in enumerate(users.profile["user_id"])}
        self._ptype_category = {p: i for p, i in zip(queries["ptype"], self.query_category)}
        self._taste = np.concatenate([users.taste, np.zeros((len(users.taste), 1), np.float32)], axis=1)

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
        """P(a visit's need is slot s): expressed interests only, times seasonal demand."""
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

    def is_hidden_interest(self, user_idx: np.ndarray, category_idx: np.ndarray) -> np.ndarray:
        """Whether each (user, category) pair is one of the user's hidden interests (1-d, aligned)."""
        match = self.users.slot_category[user_idx] == np.asarray(category_idx)[:, None]
        return (match & self.users.hidden[user_idx]).any(axis=1)

    def shares_persona(self, user_idx, cat_a, cat_b) -> np.ndarray:
        """Whether categories a and b belong to one of the user's personas (shapes broadcast)."""
        user_idx, cat_a, cat_b = np.broadcast_arrays(user_idx, cat_a, cat_b)
        out = np.zeros(user_idx.shape, bool)
        for k in range(self.users.personas.shape[1]):
            p = self.users.personas[user_idx, k]
            ok = (p >= 0) & (cat_a >= 0) & (cat_b >= 0)
            p = np.maximum(p, 0)
            out |= ok & self.persona_member[p, np.maximum(cat_a, 0)] & self.persona_member[p, np.maximum(cat_b, 0)]
        return out

    # ---- tastes -------------------------------------------------------------------------
    def taste_match(self, user_idx: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """Sum of the user's liking of each attribute token (tokens [..., T], user_idx [...])."""
        if not self.flags.get("attribute_tastes", True):
            return np.zeros(tokens.shape[:-1], np.float32)
        # the padding token -1 indexes the appended zero column: no mask needed on the hot path
        return self._taste[np.asarray(user_idx)[..., None], tokens].sum(axis=-1)

    def price_lean(self, user_idx: np.ndarray) -> np.ndarray:
        """> 0 for price-sensitive users: how much a price tier below the middle appeals."""
        if not self.flags.get("attribute_tastes", True):
            return np.zeros(np.shape(user_idx))
        ps = self.users.profile["price_sensitivity"].to_numpy()[user_idx]
        return self.spec["price_weight"] * (ps - 0.5) * 2

    # ---- texts --------------------------------------------------------------------------
    def texts(self, queries: Sequence[str]) -> Texts:
        """Judge texts by what they name: a vocabulary query by its own index; any other text by
        the product type and attribute words it names (novelty as a query of that category with
        as many attribute words; a text that names no product type gets nothing)."""
        q = np.array([self._query_index.get(normalize_query(t), -1) for t in queries], dtype=np.int64)
        cat = np.where(q >= 0, self.query_category[np.maximum(q, 0)], NO_CATEGORY)
        tokens = np.full((len(q), MAX_TOKENS), -1, dtype=np.int32)
        tokens[:, : self.query_tokens.shape[1]] = np.where(q[:, None] >= 0, self.query_tokens[np.maximum(q, 0)], -1)
        novelty = np.where(q >= 0, self.query_novelty_z[np.maximum(q, 0)], 0.0)
        for i in np.flatnonzero(q < 0):
            ptype = longest_named_key(queries[i], self._ptype_category)
            if ptype is None:
                continue
            cat[i] = self._ptype_category[ptype]
            ids = self.lexicon.token_ids(queries[i], ptype)[:MAX_TOKENS]
            tokens[i, :] = -1
            tokens[i, : len(ids)] = ids
            novelty[i] = self._novelty_by_shape[cat[i], min(len(ids), self._novelty_by_shape.shape[1] - 1)]
        return Texts(q, cat, tokens, novelty)

    def vocabulary_texts(self) -> Texts:
        return Texts(np.arange(self.catalog.n_queries), self.query_category, self.query_tokens, self.query_novelty_z)

    # ---- clicks -------------------------------------------------------------------------
    def attractiveness(self, user_idx, texts: Texts, t_days, need: np.ndarray | None = None) -> np.ndarray:
        """P(take the suggestion | looked at it), for the user at time t with a visit need
        (category index per element, -1 or None: no need known). Shapes broadcast."""
        s = self.spec
        user_idx = np.asarray(user_idx)
        cat = texts.category
        valid = cat >= 0
        shape = np.broadcast(user_idx, cat).shape
        user_b, cat_b = np.broadcast_to(user_idx, shape), np.broadcast_to(cat, shape)
        t_b = np.broadcast_to(np.asarray(t_days, dtype=float), shape)
        flat_u, flat_c = user_b.ravel(), np.maximum(cat_b, 0).ravel()
        aff = np.where(valid, self.affinity(flat_u, flat_c, t_b.ravel()).reshape(shape), 0.0)
        latent = valid & self.is_hidden_interest(flat_u, flat_c).reshape(shape)
        season = np.where(valid, self.season(self.category_domain_index[np.maximum(cat_b, 0)], t_b), 1.0)
        nov_pref = self.users.novelty_pref[user_b]
        logit = (
            s["click_intercept"]
            + s["click_affinity_weight"] * np.sqrt(aff)
            + s["click_latent_weight"] * latent
            + s["click_season_weight"] * np.log(season)
            + s["click_novelty_weight"] * (nov_pref - 0.3) * texts.novelty
            + s["click_taste_weight"]
            * self.taste_match(user_b, np.broadcast_to(texts.tokens, shape + texts.tokens.shape[-1:]))
        )
        if need is not None and self.flags.get("session_need", True):
            logit = logit + s["click_need_weight"] * ((cat_b == need) & valid)
        logit = np.where(valid, logit, s["click_nothing_logit"])
        return 1.0 / (1.0 + np.exp(-logit))

    def examination(self, k: int) -> np.ndarray:
        return (1.0 + np.arange(k)) ** -self.spec["click_position_decay"]

    def cascade(self, take: np.ndarray) -> np.ndarray:
        """Per position, P(click) when looked at top-down: a shopper who took a suggestion goes on
        only with probability `click_continue` (independent clicks when there is no visit need)."""
        k = take.shape[-1]
        q = take * self.examination(k)
        if not self.flags.get("session_need", True):
            return q
        keep_scanning = 1.0 - q * (1.0 - self.spec["click_continue"])
        survival = np.concatenate([np.ones(q.shape[:-1] + (1,)), np.cumprod(keep_scanning, axis=-1)[..., :-1]], axis=-1)
        return survival * q

    def need_distribution(self, user_idx: np.ndarray, t_days: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """([n, S] need categories, [n, S] their probabilities): a visit's possible needs."""
        return self.users.slot_category[user_idx], self.session_slot_probs(user_idx, t_days)

    def list_click_probabilities(
        self, user_idx: np.ndarray, t_days: np.ndarray, texts: Texts, shown: np.ndarray
    ) -> np.ndarray:
        """[n, k] probability that each shown suggestion is clicked, averaged over the visit's
        possible needs. `texts` fields are [n, k]; `shown` [n, k] False for padding and repeats
        (a repeated query is one suggestion)."""
        user_idx, t_days = np.asarray(user_idx), np.asarray(t_days, dtype=float)
        if not self.flags.get("session_need", True):
            return self.cascade(self.attractiveness(user_idx[:, None], texts, t_days[:, None]) * shown)
        needs, probs = self.need_distribution(user_idx, t_days)
        out = np.zeros(shown.shape)
        for s in range(needs.shape[1]):
            if not (probs[:, s] > 0).any():
                continue
            take = self.attractiveness(user_idx[:, None], texts, t_days[:, None], needs[:, s : s + 1]) * shown
            out += probs[:, s : s + 1] * self.cascade(take)
        return out

    def click_probability(self, user: str, query: str, position: int, time) -> float:
        """Ground-truth probability that `user` clicks `query` shown alone at 0-based `position`
        at `time` (datetime, pandas Timestamp or microseconds). Evaluation only."""
        if user not in self._user_index:
            raise KeyError(f"unknown user {user!r}")
        ts = time if isinstance(time, (int, np.integer)) else int(pd.Timestamp(time).value // 1000)
        t = self.texts([query])
        row = Texts(t.query[None, :], t.category[None, :], t.tokens[None, :, :], t.novelty[None, :])
        padded = lambda a, fill: np.concatenate([np.full(a.shape[:1] + (position,) + a.shape[2:], fill), a], axis=1)  # noqa: E731
        texts = Texts(
            padded(row.query, -1), padded(row.category, NO_CATEGORY), padded(row.tokens, -1), padded(row.novelty, 0.0)
        )
        shown = np.zeros((1, position + 1), bool)
        shown[0, position] = True
        p = self.list_click_probabilities(
            np.array([self._user_index[user]]), self.days_since_start(np.array([ts])), texts, shown
        )
        return float(p[0, position])

    def best_list(self, user: str, time, k: int) -> list[str]:
        """The list-aware oracle: greedily, the vocabulary query that adds the most expected
        clicks at the next position given the ones above it (ground truth; evaluation only)."""
        u = np.array([self._user_index[user]])
        t = self.days_since_start(
            np.array([time if isinstance(time, (int, np.integer)) else int(pd.Timestamp(time).value // 1000)])
        )
        vocab = self.vocabulary_texts()
        exam = self.examination(k)
        if self.flags.get("session_need", True):
            needs, probs = self.need_distribution(u, t)
            live = np.flatnonzero(probs[0] > 0)
            take = np.stack([self.attractiveness(u, vocab, t, needs[0, s]) for s in live])  # [S, Q]
            weight = probs[0, live][:, None]
        else:
            take, weight = self.attractiveness(u, vocab, t)[None, :], np.ones((1, 1))
        survival = np.ones((take.shape[0], 1))
        chosen: list[int] = []
        cont = self.spec["click_continue"] if self.flags.get("session_need", True) else 1.0
        for j in range(k):
            gain = (weight * survival * exam[j] * take).sum(axis=0)
            gain[chosen] = -1.0
            best = int(np.argmax(gain))
            chosen.append(best)
            survival = survival * (1.0 - exam[j] * take[:, best : best + 1] * (1.0 - cont))
        return list(self.catalog.queries["query"].to_numpy()[chosen])

    # ---- lookups ------------------------------------------------------------------------
    def user_index(self, user_ids) -> np.ndarray:
        return np.array([self._user_index[u] for u in user_ids], dtype=np.int64)

    # ---- persistence --------------------------------------------------------------------
    def save(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / "world.json").write_text(json.dumps(asdict(self.params), indent=1, sort_keys=True))
        u = self.users
        np.savez_compressed(
            directory / "latent.npz",
            slot_category=u.slot_category,
            w_start=u.w_start,
            w_end=u.w_end,
            hidden=u.hidden,
            novelty_pref=u.novelty_pref,
            activity=u.activity,
            first_day=u.first_day,
            personas=u.personas,
            taste=u.taste.astype(np.float16),
            query_prior=self.catalog.query_prior,
        )

    @classmethod
    def load(cls, directory: Path, profile: pd.DataFrame) -> World:
        """Load the ground truth saved by `aigq simulate` (evaluation only)."""
        raw = json.loads((directory / "world.json").read_text())
        params = WorldParams(**raw)
        z = np.load(directory / "latent.npz")
        fields = {k: z[k] for k in z.files if k != "query_prior"}
        fields["taste"] = fields["taste"].astype(np.float32)
        return cls(params, build_catalog(params.seed), Users(profile=profile, **fields))

    def describe(self) -> dict:
        """What eval.json reports about the world it was scored in."""
        return {"version": self.params.version, "seed": self.params.seed, "flags": dict(self.flags)}


def make_world(
    seed: int,
    n_users: int,
    n_days: int,
    end_date: str,
    cold_start_share: float,
    burn_in_days: int,
    trend_shift_day: int | None = None,
    trend_shift_domains: tuple[str, ...] = (),
    trend_shift_boost: float = 1.0,
    off: Sequence[str] = (),
) -> World:
    spec = load_spec(off)
    rng = np.random.default_rng(seed)
    catalog = build_catalog(seed)
    end = datetime.fromisoformat(end_date).replace(tzinfo=UTC)
    start = end - timedelta(days=n_days)
    domains = sorted(set(catalog.categories["domain"]))
    params = WorldParams(
        seed=seed,
        n_users=n_users,
        n_days=n_days,
        burn_in_days=burn_in_days,
        start_us=int(start.timestamp()) * 1_000_000,
        cold_start_share=cold_start_share,
        season_amplitude={d: float(rng.uniform(0.1, 0.4)) for d in domains},
        season_phase={d: float(rng.uniform(0, 2 * np.pi)) for d in domains},
        trend_shift_day=trend_shift_day,
        trend_shift_domains=list(trend_shift_domains),
        trend_shift_boost=trend_shift_boost,
        version=spec.version,
        flags=spec.flags,
        spec=spec.params,
    )
    lexicon = Lexicon(catalog.items["brand"])
    users = draw_users(
        rng, catalog, lexicon, n_users, n_days, burn_in_days, params.start_us, cold_start_share, spec.flags, spec.params
    )
    return World(params, catalog, users)
