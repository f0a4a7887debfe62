"""One simulated day of the shop: who visits and when, each visit's need and second intent, the
suggestions taken (the cascade), the queries typed, the items clicked, carted and bought. The
shoppers' draws; `pipelines/simulate.py` writes what they produce as the logs."""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from world.legacy import LegacyState, exploration_bucket, legacy_lists, update_legacy_state
from world.log_tables import events_table, impressions_table, sessions_table
from world.shop import DAY_US, NO_CATEGORY, Texts, World

HOUR_US = 3_600_000_000
SESSION_GAP_US = 40 * 60_000_000  # a user's sessions start at least 40 minutes apart
# share of sessions starting in each hour (UTC is the shop's local time here)
DIURNAL = np.array([0, 0, 0, 0, 0, 0, 1, 2, 4, 5, 5, 5, 7, 6, 5, 5, 5, 6, 7, 8, 10, 10, 8, 4], float)


def simulate_day(
    world: World, day: int, rng: np.random.Generator, state: LegacyState, k: int, ids: dict
) -> dict[str, pa.Table]:
    sess_user, start_us = _sessions_of_day(world, day, rng)
    n = len(sess_user)
    t_days = world.days_since_start(start_us)
    need, second = _session_intents(world, sess_user, t_days, rng)
    lists, explore = exploration_bucket(world, legacy_lists(world, state, sess_user, rng, k), rng)
    clicked = draw_suggestion_clicks(world, rng, sess_user, t_days, lists, need)
    searches = _searches(world, sess_user, lists, clicked, need, second, rng)
    events = _events(world, sess_user, searches, start_us, rng)
    update_legacy_state(state, searches, sess_user, world.catalog.n_queries)

    session_ids = ids["session"] + np.arange(n, dtype=np.int64)
    event_ids = ids["event"] + np.arange(len(events["sess"]), dtype=np.int64)
    if day >= 0:
        ids["session"] += n
        ids["event"] += len(event_ids)
    return {
        "sessions": sessions_table(world, sess_user, session_ids, start_us, events),
        "events": events_table(world, sess_user, session_ids, event_ids, events),
        "hintq_impressions": impressions_table(world, sess_user, session_ids, start_us, lists, clicked, explore),
    }


def _sessions_of_day(world: World, day: int, rng) -> tuple[np.ndarray, np.ndarray]:
    u = world.users
    active = u.first_day <= day
    weekday = (world.params.start_us // DAY_US + day + 3) % 7  # 0 = Monday (1970-01-01 was a Thursday)
    rate = (
        u.activity * (1.25 if weekday >= 5 else 1.0) * np.where(u.first_day >= 0, 0.35, 1.0)
    )  # new users are tentative
    n_sess = rng.poisson(rate) * active
    first_visit = (u.first_day == day) & (day >= 0)
    n_sess[first_visit] = np.maximum(n_sess[first_visit], 1)
    sess_user = np.repeat(np.arange(len(n_sess)), n_sess)
    hour = rng.choice(24, size=len(sess_user), p=DIURNAL / DIURNAL.sum())
    start = world.params.start_us + day * DAY_US + hour * HOUR_US + rng.integers(0, HOUR_US, len(sess_user))
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
    # each group's offset only has to clear one group's span; sized by the longest group, not by
    # all rows (that overflowed int64 at a million users a day)
    shift = gid * (int(start.max() - base) + gap * (int(rank.max()) + 1))
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
    boost = np.where(world.shares_persona(sess_user[:, None], need[:, None], cats), world.spec["complement_boost"], 1.0)
    second_probs = probs * boost
    second_probs[rows, slot1] = 0.0
    possible = second_probs.sum(axis=1) > 0
    slot2 = _draw_rows(np.where(possible[:, None], second_probs, 1.0), rng)
    two = possible & (rng.random(len(sess_user)) < world.spec["second_intent_share"])
    return need, np.where(two, cats[rows, slot2], -1)


CHUNK = 20_000  # rows per vectorised choice (bounds memory: rows x candidates x tokens)


def _choose(logits_of, n_candidates: np.ndarray, rng) -> np.ndarray:
    """A softmax draw per row among its first `n_candidates[row]` candidates, whose logits
    `logits_of(rows, width, valid)` returns as [rows, width] (one uniform per row, inverse CDF).
    Rows go in order of candidate count, so each chunk is only as wide as its widest row (most
    categories have a few dozen queries, some a hundred)."""
    out = np.empty(len(n_candidates), dtype=np.int64)
    order = np.argsort(n_candidates, kind="stable")
    for lo in range(0, len(order), CHUNK):
        rows = order[lo : lo + CHUNK]
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
        return (
            world.spec["item_taste_weight"] * world.taste_match(u, world.item_tokens[cand])
            - world.price_lean(u).astype(np.float32) * tier[cand]
        )

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
    cart = rng.random(len(click_search)) < cart_probability(world, users, click_item)
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
    return {
        "sess": sess,
        "type": ev["type"],
        "item": ev["item"],
        "query": s["query"][ev["search"]],
        "hintq": s["hintq"][ev["search"]],
        "ts": ts,
    }


def cart_probability(world: World, user_idx: np.ndarray, item_idx: np.ndarray) -> np.ndarray:
    """P(add to cart | item clicked): lower the further the item's price tier is from the
    user's comfort tier (5 for the price-insensitive .. 1 for the most sensitive)."""
    rate = world.spec["cart_rate"]
    if not world.flags.get("attribute_tastes", True):
        return np.full(np.shape(item_idx), rate)
    comfort = 5 - 4 * world.users.profile["price_sensitivity"].to_numpy()[user_idx]
    gap = np.abs(world.item_tier[item_idx] - comfort)
    return rate * 2 / (1 + np.exp(world.spec["cart_price_weight"] * gap))


def draw_suggestion_clicks(world: World, rng, user_idx, t_days, lists: np.ndarray, need: np.ndarray) -> np.ndarray:
    """[n, k] clicked flags of the lists shown at visits with the given needs."""
    n, k = lists.shape
    texts = world.vocabulary_texts()
    q = np.maximum(lists, 0)
    rows = Texts(lists, np.where(lists >= 0, texts.category[q], NO_CATEGORY), texts.tokens[q], texts.novelty[q])
    take = world.attractiveness(
        np.asarray(user_idx)[:, None], rows, np.asarray(t_days)[:, None], np.asarray(need)[:, None]
    ) * (lists >= 0)
    hit = rng.random((n, k)) < take * world.examination(k)
    if not world.flags.get("session_need", True):
        return hit
    go_on = rng.random((n, k)) < world.spec["click_continue"]
    scanning = np.ones(n, bool)
    clicked = np.zeros((n, k), bool)
    for j in range(k):
        clicked[:, j] = scanning & hit[:, j]
        scanning &= ~clicked[:, j] | go_on[:, j]
    return clicked
