"""The statistics that `world_v2.yaml` pre-registers, measured on a simulated world's logs (with
its ground truth where a statistic is about a latent structure: personas, tastes, hidden
interests). Evaluation-side code: training and serving never call it.

`measure(data_dir, world_dir)` returns {statistic: value}; `check(values, spec)` pairs each with its target.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from world.shop import World
from world.spec import WorldSpec


def measure(data: Path, world_dir: Path, seed: int = 0, max_users: int = 20_000) -> dict[str, float]:
    """The spec's statistics of the logs in `data` from the world saved in `world_dir`, on the
    logs of at most `max_users` users (user ids are drawn at random by the world, so the first
    ones are a random sample): the large profile's statistics then take seconds, not minutes."""
    users = pd.read_parquet(data / "users.parquet")
    world = World.load(world_dir, users)
    sample = [("user_id", "in", list(users["user_id"].iloc[:max_users]))] if len(users) > max_users else None
    events = pd.read_parquet(data / "events.parquet", filters=sample)
    impressions = pd.read_parquet(data / "hintq_impressions.parquet", filters=sample)
    items = pd.read_parquet(data / "items.parquet")
    rng = np.random.default_rng(seed)
    user_idx = pd.Series(np.arange(len(users)), index=users["user_id"])
    cat_idx = pd.Series(np.arange(len(world.catalog.categories)), index=world.catalog.categories["category_id"])
    events = events.assign(u=user_idx[events["user_id"]].to_numpy(), c=cat_idx[events["category_id"]].to_numpy())
    searches = events[events["event_type"] == "search"]
    organic = searches[searches["search_source"] == "organic"]
    out = {}
    out.update(_suggestion_clicks(impressions, searches))
    out["profile_domain_mi_nats"] = _profile_domain_mi(events, users, world)
    same, cross = _coengagement_lifts(events, world)
    out["persona_coengagement_lift"], out["cross_persona_coengagement_lift"] = same, cross
    out["session_complement_share"] = _session_complement_share(organic, world)
    out["taste_consistency_lift"] = _taste_consistency(organic, world, rng)
    out["exploratory_query_length_ratio"] = _query_length_ratio(organic, world)
    out["hidden_interest_organic_share"] = _hidden_share(organic, world)
    out["hidden_interest_click_lift"] = _hidden_click_lift(impressions, user_idx, cat_idx, world)
    out["price_cart_gap"] = _price_cart_gap(events, users, items)
    return {k: float(v) for k, v in out.items()}


def check(values: dict[str, float], spec: WorldSpec) -> list[dict]:
    """One row per target: statistic, value, range, whether it is inside, and the reason."""
    return [
        {
            "statistic": name,
            "value": values.get(name, float("nan")),
            "range": list(rng),
            "ok": bool(rng[0] <= values.get(name, float("nan")) <= rng[1]),
            "reason": spec.reasons[name],
        }
        for name, rng in spec.targets.items()
    ]


def table(rows: list[dict]) -> str:
    lines = ["| statistic | value | target | ok |", "|---|---|---|---|"]
    lines += [
        f"| {r['statistic']} | {r['value']:.4f} | {r['range'][0]:g} .. {r['range'][1]:g} | "
        f"{'yes' if r['ok'] else 'NO'} |"
        for r in rows
    ]
    return "\n".join(lines)


def _suggestion_clicks(impressions: pd.DataFrame, searches: pd.DataFrame) -> dict[str, float]:
    per_list = impressions.groupby(["impression_id", "policy"])["clicked"].sum().reset_index()
    legacy = per_list[per_list["policy"] == "legacy"]
    explore = per_list[per_list["policy"] == "legacy_explore"]
    clicked = legacy[legacy["clicked"] > 0]
    by_position = impressions[impressions["policy"] == "legacy"].groupby("position")["clicked"].mean()
    return {
        "impression_click_share": (legacy["clicked"] > 0).mean(),
        "clicks_per_clicked_impression": clicked["clicked"].mean() if len(clicked) else np.nan,
        "suggestion_search_share": (searches["search_source"] == "hintq").mean(),
        "ctr_top_to_last_ratio": by_position.iloc[0] / max(by_position.iloc[-1], 1e-9),
        "random_order_position_ratio": _random_order_position_ratio(impressions),
        "exploration_bucket_share": len(explore) / max(len(per_list), 1),
        "exploration_ctr_ratio": (explore["clicked"].mean() / legacy["clicked"].mean()) if len(explore) else np.nan,
    }


def _random_order_position_ratio(impressions: pd.DataFrame) -> float:
    """CTR of the top two slots over the last two in the randomised bucket (random order: the
    position effect alone; two slots each side, as the bucket is small)."""
    bucket = impressions[impressions["policy"] == "legacy_explore"]
    if bucket.empty:
        return np.nan
    ctr = bucket.groupby("position")["clicked"].mean()
    return ctr.iloc[:2].mean() / max(ctr.iloc[-2:].mean(), 1e-9)


def _profile_domain_mi(events: pd.DataFrame, users: pd.DataFrame, world: World) -> float:
    """MI (nats) between (age band, gender) and the user's most engaged domain, Miller-Madow
    bias-corrected (the plug-in estimate is biased up by about (cells - 1)(domains - 1) / 2N)."""
    domain = world.category_domain[events["c"].to_numpy()]
    top = (
        pd.DataFrame({"u": events["u"].to_numpy(), "d": domain})
        .groupby("u")["d"]
        .agg(lambda d: d.value_counts().index[0])
    )
    seg = (users["age_band"] + "|" + users["gender"]).to_numpy()[top.index.to_numpy()]
    joint = pd.crosstab(seg, top.to_numpy()).to_numpy().astype(float)
    n = joint.sum()
    p = joint / n
    pa, pb = p.sum(axis=1, keepdims=True), p.sum(axis=0, keepdims=True)
    nz = p > 0
    mi = (p[nz] * np.log(p[nz] / (pa @ pb)[nz])).sum()
    return mi - (((joint > 0).sum() - (pa > 0).sum() - (pb > 0).sum() + 1) / (2 * n))


