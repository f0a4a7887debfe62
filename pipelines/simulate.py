"""`aigq simulate`: a seeded e-commerce world writes behaviour logs as parquet.

Day by day, every active user starts sessions; each session has an intent over one or two of
the user's expressed interest categories, opens with a HintQ impression from the legacy policy
(co-click on the user's last query, then time-decayed popularity), whose clicks follow the
world's click model and become searches; organic searches, item clicks, carts and purchases
follow. The legacy policy only knows previous days' logs. Each day is one parquet row group,
so memory stays bounded by a day's events. Same seed, same bytes.
"""

from __future__ import annotations

import collections
import json
from dataclasses import asdict, dataclass
from datetime import date, datetime, timezone
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from tqdm import tqdm

from pipelines import schemas, world_stats
from pipelines.config import ConfigError, aigq_home, option
from pipelines.world import DAY_US, World, make_world
from pipelines.world_spec import load_spec

PROFILES = {
    "tiny": dict(n_users=300, n_days=10),
    "demo": dict(n_users=2_000, n_days=30),
    "large": dict(n_users=100_000, n_days=30),
}
HOUR_US = 3_600_000_000
SESSION_GAP_US = 40 * 60_000_000  # a user's sessions start at least 40 minutes apart
# share of sessions starting in each hour (UTC is the shop's local time here)
DIURNAL = np.array([0, 0, 0, 0, 0, 0, 1, 2, 4, 5, 5, 5, 7, 6, 5, 5, 5, 6, 7, 8, 10, 10, 8, 4], float)
COCLICK_SLOTS, POPULAR_POOL, POPULAR_DAYS, COCLICK_DAYS = 4, 60, 7, 14


@dataclass
class SimulateConfig:
    profile: str = option("demo", f"size preset: {' | '.join(PROFILES)}")
    seed: int = option(42, "random seed; the same seed gives the same bytes")
    n_users: int = option(0, "override the profile's number of users (0: the profile's)")
    n_days: int = option(0, "override the profile's number of logged days (0: the profile's)")
    end_date: str = option("", "UTC date (YYYY-MM-DD) at which the logged window ends (default: today, "
                               "so the logs are recent; pin it for byte-identical reruns on other days)")
    cold_start_share: float = option(0.12, "share of users who sign up in the last 5 days")
    list_size: int = option(8, "K, the number of queries in a HintQ list")
    burn_in_days: int = option(3, "days simulated before the window to warm the legacy policy (not logged)")
    trend_shift_day: int = option(-1, "day from which trend_shift_domains surge (negative: no shift)")
    trend_shift_domains: list[str] = option(["fashion", "beauty"], "domains that surge at trend_shift_day")
    trend_shift_boost: float = option(3.0, "demand multiplier of the surging domains")
    off: list[str] = option([], "world structures to switch off, for the ablation (attribute_tastes, "
                                "novelty_search, personas, session_need, exploration; see world_v2.yaml)")
    check_spec: bool = option(True, "measure the world_v2.yaml target statistics on the new logs "
                                    "(world/spec_check.json; a minute for the large profile)")
    output_dir: str = option("", "where to write the logs (default $AIGQ_HOME/data)")

    def resolved_end_date(self) -> str:
        if not self.end_date:
            return datetime.now(timezone.utc).date().isoformat()
        try:
            return date.fromisoformat(self.end_date).isoformat()
        except ValueError:
            raise ConfigError(f"end_date {self.end_date!r}: expected YYYY-MM-DD") from None

    def resolved(self) -> tuple[int, int]:
        if self.profile not in PROFILES:
            raise ConfigError(f"unknown profile {self.profile!r}; choose one of {', '.join(PROFILES)}")
        p = PROFILES[self.profile]
        return self.n_users or p["n_users"], self.n_days or p["n_days"]


@dataclass
class LegacyState:
    """What the legacy HintQ policy has learnt from previous days' searches."""

    last_query: np.ndarray  # per user, -1 if none
    daily_counts: collections.deque
    daily_pairs: collections.deque
    coclick_top: np.ndarray  # [n_queries, COCLICK_SLOTS], -1 padded

    @classmethod
    def empty(cls, n_users: int, n_queries: int) -> "LegacyState":
        return cls(np.full(n_users, -1), collections.deque(maxlen=POPULAR_DAYS),
                   collections.deque(maxlen=COCLICK_DAYS), np.full((n_queries, COCLICK_SLOTS), -1))


