"""Constrained decoding of a Direct list: the completion ` q1 | q2 | ... | qK<eos>` may only spell
queries of a given vocabulary, each once, exactly K of them. Every list the model writes is then
valid and full (no junk, no repeats, no shortfall) while the model still chooses which queries
and in what order.

The grammar is a prefix tree over the token ids of each query as it is tokenised inside a list
(with its leading space: byte-level BPE never merges across the space, so a query spells the same
ids wherever it stands). A query that the tree cannot spell is never written.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

SEPARATOR_TEXT = " |"  # the token that ends a query inside a list (generator.SEPARATOR without its space)


def separator_id(tokenizer) -> int | None:
    """The one token that separates queries in a list, or None if this tokenizer splits it."""
    ids = tokenizer.encode(SEPARATOR_TEXT, add_special_tokens=False)
    return ids[0] if len(ids) == 1 else None


class QueryGrammar:
    """A token-level prefix tree of the queries a list may hold."""

    def __init__(self, tokenizer, queries: Sequence[str]):
        sep = separator_id(tokenizer)
        if sep is None:
            raise ValueError(f"the list separator {SEPARATOR_TEXT!r} is not one token of this tokenizer")
        self.separator, self.eos = sep, tokenizer.eos_token_id
        self.children: list[dict[int, int]] = [{}]
        self.terminal: list[bool] = [False]
        self.parent: list[int] = [0]
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
                node = nxt
            self.terminal[node] = True
        self.child_ids = [list(c) for c in self.children]  # allowed next tokens per node, precomputed

    def __len__(self) -> int:
        return sum(self.terminal)


@dataclass
class ListState:
    """Where one sequence is in its list: the tree node, the queries written, how many, and the
    subtrees that hold no query left to write (never entered again: no dead ends, no repeats)."""

    node: int = 0
    written: set[int] = field(default_factory=set)  # terminal nodes of the queries written
    exhausted: set[int] = field(default_factory=set)
    count: int = 0
    done: bool = False

    def allowed(self, g: QueryGrammar, k: int) -> list[int]:
        if self.done or (self.node == 0 and self.count >= k):
            return [g.eos]
        children = g.children[self.node]
        if self.exhausted:
            out = [t for t, c in children.items() if c not in self.exhausted]
        else:
            out = list(g.child_ids[self.node])
        if g.terminal[self.node] and self.node not in self.written:
            out.append(g.eos if self.count + 1 >= k else g.separator)
        return out or [g.eos]  # the whole vocabulary written: the list ends

    def advance(self, g: QueryGrammar, token: int) -> None:
        if token == g.eos:
            self.done = True
        elif token == g.separator:
            self.write(g, self.node)
            self.count, self.node = self.count + 1, 0
        else:
            self.node = g.children[self.node].get(token, 0)

    def write(self, g: QueryGrammar, node: int) -> None:
        self.written.add(node)
        while node != 0 and (not g.terminal[node] or node in self.written):
            if any(c not in self.exhausted for c in g.children[node].values()):
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
