import json

import pytest

from models.generator import format_completion
from pipelines.rewards import RewardContext, make_rewards, total_reward

CATS = {
    "red dress": "dresses",
    "maxi dress": "dresses",
    "linen dress": "dresses",
    "tent": "camping",
    "sleeping bag": "camping",
    "mug": "kitchen",
    "teapot": "kitchen",
    "lamp": "lighting",
    "desk lamp": "lighting",
    "sofa": "living",
}
CTX = json.dumps(
    {
        "top_categories_30d": ["dresses", "camping", "kitchen"],
        "top_category_weights_30d": [0.6, 0.3, 0.1],
        "top_categories_7d": ["dresses"],
        "top_category_weights_7d": [1.0],
        "recent_queries": ["red dress", "tent"],
        "recent_click_categories": ["dresses"],
    }
)


@pytest.fixture
def rewards():
    rc = RewardContext(category_of=CATS.get, is_valid=lambda q: q in CATS, k=4)
    return make_rewards(rc)


def score(rewards, name, lists):
    comps = [format_completion(x) if isinstance(x, list) else x for x in lists]
    return rewards[name](["p"] * len(comps), comps, context_json=[CTX] * len(comps))


def test_duplicates_score_lower_on_format_and_diversity(rewards):
    distinct = ["maxi dress", "sleeping bag", "teapot", "desk lamp"]
    dupes = ["maxi dress", "maxi dress", "maxi dress", "maxi dress"]
    for name in ("format", "diversity"):
        good, bad = score(rewards, name, [distinct, dupes])
        assert good > bad, name
    assert score(rewards, "format", [distinct])[0] == 1.0
    assert score(rewards, "diversity", [distinct])[0] == 1.0


def test_lists_in_the_users_interests_score_higher_on_relevance(rewards):
    inside, outside = score(
        rewards,
        "relevance",
        [["maxi dress", "linen dress", "sleeping bag", "teapot"], ["lamp", "desk lamp", "sofa", "lamp"]],
    )
    assert inside > 2 * outside


def test_relevance_is_position_discounted(rewards):
    first, last = score(
        rewards, "relevance", [["maxi dress", "lamp", "sofa", "desk lamp"], ["lamp", "sofa", "desk lamp", "maxi dress"]]
    )
    assert first > last > 0


def test_coverage_and_novelty(rewards):
    cov = score(rewards, "coverage", [["maxi dress", "tent", "mug", "lamp"], ["maxi dress", "linen dress"]])
    assert cov == pytest.approx([1.0, 1 / 3])
    nov = score(rewards, "novelty", [["red dress", "tent", "mug", "lamp"]])
    assert nov == [0.5]  # red dress and tent were searched recently


def test_popularity_counts_searched_queries_in_the_users_interests_only():
    popular = {"maxi dress": 1.0, "linen dress": 0.9, "tent": 0.8, "mug": 0.1, "lamp": 1.0, "desk lamp": 1.0}
    rewards = make_rewards(
        RewardContext(category_of=CATS.get, is_valid=lambda q: q in CATS, k=4, query_popularity=popular)
    )
    searched, rare, elsewhere = score(
        rewards,
        "popularity",
        [
            ["maxi dress", "linen dress", "tent", "teapot"],
            ["red dress", "sleeping bag", "mug", "teapot"],
            ["lamp", "desk lamp", "sofa", "lamp"],
        ],
    )
    assert searched > 10 * rare > 0  # only mug (0.1) counts in the rare list
    assert elsewhere == 0.0  # popular, but nowhere near the user's interests


def test_garbage_scores_zero_everywhere_but_does_not_crash(rewards):
    for name in ("relevance", "diversity", "coverage", "novelty", "format", "popularity", "ctr"):  # no scorer, no stats
        assert score(rewards, name, ["<|endoftext|>", " ||| \x00 |"]) == [0.0, 0.0], name


def test_invalid_queries_cost_format(rewards):
    clean, junky = score(rewards, "format", [["maxi dress", "tent"], ["maxi dress", "tent", "zzz", "qqq"]])
    assert clean > junky


def test_total_reward_is_the_weighted_sum(rewards):
    comps = [format_completion(["maxi dress", "tent", "mug", "lamp"])]
    total, parts = total_reward(rewards, {"relevance": 1.0, "format": 0.5}, ["p"], comps, context_json=[CTX])
    assert set(parts) == {"relevance", "format"}
    assert total[0] == pytest.approx(parts["relevance"][0] + 0.5 * parts["format"][0])