def main(cfg: SimulateConfig) -> Path:
    n_users, n_days = cfg.resolved()
    out = Path(cfg.output_dir) if cfg.output_dir else aigq_home() / "data"
    out.mkdir(parents=True, exist_ok=True)
    end_date = cfg.resolved_end_date()
    world = make_world(
        cfg.seed, n_users, n_days, end_date, cfg.cold_start_share, cfg.burn_in_days,
        cfg.trend_shift_day if cfg.trend_shift_day >= 0 else None, tuple(cfg.trend_shift_domains),
        cfg.trend_shift_boost, off=cfg.off)
    write_catalog_and_users(world, out)
    rng = np.random.default_rng(cfg.seed + 1)
    state = LegacyState.empty(n_users, world.catalog.n_queries)
    writers = {name: pq.ParquetWriter(out / f"{name}.parquet", schemas.SCHEMAS[name])
               for name in ("sessions", "events", "hintq_impressions")}
    ids = {"session": 0, "event": 0}
    try:
        for day in tqdm(range(-cfg.burn_in_days, n_days), desc="simulate days", unit="day"):
            tables = simulate_day(world, day, rng, state, cfg.list_size, ids)
            if day >= 0:
                for name, table in tables.items():
                    writers[name].write_table(table)
    finally:
        for w in writers.values():
            w.close()
    world_dir = aigq_home() / "world" if not cfg.output_dir else out.parent / "world"
    world.save(world_dir)
    manifest = {"source": "simulate", "config": asdict(cfg), "end_date": end_date, "world": world.describe(),
                "n_users": n_users, "n_days": n_days, "sessions": ids["session"], "events": ids["event"]}
    (out / "manifest.json").write_text(json.dumps(manifest, indent=1, sort_keys=True))
    if cfg.check_spec:
        rows = world_stats.check(world_stats.measure(out, world_dir), load_spec(cfg.off))
        (world_dir / "spec_check.json").write_text(json.dumps(rows, indent=1))
    return out


def write_catalog_and_users(world: World, out: Path) -> None:
    c = world.catalog
    profile = world.users.profile
    tables = {
        "users": profile.assign(signup_ts=profile["signup_ts"].astype("datetime64[us]").dt.tz_localize("UTC")),
        "categories": c.categories,
        "queries": c.queries,
        "items": c.items,
    }
    for name, df in tables.items():
        table = pa.Table.from_pandas(df, schema=schemas.SCHEMAS[name], preserve_index=False)
        pq.write_table(table.replace_schema_metadata(None), out / f"{name}.parquet")


def simulate_day(world: World, day: int, rng: np.random.Generator, state: LegacyState,
                 k: int, ids: dict) -> dict[str, pa.Table]:
    sess_user, start_us = _sessions_of_day(world, day, rng)
    n = len(sess_user)
    t_days = world.days_since_start(start_us)
    need, second = _session_intents(world, sess_user, t_days, rng)
    lists, explore = exploration_bucket(world, legacy_lists(world, state, sess_user, rng, k), rng)
    clicked = world.draw_suggestion_clicks(rng, sess_user, t_days, lists, need)
    searches = _searches(world, sess_user, lists, clicked, need, second, rng)
    events = _events(world, sess_user, searches, start_us, rng)
    _update_legacy_state(state, searches, sess_user, world.catalog.n_queries)

    session_ids = ids["session"] + np.arange(n, dtype=np.int64)
    event_ids = ids["event"] + np.arange(len(events["sess"]), dtype=np.int64)
    if day >= 0:
        ids["session"] += n
        ids["event"] += len(event_ids)
    return {
        "sessions": _sessions_table(world, sess_user, session_ids, start_us, events),
        "events": _events_table(world, sess_user, session_ids, event_ids, events),
        "hintq_impressions": _impressions_table(world, sess_user, session_ids, start_us, lists, clicked, explore),
    }


