"""The legacy HintQ system the simulated shop runs: co-click successors of the user's last query,
then a draw from the popular queries of the last days, learnt from previous days' logs only; and
its small randomised exploration bucket. What it shows is logged as the impressions."""

from __future__ import annotations

import collections
from dataclasses import dataclass

import numpy as np

from world.shop import World

COCLICK_SLOTS, POPULAR_POOL, POPULAR_DAYS, COCLICK_DAYS = 4, 60, 7, 14


@dataclass
class LegacyState:
    """What the legacy HintQ policy has learnt from previous days' searches."""

    last_query: np.ndarray  # per user, -1 if none
    daily_counts: collections.deque
    daily_pairs: collections.deque
    coclick_top: np.ndarray  # [n_queries, COCLICK_SLOTS], -1 padded

    @classmethod
    def empty(cls, n_users: int, n_queries: int) -> LegacyState:
        return cls(
            np.full(n_users, -1),
            collections.deque(maxlen=POPULAR_DAYS),
            collections.deque(maxlen=COCLICK_DAYS),
            np.full((n_queries, COCLICK_SLOTS), -1),
        )


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
        mixed = first_distinct(np.concatenate([randoms, lists[explore][:, : k - slots], lists[explore]], axis=1), k)
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


def update_legacy_state(state: LegacyState, s: dict, sess_user, n_queries: int) -> None:
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