def _engaged(events: pd.DataFrame, n_categories: int) -> np.ndarray:
    """[users, categories] bool: the user searched or clicked in the category."""
    pairs = events[["u", "c"]].drop_duplicates()
    out = np.zeros((int(events["u"].max()) + 1, n_categories), bool)
    out[pairs["u"].to_numpy(), pairs["c"].to_numpy()] = True
    return out[out.any(axis=1)]


def _coengagement_lifts(events: pd.DataFrame, world: World) -> tuple[float, float]:
    """Observed over expected co-engagement of category pairs (users who engaged both / users x
    P(a) x P(b)), summed over pairs of one persona, and over pairs that share no persona."""
    engaged = _engaged(events, len(world.category_domain)).astype(float)
    n = len(engaged)
    co = engaged.T @ engaged
    p = engaged.mean(axis=0)
    expected = n * np.outer(p, p)
    member = world.persona_member.astype(float)
    together = (member.T @ member) > 0
    in_some = member.any(axis=0)
    upper = np.triu(np.ones_like(co, bool), 1)
    same = upper & together
    cross = upper & ~together & in_some[:, None] & in_some[None, :]
    return co[same].sum() / expected[same].sum(), co[cross].sum() / expected[cross].sum()


def _session_complement_share(organic: pd.DataFrame, world: World) -> float:
    """Of visits whose typed searches span exactly two categories, the share where the two belong
    to one of the user's personas."""
    cats = organic.groupby("session_id").agg(u=("u", "first"), cs=("c", lambda c: sorted(set(c))))
    two = cats[cats["cs"].map(len) == 2]
    if two.empty:
        return np.nan
    a = np.array([c[0] for c in two["cs"]])
    b = np.array([c[1] for c in two["cs"]])
    return world.shares_persona(two["u"].to_numpy(), a, b).mean()


def _taste_consistency(organic: pd.DataFrame, world: World, rng, n_pairs: int = 20_000) -> float:
    """P(two typed searches of one user in different categories share an attribute word) over
    P(the same for a search of another user in the second category)."""
    texts = world.texts(list(organic["query"]))
    frame = pd.DataFrame(
        {
            "u": organic["u"].to_numpy(),
            "c": organic["c"].to_numpy(),
            "tokens": [frozenset(t[t >= 0]) for t in texts.tokens],
        }
    )
    frame = frame[frame["tokens"].map(len) > 0].reset_index(drop=True)
    by_user = frame.groupby("u").indices
    by_cat = frame.groupby("c").indices
    users = [u for u, ix in by_user.items() if frame.loc[ix, "c"].nunique() > 1]
    if not users:
        return np.nan
    same = other = 0
    for u in rng.choice(users, n_pairs):
        ix = by_user[u]
        x, y = rng.choice(ix, 2, replace=False)
        if frame.at[x, "c"] == frame.at[y, "c"]:
            continue
        pool = by_cat[frame.at[y, "c"]]
        z = pool[rng.integers(len(pool))]
        if frame.at[z, "u"] == u:
            continue
        same += bool(frame.at[x, "tokens"] & frame.at[y, "tokens"])
        other += bool(frame.at[x, "tokens"] & frame.at[z, "tokens"])
    return same / max(other, 1)


def _query_length_ratio(organic: pd.DataFrame, world: World) -> float:
    texts = world.texts(list(organic["query"]))
    words = pd.Series((texts.tokens >= 0).sum(axis=1), index=organic.index)
    pref = world.users.novelty_pref[organic["u"].to_numpy()]
    lo, hi = np.quantile(world.users.novelty_pref, [0.25, 0.75])
    return words[pref >= hi].mean() / max(words[pref <= lo].mean(), 1e-9)


def _hidden_share(organic: pd.DataFrame, world: World) -> float:
    u, c = organic["u"].to_numpy(), organic["c"].to_numpy()
    hidden = (world.users.slot_category[u] == c[:, None]) & world.users.hidden[u]
    return hidden.any(axis=1).mean()


def _hidden_click_lift(impressions: pd.DataFrame, user_idx: pd.Series, cat_idx: pd.Series, world: World) -> float:
    """CTR of shown suggestions in the user's hidden interests over CTR of those in categories the
    user has no interest in at all."""
    u = user_idx[impressions["user_id"]].to_numpy()
    c = cat_idx[impressions["category_id"]].to_numpy()
    slots = world.users.slot_category[u] == c[:, None]
    hidden = (slots & world.users.hidden[u]).any(axis=1)
    unrelated = ~slots.any(axis=1)
    clicked = impressions["clicked"].to_numpy()
    return clicked[hidden].mean() / max(clicked[unrelated].mean(), 1e-9) if hidden.any() else np.nan


def _price_cart_gap(events: pd.DataFrame, users: pd.DataFrame, items: pd.DataFrame) -> float:
    carts = events[events["event_type"] == "cart"].merge(items[["item_id", "price_tier"]], on="item_id")
    ps = users["price_sensitivity"].to_numpy()[carts["u"].to_numpy()]
    lo, hi = np.quantile(users["price_sensitivity"], [0.25, 0.75])
    return carts.loc[ps <= lo, "price_tier"].mean() - carts.loc[ps >= hi, "price_tier"].mean()
