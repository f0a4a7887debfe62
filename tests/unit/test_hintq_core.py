"""The serving-agnostic pieces of the online path: request validation, merge, output filter, MMR."""

import numpy as np
import pytest

from serving.candidates import merge_candidates, output_filter
from serving.contract import MAX_K, RequestError, parse_request
from serving.ranking import interest_rerank, mmr, with_popularity_prior


def test_a_valid_request_parses_with_defaults():
    r = parse_request({"user_id": "u1"})
    assert (r.user_id, r.k, dict(r.context)) == ("u1", 8, {})
    r = parse_request({"user_id": "u1", "k": 3, "context": {"hour": 7, "session_queries": ["tent"]}})
    assert r.k == 3 and r.context == {"hour": 7, "session_queries": ["tent"]}


def test_session_queries_pass_the_one_normaliser():
    context = {"session_queries": ["Pet  Shampoo", "ｐｅｔ　ｓｈａｍｐｏｏ", " TENT ", "   "]}
    assert parse_request({"user_id": "u", "context": context}).context == {
        "session_queries": ["pet shampoo", "pet shampoo", "tent"]
    }


def test_format_characters_are_text_in_an_id():
    assert parse_request({"user_id": "ユーザー🙂\u202eevil"}).user_id == "ユーザー🙂\u202eevil"


@pytest.mark.parametrize(
    "payload, fragment",
    [
        ([1, 2], "JSON object"),
        ({}, "user_id"),
        ({"user_id": ""}, "user_id"),
        ({"user_id": 42}, "user_id"),
        ({"user_id": "x" * 500}, "1..128"),
        ({"user_id": "a\x00b"}, "printable"),
        ({"user_id": "u", "k": 0}, "k:"),
        ({"user_id": "u", "k": MAX_K + 1}, "k:"),
        ({"user_id": "u", "k": True}, "k:"),
        ({"user_id": "u", "k": "8"}, "k:"),
        ({"user_id": "u", "k": 8.0}, "k:"),
        ({"user_id": "u", "context": {"hour": "3"}}, "context.hour"),
        ({"user_id": "a\x7fb"}, "printable"),
        ({"user_id": "a\x85b"}, "printable"),
        ({"user_id": "a\u2028b"}, "printable"),
        ({"user_id": "u", "context": {"session_queries": ["tent\x00"]}}, "context.session_queries[0]"),
        ({"user_id": "u", "context": {"session_queries": ["\x1b[31mtent"]}}, "context.session_queries[0]"),
        ({"user_id": "u", "extra": 1}, "unknown field 'extra'"),
        ({"user_id": "u", "context": [1]}, "context"),
        ({"user_id": "u", "context": {"hour": 24}}, "context.hour"),
        ({"user_id": "u", "context": {"nope": 1}}, "context: unknown field"),
        ({"user_id": "u", "context": {"session_queries": ["x" * 101]}}, "context.session_queries"),
        ({"user_id": "u", "context": {"categories": ["c"] * 21}}, "context.categories"),
    ],
)
def test_bad_requests_name_the_field(payload, fragment):
    with pytest.raises(RequestError) as e:
        parse_request(payload)
    assert fragment in str(e.value) and "HintQRequestBody" not in str(e.value)


def test_merge_dedupes_drops_searched_and_blocklisted_and_keeps_the_first_source():
    allow = output_filter(("counterfeit",))
    lists = {
        "direct": ["Red Dress", "tent", "counterfeit bag", "red dress"],
        "think": ["tent", "sleeping bag", "bad\x07query"],
        "fallback": ["sleeping bag", "lamp"],
    }
    cands, sources = merge_candidates(lists, searched={"tent"}, allow=allow, per_source=10)
    assert cands == ["red dress", "sleeping bag", "lamp"]
    assert sources == ["direct", "think", "fallback"]


def test_merge_caps_each_source():
    cands, sources = merge_candidates(
        {"direct": ["aa", "bb", "cc"], "fallback": ["dd"]}, set(), output_filter(()), per_source=2
    )
    assert cands == ["aa", "bb", "dd"] and sources == ["direct", "direct", "fallback"]


def test_mmr_with_lambda_one_ranks_by_score():
    scores = np.array([0.1, 0.5, 0.3])
    assert mmr(scores, ["a", "a", "a"], {}, 3, 1.0) == [1, 2, 0]


def test_mmr_spreads_categories_when_scores_are_close():
    scores = np.array([0.50, 0.49, 0.48, 0.30])
    cats = ["c1", "c1", "c1", "c2"]
    order = mmr(scores, cats, {"c1": "d1", "c2": "d2"}, 2, 0.5)
    assert order == [0, 3]  # the second slot goes to the other category
    assert mmr(np.array([]), [], {}, 5, 0.5) == []
    assert len(mmr(scores, cats, {}, 10, 0.5)) == 4


def test_interest_rerank_gives_each_top_interest_a_slot_and_caps_a_category():
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5, 0.2, 0.1])
    cats = ["a", "a", "a", "a", "a", "b", "c"]
    order = interest_rerank(scores, cats, [("a", 0.8), ("b", 0.1), ("c", 0.1)], k=4, max_share=0.5)
    assert sorted(cats[i] for i in order) == ["a", "a", "b", "c"]
    assert list(scores[order]) == sorted(scores[order], reverse=True)  # best first
    order = interest_rerank(scores, cats, [], k=4, max_share=0.5)
    assert [cats[i] for i in order].count("a") == 2  # the cap holds without interests too


def test_the_popularity_prior_lifts_searched_queries_and_leaves_the_rest_to_the_ranker():
    ctr = [0.10, 0.10, 0.12, 0.05]
    rows = [{"q_n_search_30d": 0}, {"q_n_search_30d": 200}, {"q_n_search_30d": 3}, {}]
    ranked = with_popularity_prior(ctr, rows, weight=0.2)
    assert ranked[1] > ranked[0]  # same CTR: the searched query first
    assert ranked[3] == pytest.approx(0.05) and ranked[0] == pytest.approx(0.10)  # no searches, no bonus
    # the bonus is 0.2 * log1p(200) on the logit
    logit = lambda p: np.log(p / (1 - p))  # noqa: E731
    assert logit(ranked[1]) - logit(0.10) == pytest.approx(0.2 * np.log1p(200))
    assert np.allclose(with_popularity_prior(ctr, rows, weight=0.0), ctr)  # weight 0: the ranker alone


def test_the_popularity_prior_ignores_garbage_counts():
    rows = [
        {"q_n_search_30d": None},
        {"q_n_search_30d": float("nan")},
        {"q_n_search_30d": -5},
        {"q_n_search_30d": "many"},
        {"q_n_search_30d": True},
    ]
    assert np.allclose(with_popularity_prior([0.2] * 5, rows, weight=0.5), 0.2)
    assert len(with_popularity_prior([], [], weight=0.5)) == 0
