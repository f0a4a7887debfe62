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


def walk(grammar: QueryGrammar, tokenizer, k: int, rng: random.Random, state: ListState | None = None) -> str:
    """A random path through what the grammar allows (from `state`): the worst a model could do."""
    state, ids, max_steps = state or ListState(), [], 200
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


GROUPS = {
    "dress": "clothes",
    "red dress": "clothes",
    "red dress shoes": "shoes",
    "black dress": "clothes",
    "tent": "outdoor",
    "camping tent": "outdoor",
    "mug": "kitchen",
    "travel mug": "kitchen",
    "lamp": "home",
    "desk lamp": "home",
}


def scoped_walk(grammar, tokenizer, k, quota, rng) -> list[str]:
    return parse_list(walk(grammar, tokenizer, k, rng, grammar.start(quota)), 99)


@pytest.mark.parametrize("groups", [["shoes"], ["clothes"], ["clothes", "kitchen"], ["outdoor", "shoes"]])
def test_a_scoped_list_writes_only_queries_of_its_groups_and_never_dead_ends(tokenizer, groups):
    """'red dress' (clothes) is a prefix of 'red dress shoes' (shoes): a list scoped to shoes
    passes through it without writing it, and one scoped to clothes ends after it."""
    grammar = QueryGrammar(tokenizer, list(GROUPS), [GROUPS[q] for q in GROUPS])
    in_scope = {q for q, g in GROUPS.items() if g in groups}
    rng = random.Random(2)
    for _ in range(100):
        queries = scoped_walk(grammar, tokenizer, 8, dict.fromkeys(groups, 8), rng)
        assert set(queries) == in_scope and len(queries) == len(in_scope)


def test_an_unknown_or_missing_scope_leaves_the_whole_vocabulary_open(tokenizer):
    grammar = QueryGrammar(tokenizer, list(GROUPS), [GROUPS[q] for q in GROUPS])
    rng = random.Random(3)
    for quota in (None, {}, {"no such category": 3}):
        assert set(scoped_walk(grammar, tokenizer, len(GROUPS), quota, rng)) == set(GROUPS)


def test_a_quota_caps_each_group_until_all_are_full_then_the_list_goes_on_from_all_of_them(tokenizer):
    grammar = QueryGrammar(tokenizer, list(GROUPS), [GROUPS[q] for q in GROUPS])
    quota = {"clothes": 2, "home": 1, "shoes": 1}
    rng = random.Random(4)
    for _ in range(100):
        queries = scoped_walk(grammar, tokenizer, 5, quota, rng)
        groups = [GROUPS[q] for q in queries]
        assert len(queries) == 5 and set(groups) <= set(quota)
        # the first four fill the caps exactly; the fifth comes from any quota group with a query left
        assert sorted(groups[:4]) == ["clothes", "clothes", "home", "shoes"]
        assert groups[4] in ("clothes", "home")


def test_a_group_that_fills_up_leaves_no_dead_end_behind(tokenizer):
    """'red dress' (clothes) written while 'red dress shoes' (shoes) kept its path open; once
    shoes is full through another query, the path through 'red' leads nowhere and must close."""
    groups = {"red dress": "clothes", "red dress shoes": "shoes", "tent": "shoes", "dress": "clothes"}
    grammar = QueryGrammar(tokenizer, list(groups), list(groups.values()))
    state = grammar.start({"clothes": 2, "shoes": 1})
    for q in ("red dress", "tent"):
        for token in tokenizer.encode(" " + q, add_special_tokens=False):
            state.advance(grammar, token)
        state.advance(grammar, grammar.separator)
    red = tokenizer.encode(" red", add_special_tokens=False)[0]
    assert red not in state.allowed(grammar, 8)
    # then "dress" fills clothes; with every group full the rest comes uncapped from both
    assert scoped_walk_from(state, grammar, tokenizer, 8) == ["dress", "red dress shoes"]


def scoped_walk_from(state, grammar, tokenizer, k) -> list[str]:
    ids = []
    while not state.done:
        token = state.allowed(grammar, k)[0]
        ids.append(token)
        state.advance(grammar, token)
    return parse_list(tokenizer.decode(ids), 99)


def test_a_separator_that_is_not_one_token_is_refused():
    tok = train_tokenizer(["no bars here at all"] * 5, vocab_size=260)
    with pytest.raises(ValueError, match="separator"):
        QueryGrammar(tok, ["a"])


def test_vote_ranks_by_rank_discounted_agreement():
    assert vote([["a", "b", "c"], ["b", "a"], ["b", "d"]]) == ["b", "a", "d", "c"]
    assert vote([]) == []
