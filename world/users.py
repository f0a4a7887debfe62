"""Drawing the simulated shoppers of world v2: profiles, personas, interest slots and tastes.

Ground truth: only the simulator and evaluation read what is drawn here (through `World`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from core.lexicon import Lexicon
from world import catalog_spec as spec
from world.catalog import Catalog
from world.personas import ARCHETYPES, PERSONAS

N_EXPRESSED, DRIFT_SLOT, N_SLOTS = 5, 5, 8
DAY_US = 86_400_000_000
CORE = 3  # a persona's first CORE named categories are its core


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
    personas: np.ndarray  # [n, 2] persona index, -1 for none
    taste: np.ndarray  # [n, n_tokens] float32: liking of each attribute token (0 without tastes)


def persona_membership(catalog: Catalog, core_boost: float) -> np.ndarray:
    """[n_personas, n_categories] weight of each category in each persona (0: not in it)."""
    cats = catalog.categories
    names = cats["category_name"].tolist()
    home = (cats["domain"] == "home").to_numpy()
    out = np.zeros((len(PERSONAS), len(cats)))
    for k, persona in enumerate(PERSONAS):
        for rank, name in enumerate(persona.categories):
            if name not in names:
                raise ValueError(f"persona {persona.name}: unknown category {name!r}")
            out[k, names.index(name)] = core_boost if rank < CORE else 1.0
        for j in np.flatnonzero(home):
            if any(kw.lower() in names[j].lower() for kw in persona.home_keywords):
                out[k, j] = max(out[k, j], 1.0)
    return out


def draw_users(
    rng: np.random.Generator,
    catalog: Catalog,
    lexicon: Lexicon,
    n: int,
    n_days: int,
    burn_in_days: int,
    start_us: int,
    cold_start_share: float,
    flags: dict,
    params: dict,
) -> Users:
    age = rng.choice(len(spec.AGE_BANDS), n, p=[0.18, 0.27, 0.22, 0.15, 0.11, 0.07])
    gender = rng.choice(len(spec.GENDERS), n, p=[0.52, 0.44, 0.04])
    city_tier = rng.choice([1, 2, 3, 4, 5], n, p=[0.15, 0.25, 0.3, 0.2, 0.1]).astype(np.int64)
    price_sensitivity = np.round(rng.beta(2, 2, n), 3)
    cold = rng.random(n) < cold_start_share
    first_day = np.where(cold, rng.integers(max(n_days - 5, 0), n_days, n), -burn_in_days)
    signup_offset_us = np.where(
        cold,
        first_day * DAY_US + rng.integers(0, DAY_US // 2, n),
        -rng.integers(burn_in_days * DAY_US, 365 * DAY_US, n),
    )
    profile = pd.DataFrame(
        {
            "user_id": [f"u{i:06d}" for i in range(n)],
            "age_band": np.array(spec.AGE_BANDS)[age],
            "gender": np.array(spec.GENDERS)[gender],
            "city_tier": city_tier,
            "price_sensitivity": price_sensitivity,
            "signup_ts": start_us + signup_offset_us,
        }
    )
    member = persona_membership(catalog, params["persona_core_boost"])
    personas = (
        _draw_personas(rng, age, gender, city_tier, params["personas_per_user"], params["persona_profile_strength"])
        if flags["personas"]
        else np.full((n, 2), -1)
    )
    slot_category = _draw_interest_categories(rng, catalog, age, gender, personas, member, params)
    w_start, w_end, hidden = _draw_interest_weights(rng, n)
    slot_category = np.where((w_start + w_end) > 0, slot_category, -1)
    taste = (
        _draw_tastes(rng, lexicon, gender, personas, price_sensitivity, params)
        if flags["attribute_tastes"]
        else np.zeros((n, len(lexicon)), np.float32)
    )
    return Users(
        profile=profile,
        slot_category=slot_category,
        w_start=w_start,
        w_end=w_end,
        hidden=hidden,
        novelty_pref=rng.beta(2, 5, n),
        activity=np.clip(rng.lognormal(np.log(0.3), 1.0, n), 0.03, 5.0),
        first_day=first_day.astype(np.int64),
        personas=personas,
        taste=taste,
    )


def _draw_personas(rng, age, gender, city_tier, per_user, strength: float) -> np.ndarray:
    """One or two personas per user, from a prior that multiplies profile affinities (raised to
    `strength`)."""
    n = len(age)
    logp = np.zeros((n, len(PERSONAS)))
    for k, p in enumerate(PERSONAS):
        logp[:, k] = (
            np.log([p.age.get(b, 1.0) for b in spec.AGE_BANDS])[age]
            + np.log([p.gender.get(g, 1.0) for g in spec.GENDERS])[gender]
            + np.log([p.city_tier.get(t, 1.0) for t in range(1, 6)])[city_tier - 1]
        )
    top2 = np.argsort(-(strength * logp + rng.gumbel(size=logp.shape)), axis=1)[:, :2]
    two = rng.random(n) < per_user[1]
    return np.stack([top2[:, 0], np.where(two, top2[:, 1], -1)], axis=1)


def _draw_interest_categories(rng, catalog, age, gender, personas, member, params, chunk: int = 20_000) -> np.ndarray:
    """N_SLOTS distinct categories per user: expressed slots from a mixture of the persona and
    the general prior; the drift slot mostly from the personas; hidden slots from persona
    categories not expressed (the general prior for users without personas). In chunks of users,
    so memory stays bounded by a chunk x categories."""
    out = np.empty((len(age), N_SLOTS), dtype=np.int64)
    base = (
        rng.lognormal(0, 0.6, len(catalog.categories))
        / catalog.categories.groupby("domain")["category_id"].transform("size").to_numpy()
    )  # each domain similar mass
    for lo in range(0, len(age), chunk):
        rows = slice(lo, lo + chunk)
        general = _general_prior(base, catalog, age[rows], gender[rows])
        out[rows] = _draw_slots(rng, general, personas[rows], member, params)
    return out


def _general_prior(base: np.ndarray, catalog: Catalog, age, gender) -> np.ndarray:
    """[n, n_categories] the profile-dependent prior over categories (world v1's)."""
    domain_of = catalog.categories["domain"].to_numpy()
    aff = np.array(
        [
            [
                [
                    spec.AGE_DOMAIN_AFFINITY[b].get(d, 1.0) * spec.GENDER_DOMAIN_AFFINITY[g].get(d, 1.0)
                    for d in domain_of
                ]
                for g in spec.GENDERS
            ]
            for b in spec.AGE_BANDS
        ],
        dtype=np.float32,
    )
    prior = base.astype(np.float32) * aff[age, gender]
    return prior / prior.sum(axis=1, keepdims=True)


def _draw_slots(rng, general: np.ndarray, personas: np.ndarray, member: np.ndarray, params) -> np.ndarray:
    n = len(general)
    has = personas >= 0
    persona_w = (member[np.maximum(personas, 0)] * has[:, :, None]).sum(axis=1).astype(np.float32)
    persona_w *= rng.lognormal(0, 0.4, persona_w.shape).astype(np.float32)  # the user's own emphasis
    with_persona = persona_w.sum(axis=1) > 0
    persona_p = np.where(
        with_persona[:, None], persona_w / np.maximum(persona_w.sum(axis=1, keepdims=True), 1e-12), general
    )
    share = params["persona_interest_share"]
    mixture = share * persona_p + (1 - share) * general
    out = np.empty((n, N_SLOTS), dtype=np.int64)
    keys = {"mixture": mixture, "persona": persona_p, "general": general}
    keys = {name: np.log(p + 1e-30) + rng.gumbel(size=p.shape).astype(np.float32) for name, p in keys.items()}
    taken = np.zeros(general.shape, dtype=bool)

    def pick(source: str, rows: np.ndarray) -> np.ndarray:
        """The best untaken category by the source's Gumbel keys (top-k without replacement),
        marked taken for `rows` (bool mask) only."""
        c = np.argmax(np.where(taken, -np.inf, keys[source]), axis=1)
        taken[np.flatnonzero(rows), c[rows]] = True
        return c

    everyone = np.ones(n, bool)
    for slot in range(N_EXPRESSED):
        out[:, slot] = pick("mixture", everyone)
    from_persona = rng.random(n) < params["drift_from_persona"]
    out[:, DRIFT_SLOT] = np.where(from_persona, pick("persona", from_persona), pick("general", ~from_persona))
    hidden_from_persona = rng.random(n) < params["hidden_from_persona"]
    for slot in range(DRIFT_SLOT + 1, N_SLOTS):
        # a persona with no category left (or a user without one) takes the general prior
        left = np.where(taken, 0.0, persona_p).sum(axis=1) > 1e-9
        persona = hidden_from_persona & left & with_persona
        out[:, slot] = np.where(persona, pick("persona", persona), pick("general", ~persona))
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


def _draw_tastes(rng, lexicon: Lexicon, gender, personas, price_sensitivity, params) -> np.ndarray:
    """[n, tokens] liking of each attribute word: a mixture of lifestyle archetypes, individual
    noise, brand loyalty, audience fit (gender, persona) and price level."""
    n, v = len(gender), len(lexicon)
    archetypes = np.zeros((len(ARCHETYPES), v))
    for k, a in enumerate(ARCHETYPES):
        archetypes[k, lexicon.ids(a.likes)] += params["archetype_strength"]
        archetypes[k, lexicon.ids(a.dislikes)] -= params["archetype_dislike"]
    mix = rng.dirichlet(np.full(len(archetypes), params["archetype_concentration"]), n)
    taste = mix @ archetypes + params["taste_noise"] * rng.standard_normal((n, v))
    brand = np.zeros(v, bool)
    brand[lexicon.ids(lexicon.brands)] = True
    taste[:, brand] = params["brand_loyalty"] * rng.standard_normal((n, int(brand.sum())))
    w = params["audience_weight"]
    for word, fits in (("women's", gender == 0), ("men's", gender == 1)):
        taste[:, lexicon.index[word]] += np.where(fits, w, -w)
    audience_words = {word for p in PERSONAS for word in p.audience}
    for word in audience_words & set(lexicon.index):
        members = np.zeros(n, bool)
        for k, p in enumerate(PERSONAS):
            if word in p.audience:
                members |= (personas == k).any(axis=1)
        taste[:, lexicon.index[word]] += np.where(members, w, -0.5 * w)
    lean = params["price_weight"] * (np.asarray(price_sensitivity) - 0.5) * 2
    taste[:, lexicon.index["cheap"]] += lean
    for word in ("premium", "luxury"):
        taste[:, lexicon.index[word]] -= lean
    return taste.astype(np.float32)
