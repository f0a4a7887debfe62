"""Constrained decoding: a list may only spell vocabulary queries, each once, exactly k of them."""

import random

import pytest

from models.base_lm import EOS, train_tokenizer
from models.generator import parse_list, vote
from models.grammar import ListState, QueryGrammar

VOCABULARY = [
    "dress",
    "red dress",
    "red dress shoes",
    "black dress",
    "tent",
    "camping tent",
    "mug",
    "travel mug",
    "lamp",
    "desk lamp",
]


@pytest.fixture(scope="module")
def tokenizer():
    corpus = [" | ".join(VOCABULARY)] * 20 + ["a few other words about shopping online"] * 5
    return train_tokenizer(corpus, vocab_size=300)


def walk(grammar: QueryGrammar, tokenizer, k: int, rng: random.Random, max_steps: int = 200) -> str:
    """A random path through what the grammar allows: the worst a model could do."""
    state, ids = ListState(), []
    for _ in range(max_steps):
        allowed = state.allowed(grammar, k)
        assert allowed, "no token allowed: a dead end"
        token = rng.choice(allowed)
        ids.append(token)
        state.advance(grammar, token)
        if state.done:
            break
    assert state.done, "the list never ended"
    return tokenizer.decode(ids)


@pytest.mark.parametrize("k", [1, 4, 8])
def test_every_path_spells_exactly_k_distinct_vocabulary_queries(tokenizer, k):
    grammar = QueryGrammar(tokenizer, VOCABULARY)
    assert len(grammar) == len(VOCABULARY)
    rng = random.Random(0)
    for _ in range(200):
        text = walk(grammar, tokenizer, k, rng)
        assert text.endswith(EOS)
        queries = parse_list(text, 99)
        assert len(queries) == k and set(queries) <= set(VOCABULARY), text


def test_a_vocabulary_smaller_than_k_ends_the_list_when_it_is_used_up(tokenizer):
    grammar = QueryGrammar(tokenizer, ["red dress", "red dress shoes", "tent"])
    rng = random.Random(1)
    for _ in range(50):
        queries = parse_list(walk(grammar, tokenizer, 8, rng), 99)
        assert sorted(queries) == ["red dress", "red dress shoes", "tent"]


def test_a_query_that_is_a_prefix_of_another_can_still_be_written_after_it(tokenizer):
    """'red dress' written: the path through it stays open for 'red dress shoes', and the reverse."""
    grammar = QueryGrammar(tokenizer, VOCABULARY)
    state = ListState()
    sep = grammar.separator
    for q in ("red dress", "red dress shoes"):
        for token in tokenizer.encode(" " + q, add_special_tokens=False):
            assert token in state.allowed(grammar, 8)
            state.advance(grammar, token)
        assert sep in state.allowed(grammar, 8)
        state.advance(grammar, sep)
    # both written: "red" leads nowhere new, so it is no longer offered
    red = tokenizer.encode(" red", add_special_tokens=False)[0]
    assert red not in state.allowed(grammar, 8)


def test_a_separator_that_is_not_one_token_is_refused():
    tok = train_tokenizer(["no bars here at all"] * 5, vocab_size=260)
    with pytest.raises(ValueError, match="separator"):
        QueryGrammar(tok, ["a"])


def test_vote_ranks_by_rank_discounted_agreement():
    assert vote([["a", "b", "c"], ["b", "a"], ["b", "d"]]) == ["b", "a", "d", "c"]
    assert vote([]) == []
