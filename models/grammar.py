"""Constrained decoding of a Direct list: the completion ` q1 | q2 | ... | qK<eos>` may only spell
queries of a given vocabulary, each once, exactly K of them. Every list the model writes is then
valid and full (no junk, no repeats, no shortfall) while the model still chooses which queries
and in what order.

The grammar is a prefix tree over the token ids of each query as it is tokenised inside a list
(with its leading space: byte-level BPE never merges across the space, so a query spells the same
ids wherever it stands). A query that the tree cannot spell is never written.

With each query's group (its category), one list may be scoped to some groups: the tree then
only opens the branches that still hold a query of those groups (a bit mask per node), so the
model chooses among the queries of, say, the categories the user engages with.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

ALL = -1  # a scope mask with every bit set (Python ints are unbounded)
SEPARATOR_TEXT = " |"  # the token that ends a query inside a list (generator.SEPARATOR without its space)


def separator_id(tokenizer) -> int | None:
    """The one token that separates queries in a list, or None if this tokenizer splits it."""
    ids = tokenizer.encode(SEPARATOR_TEXT, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


class QueryGrammar:
    """A token-level prefix tree of the queries a list may hold."""

    def __init__(self, tokenizer, queries: Sequence[str], groups: Sequence[str] | None = None):
        sep = separator_id(tokenizer)
        if sep is None:
            raise ValueError(f"the list separator {SEPARATOR_TEXT!r} is not one token of this tokenizer")
        self.separator, self.eos = sep, tokenizer.eos_token_id
        self.children: list[dict[int, int]] = [{}]
        self.terminal: list[bool] = [False]
        self.parent: list[int] = [0]
        group_of = dict(zip(queries, groups)) if groups is not None else {}
        self.group_bit = {g: 1 << i for i, g in enumerate(sorted(set(group_of.values())))}
        self.reach: list[int] = [0]  # per node: the groups with a query in its subtree (bits)
        self.bit: list[int] = [0]  # per terminal node: its query's group (all bits when ungrouped)
        for q in dict.fromkeys(queries):
            node = 0
            for token in tokenizer.encode(" " + q, add_special_tokens=False):
                nxt = self.children[node].get(token)
                if nxt is None:
                    nxt = len(self.children)
                    self.children[node][token] = nxt
                    self.children.append({})
                    self.terminal.append(False)
                    self.parent.append(node)
                    self.reach.append(0)
                    self.bit.append(0)
                node = nxt
            self.terminal[node] = True
            bit = self.group_bit[group_of[q]] if q in group_of else ALL
            self.bit[node] |= bit
            while True:  # the query's group is reachable from every node on its path
                self.reach[node] |= bit
                if node == 0:
                    break
                node = self.parent[node]
        self.child_ids = [list(c) for c in self.children]  # allowed next tokens per node, precomputed
        # the root's children by group: a scoped list starts each query from the few that reach
        # its groups instead of testing all of them (~600 on the demo vocabulary, 90 us a step)
        self.root_by_group: dict[int, list[tuple[int, int]]] = {}
        for token, child in self.children[0].items():
            for bit in self.group_bit.values():
                if self.reach[child] & bit:
                    self.root_by_group.setdefault(bit, []).append((token, child))

    def __len__(self) -> int:
        return sum(self.terminal)

    def start(self, quota: Mapping[str, int] | None = None, free_from: int | None = None) -> ListState:
        """A list's state at its start, scoped to the groups of `quota`, each taking at most its
        number of queries until every one is full; then the rest of the list comes from any of
        them. From query `free_from` (0-based) on, every group is open. None (or no known
        group): the whole vocabulary, uncapped."""
        caps = {self.group_bit[g]: n for g, n in (quota or {}).items() if g in self.group_bit}
        if not caps:
            return ListState()
        scope = sum(caps)  # one distinct bit per group
        return ListState(scope=scope, caps=caps, wide=scope, free_from=free_from)


@dataclass
class ListState:
    """Where one sequence is in its list: the tree node, the queries written, how many, the
    groups it may write (`scope`, a bit mask) and the subtrees that hold no query of those groups
    left to write (never entered again: no dead ends, no repeats)."""

    node: int = 0
    written: set[int] = field(default_factory=set)  # terminal nodes of the queries written
    exhausted: set[int] = field(default_factory=set)
    count: int = 0
    done: bool = False
    scope: int = ALL
    caps: dict[int, int] | None = None  # group bit -> queries it may still take
    wide: int = ALL  # the scope once every capped group is full
    free_from: int | None = None  # from this many queries written on, every group is open

    def open(self, g: QueryGrammar, node: int) -> bool:
        return bool(g.reach[node] & self.scope) and node not in self.exhausted

    def writable(self, g: QueryGrammar, node: int) -> bool:
        return g.terminal[node] and node not in self.written and bool(g.bit[node] & self.scope)

    def allowed(self, g: QueryGrammar, k: int) -> list[int]:
        if self.done or (self.node == 0 and self.count >= k):
            return [g.eos]
        if self.node == 0 and self.scope != ALL:
            out = list(dict.fromkeys(t for t, c in self.root_children(g) if c not in self.exhausted))
        elif self.exhausted or self.scope != ALL:
            out = [t for t, c in g.children[self.node].items() if self.open(g, c)]
        else:
            out = list(g.child_ids[self.node])
        if self.writable(g, self.node):
            out.append(g.eos if self.count + 1 >= k else g.separator)
        return out or [g.eos]  # every query in scope written: the list ends

    def root_children(self, g: QueryGrammar):
        """(token, child) of the root that reach a group of the scope."""
        mask = self.scope
        while mask:
            bit = mask & -mask
            yield from g.root_by_group.get(bit, ())
            mask ^= bit

    def advance(self, g: QueryGrammar, token: int) -> None:
        if token == g.eos:
            self.done = True
        elif token == g.separator:
            self.write(g, self.node)
            self.count, self.node = self.count + 1, 0
            if self.free_from is not None and self.count >= self.free_from and self.scope != ALL:
                self.scope, self.caps = ALL, None
                self.reclose(g)
        else:
            self.node = g.children[self.node].get(token, 0)

    def write(self, g: QueryGrammar, node: int) -> None:
        self.written.add(node)
        self.close_written(g, node)
        if self.caps and self.take(g.bit[node]):
            self.reclose(g)

    def reclose(self, g: QueryGrammar) -> None:
        """After the scope changed: a subtree left open for a group that is now full may hold
        only written queries of the others (a dead end), and one closed under a narrower scope
        may hold queries again once it widens; closing again from the written ones is exact."""
        self.exhausted.clear()
        for n in self.written:
            self.close_written(g, n)

    def take(self, bit: int) -> bool:
        """One query of group `bit` written: a full group leaves the scope; with every group full
        the list goes on from all of them, uncapped (True: the scope changed)."""
        if bit not in self.caps:
            return False
        self.caps[bit] -= 1
        if self.caps[bit] > 0:
            return False
        self.scope &= ~bit
        if not self.scope:
            self.scope, self.caps = self.wide, None
        return True

    def close_written(self, g: QueryGrammar, node: int) -> None:
        """Close the subtrees above a written query that hold nothing left to write."""
        while node != 0 and not self.writable(g, node):
            if any(self.open(g, c) for c in g.children[node].values()):
                break
            self.exhausted.add(node)
            node = g.parent[node]


def mask_logits(logits, states: Sequence[ListState], grammar: QueryGrammar, k: int):
    """Logits with every token the grammar does not allow at -inf, row by row."""
    import torch

    masked = torch.full_like(logits, float("-inf"))
    for row, state in enumerate(states):
        ids = state.allowed(grammar, k)
        masked[row, ids] = logits[row, ids]
    return masked