def _sessions_of_day(world: World, day: int, rng) -> tuple[np.ndarray, np.ndarray]:
    u = world.users
    active = u.first_day <= day
    weekday = (world.params.start_us // DAY_US + day + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    rate = u.activity * (1.25 if weekday >= 5 else 1.0) * np.where(u.first_day >= 0, 0.35, 1.0)  # new users are tentative
    n_sess = rng.poisson(rate) * active
    first_visit = (u.first_day == day) & (day >= 0)
    n_sess[first_visit] = np.maximum(n_sess[first_visit], 1)
    sess_user = np.repeat(np.arange(len(n_sess)), n_sess)
    hour = rng.choice(24, size=len(sess_user), p=DIURNAL / DIURNAL.sum())
    start = (world.params.start_us + day * DAY_US + hour * HOUR_US
             + rng.integers(0, HOUR_US, len(sess_user)))
    order = np.lexsort((start, sess_user))
    sess_user, start = sess_user[order], start[order]
    start = spaced_starts(sess_user, start, SESSION_GAP_US)
    # a user who ran out of day has no more sessions that day
    keep = start < world.params.start_us + (day + 1) * DAY_US
    return sess_user[keep], start[keep]


def spaced_starts(group: np.ndarray, start: np.ndarray, gap: int) -> np.ndarray:
    """Within each group (contiguous, sorted by start), push starts so consecutive ones are at
    least `gap` apart: s'_i = max(s_i, s'_(i-1) + gap), as one cumulative max over
    s_i - gap*rank_i (offset per group so the maximum restarts at each group)."""
    if not len(start):
        return start
    first = np.searchsorted(group, group)
    rank = np.arange(len(group)) - first
    gid = np.cumsum(np.r_[0, group[1:] != group[:-1]])
    base = start.min()
    shift = gid * (int(start.max() - base) + gap * (len(group) + 1))
    v = start - base - gap * rank + shift
    return np.maximum.accumulate(v) - shift + gap * rank + base


def _draw_rows(probs: np.ndarray, rng) -> np.ndarray:
    """One column index per row, drawn from the row's probabilities."""
    cum = probs.cumsum(axis=1)
    return np.minimum((cum < rng.random(len(probs))[:, None] * cum[:, -1:]).sum(axis=1), probs.shape[1] - 1)


def _session_intents(world: World, sess_user, t_days, rng) -> tuple[np.ndarray, np.ndarray]:
    """The visit's need (its first intent category) and, for some visits, a second intent: another
    expressed interest, favouring categories of the same persona as the need."""
    probs = world.session_slot_probs(sess_user, t_days)
    rows = np.arange(len(sess_user))
    cats = world.users.slot_category[sess_user]
    slot1 = _draw_rows(probs, rng)
    need = cats[rows, slot1]
    boost = np.where(world.shares_persona(sess_user[:, None], need[:, None], cats),
                     world.spec["complement_boost"], 1.0)
    second_probs = probs * boost
    second_probs[rows, slot1] = 0.0
    possible = second_probs.sum(axis=1) > 0
    slot2 = _draw_rows(np.where(possible[:, None], second_probs, 1.0), rng)
    two = possible & (rng.random(len(sess_user)) < world.spec["second_intent_share"])
    return need, np.where(two, cats[rows, slot2], -1)


def legacy_lists(world: World, state: LegacyState, sess_user, rng, k: int) -> np.ndarray:
    """The legacy policy: co-click successors of the user's last query, then a random draw from
    the most popular queries of the last days (weighted by count). [n, k] query indices."""
    n, nq = len(sess_user), world.catalog.n_queries
    last = state.last_query[sess_user]
    coclick = np.where(last[:, None] >= 0, state.coclick_top[np.maximum(last, 0)], -1)
    counts = np.sum(state.daily_counts, axis=0) if state.daily_counts else np.zeros(nq)
    top = np.argsort(-counts, kind="stable")[:POPULAR_POOL]
    weights = counts[top] + 1e-9
    if counts.sum() == 0:  # nothing learnt yet: random queries
        top, weights = rng.choice(nq, POPULAR_POOL, replace=False), np.ones(POPULAR_POOL)
    keys = np.log(weights / weights.sum())[None, :] + rng.gumbel(size=(n, len(top)))
    popular = top[np.argsort(-keys, axis=1)]
    return first_distinct(np.concatenate([coclick, popular], axis=1), k)


def exploration_bucket(world: World, lists: np.ndarray, rng) -> tuple[np.ndarray, np.ndarray]:
    """A small randomised bucket of impressions: some slots of the legacy list replaced by random
    vocabulary queries, the order shuffled (logged as policy `legacy_explore`)."""
    n, k = lists.shape
    explore = np.zeros(n, bool)
    if not world.flags["exploration"] or n == 0:
        return lists, explore
    explore = rng.random(n) < world.spec["exploration_share"]
    m, slots = int(explore.sum()), int(world.spec["exploration_slots"])
    if m:
        randoms = rng.integers(0, world.catalog.n_queries, (m, slots))
        mixed = first_distinct(np.concatenate([randoms, lists[explore][:, :k - slots], lists[explore]], axis=1), k)
        keys = np.where(mixed >= 0, rng.random(mixed.shape), np.inf)  # padding stays at the end
        lists = lists.copy()
        lists[explore] = np.take_along_axis(mixed, np.argsort(keys, axis=1, kind="stable"), axis=1)
    return lists, explore


def first_distinct(candidates: np.ndarray, k: int) -> np.ndarray:
    """Per row, the first k distinct non-negative values, in order (-1 padded)."""
    n, m = candidates.shape
    order = np.argsort(candidates, axis=1, kind="stable")
    sorted_vals = np.take_along_axis(candidates, order, axis=1)
    repeat_sorted = np.zeros_like(sorted_vals, dtype=bool)
    repeat_sorted[:, 1:] = sorted_vals[:, 1:] == sorted_vals[:, :-1]
    repeat = np.empty_like(repeat_sorted)
    np.put_along_axis(repeat, order, repeat_sorted, axis=1)
    keep = ~repeat & (candidates >= 0)
    rank = np.cumsum(keep, axis=1) - 1
    out = np.full((n, k), -1, dtype=candidates.dtype)
    rows, cols = np.nonzero(keep & (rank < k))
    out[rows, rank[rows, cols]] = candidates[rows, cols]
    return out


CHUNK = 20_000  # rows per vectorised choice (bounds memory: rows x candidates x tokens)


def _choose(logits_of, n_candidates: np.ndarray, rng) -> np.ndarray:
    """A softmax draw per row among its first `n_candidates[row]` candidates, whose logits
    `logits_of(rows, width, valid)` returns as [rows, width] (one uniform per row, inverse CDF).
    Rows go in order of candidate count, so each chunk is only as wide as its widest row (most
    categories have a few dozen queries, some a hundred)."""
    out = np.empty(len(n_candidates), dtype=np.int64)
    order = np.argsort(n_candidates, kind="stable")
    for lo in range(0, len(order), CHUNK):
        rows = order[lo:lo + CHUNK]
        width = np.arange(max(int(n_candidates[rows].max()), 1))
        valid = width[None, :] < n_candidates[rows][:, None]
        logits = np.where(valid, logits_of(rows, width, valid), -np.inf)
        cdf = np.cumsum(np.exp(logits - logits.max(axis=1, keepdims=True)), axis=1)
        u = rng.random(len(rows))[:, None] * cdf[:, -1:]
        out[rows] = np.minimum((cdf < u).sum(axis=1), n_candidates[rows] - 1)
    return out


def organic_queries(world: World, users: np.ndarray, categories: np.ndarray, rng) -> np.ndarray:
    """The query a shopper types inside a category: Zipf popularity, flattened and lengthened by
    their novelty taste, tilted to the attribute words they like."""
    qcat = world.query_category  # the vocabulary is grouped by category
    first = np.searchsorted(qcat, np.arange(qcat.max() + 1), side="left")
    count = np.searchsorted(qcat, np.arange(qcat.max() + 1), side="right") - first
    s, log_prior = world.spec, np.log(world.catalog.query_prior).astype(np.float32)
    n_tokens = world.query_n_tokens.astype(np.float32)

    def logits(rows, width, valid):
        u, c = users[rows], categories[rows]
        cand = np.where(valid, first[c][:, None] + width[None, :], 0)
        out = log_prior[cand]
        if world.flags["novelty_search"]:
            nov = world.users.novelty_pref[u][:, None].astype(np.float32)
            out = (1 - s["search_popularity_flatten"] * nov) * out + s["search_attribute_lean"] * nov * n_tokens[cand]
        return out + s["search_taste_weight"] * world.taste_match(u[:, None], world.query_tokens[cand])

    return first[categories] + _choose(logits, count[categories], rng)


def clicked_items(world: World, users: np.ndarray, queries: np.ndarray, rng) -> np.ndarray:
    """The result a shopper clicks for a query: among the items it returns, by taste and price."""
    c = world.catalog
    off, count = c.query_item_offsets[queries], np.diff(c.query_item_offsets)[queries]
    tier = (world.item_tier.astype(np.float32) - 3) / 2

    def logits(rows, width, valid):
        cand = c.query_item_index[np.where(valid, off[rows][:, None] + width[None, :], 0)]
        u = users[rows][:, None]
        return world.spec["item_taste_weight"] * world.taste_match(u, world.item_tokens[cand]) \
            - world.price_lean(u).astype(np.float32) * tier[cand]

    return c.query_item_index[off + _choose(logits, count, rng)]


def _searches(world: World, sess_user, lists, clicked, need, second, rng) -> dict[str, np.ndarray]:
    """Searches of each session: clicked suggestions first (in list order), then organic ones."""
    n = len(need)
    hs_sess, hs_pos = np.nonzero(clicked)
    n_org = rng.poisson(world.spec["organic_searches_mean"], n) + (clicked.sum(axis=1) == 0)
    org_sess = np.repeat(np.arange(n), n_org)
    use_second = (second[org_sess] >= 0) & (rng.random(len(org_sess)) < 0.4)
    org_cat = np.where(use_second, second[org_sess], need[org_sess])
    org_query = organic_queries(world, sess_user[org_sess], org_cat, rng)
    sess = np.concatenate([hs_sess, org_sess])
    query = np.concatenate([lists[hs_sess, hs_pos], org_query])
    hintq = np.concatenate([np.ones(len(hs_sess), bool), np.zeros(len(org_sess), bool)])
    order_key = np.concatenate([hs_pos, 100 + np.arange(len(org_sess))])
    order = np.lexsort((order_key, sess))
    sess, query, hintq = sess[order], query[order], hintq[order]
    rank = np.arange(len(sess)) - np.searchsorted(sess, sess)
    return {"sess": sess, "query": query, "hintq": hintq, "rank": rank}


def _events(world: World, sess_user, s: dict, start_us, rng) -> dict[str, np.ndarray]:
    """Searches, then for each its item clicks, each click possibly a cart and a purchase."""
    n_s = len(s["sess"])
    n_clicks = rng.poisson(world.spec["item_clicks_mean"], n_s)
    click_search = np.repeat(np.arange(n_s), n_clicks)
    users = sess_user[s["sess"][click_search]]
    click_item = clicked_items(world, users, s["query"][click_search], rng)
    click_rank = np.arange(len(click_search)) - np.searchsorted(click_search, click_search)
    cart = rng.random(len(click_search)) < world.cart_probability(users, click_item)
    purchase = cart & (rng.random(len(click_search)) < world.spec["purchase_rate"])

    def part(search_idx, etype, item, sub):
        return dict(search=search_idx, type=np.full(len(search_idx), etype, np.int8), item=item, sub=sub)

    parts = [
        part(np.arange(n_s), 0, np.full(n_s, -1), np.zeros(n_s, np.int64)),
        part(click_search, 1, click_item, 1 + 3 * click_rank),
        part(click_search[cart], 2, click_item[cart], 2 + 3 * click_rank[cart]),
        part(click_search[purchase], 3, click_item[purchase], 3 + 3 * click_rank[purchase]),
    ]
    ev = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    sess = s["sess"][ev["search"]]
    order = np.lexsort((ev["sub"], s["rank"][ev["search"]], sess))
    ev = {key: v[order] for key, v in ev.items()}
    sess = sess[order]
    gaps = rng.exponential(40e6, len(sess)).astype(np.int64) + 2_000_000
    cum = np.cumsum(gaps)
    first = np.searchsorted(sess, sess)  # index of the session's first event
    ts = start_us[sess] + cum - cum[first] + gaps[first]
    return {"sess": sess, "type": ev["type"], "item": ev["item"], "query": s["query"][ev["search"]],
            "hintq": s["hintq"][ev["search"]], "ts": ts}


def _update_legacy_state(state: LegacyState, s: dict, sess_user, n_queries: int) -> None:
    state.daily_counts.append(np.bincount(s["query"], minlength=n_queries))
    same = s["sess"][1:] == s["sess"][:-1]
    prev, nxt = s["query"][:-1][same], s["query"][1:][same]
    state.daily_pairs.append((prev * n_queries + nxt)[prev != nxt])
    codes, counts = np.unique(np.concatenate(list(state.daily_pairs)), return_counts=True)
    prev, nxt = codes // n_queries, codes % n_queries
    order = np.lexsort((-counts, prev))
    prev, nxt = prev[order], nxt[order]
    rank = np.arange(len(prev)) - np.searchsorted(prev, prev)
    keep = rank < COCLICK_SLOTS
    state.coclick_top.fill(-1)
    state.coclick_top[prev[keep], rank[keep]] = nxt[keep]
    # searches are ordered by session, sessions by (user, start): the last write per user wins
    users = sess_user[s["sess"]]
    last_pos = len(users) - 1 - np.unique(users[::-1], return_index=True)[1]
    state.last_query[users[last_pos]] = s["query"][last_pos]


# ---- arrow tables -----------------------------------------------------------------------

def _take(values: np.ndarray | list, idx: np.ndarray) -> pa.Array:
    """Strings by index, built in Arrow (fast), null where idx < 0."""
    idx = np.asarray(idx, dtype=np.int64)
    return pc.take(pa.array(values, pa.string()), pa.array(idx, mask=idx < 0))


def _ts(us: np.ndarray) -> pa.Array:
    return pa.array(np.asarray(us, dtype=np.int64), pa.int64()).cast(schemas.TIMESTAMP)


def _sessions_table(world, sess_user, session_ids, start_us, ev) -> pa.Table:
    n = len(sess_user)
    counts = np.zeros((n, 4), np.int64)
    np.add.at(counts, (ev["sess"], ev["type"]), 1)
    end = np.full(n, np.iinfo(np.int64).min)
    np.maximum.at(end, ev["sess"], ev["ts"])
    return pa.table({
        "session_id": session_ids, "user_id": _take(world.users.profile["user_id"], sess_user),
        "session_start": _ts(start_us), "session_end": _ts(end),
        "n_searches": counts[:, 0], "n_clicks": counts[:, 1], "n_carts": counts[:, 2],
        "n_purchases": counts[:, 3],
    }, schema=schemas.SCHEMAS["sessions"])


def _events_table(world, sess_user, session_ids, event_ids, ev) -> pa.Table:
    c = world.catalog
    item_cat = c.items["category_id"].to_numpy()
    qcat = world.query_category
    cat_ids = c.categories["category_id"].to_numpy()
    category = np.where(ev["item"] >= 0, -1, qcat[ev["query"]])
    category_ids = pc.if_else(pa.array(ev["item"] >= 0), _take(item_cat, np.maximum(ev["item"], 0)),
                              _take(cat_ids, np.maximum(category, 0)))
    return pa.table({
        "event_id": event_ids, "session_id": session_ids[ev["sess"]],
        "user_id": _take(world.users.profile["user_id"], sess_user[ev["sess"]]),
        "event_ts": _ts(ev["ts"]),
        "event_type": _take(list(schemas.EVENT_TYPES), ev["type"]),
        "query_id": _take(c.queries["query_id"], ev["query"]),
        "query": _take(c.queries["query"], ev["query"]),
        "category_id": category_ids,
        "item_id": _take(c.items["item_id"], ev["item"]),
        "search_source": _take(["organic", "hintq"], ev["hintq"].astype(np.int64)),
    }, schema=schemas.SCHEMAS["events"])


def _impressions_table(world, sess_user, session_ids, start_us, lists, clicked, explore) -> pa.Table:
    n, k = lists.shape
    rows, pos = np.nonzero(lists >= 0)
    q = lists[rows, pos]
    c = world.catalog
    return pa.table({
        "impression_id": session_ids[rows], "session_id": session_ids[rows],
        "user_id": _take(world.users.profile["user_id"], sess_user[rows]),
        "impression_ts": _ts(start_us[rows]), "position": pos.astype(np.int64),
        "query_id": _take(c.queries["query_id"], q), "query": _take(c.queries["query"], q),
        "category_id": _take(c.categories["category_id"], world.query_category[q]),
        "clicked": clicked[rows, pos], "policy": _take(["legacy", "legacy_explore"], explore[rows].astype(np.int64)),
    }, schema=schemas.SCHEMAS["hintq_impressions"])
