import math

import numpy as np
import pytest

from core import metrics as M


def test_hit_rate_mrr_ndcg_by_hand():
    ranked = ["a", "b", "c", "d"]
    assert M.hit_rate(ranked, {"c"}, 8) == 1.0 and M.hit_rate(ranked, {"z"}, 8) == 0.0
    assert M.mrr(ranked, {"c", "d"}, 8) == pytest.approx(1 / 3)
    # hits at positions 2 and 3 (0-based); two relevant items -> ideal at 0 and 1
    dcg = 1 / math.log2(4) + 1 / math.log2(5)
    assert M.ndcg(ranked, {"c", "d"}, 8) == pytest.approx(dcg / (1 + 1 / math.log2(3)))
    assert M.ndcg(ranked, {"a"}, 8) == 1.0


def test_cutoff_k_applies():
    assert M.hit_rate(["a", "b", "c"], {"c"}, 2) == 0.0
    assert M.mrr(["a", "b", "c"], {"c"}, 2) == 0.0


def test_duplicates_score_once():
    # a repeated hit must not count twice, and the repeat occupies a slot
    assert M.ndcg(["a", "a", "b"], {"a", "b"}, 8) == pytest.approx((1 + 1 / math.log2(4)) / (1 + 1 / math.log2(3)))
    assert M.mrr(["x", "a", "a"], {"a"}, 8) == 0.5
    assert M.repeat_rate(["a", "a", "b"], {"a"}) == 0.5
    assert M.novelty(["a", "a"], {"a": 3}, 10, 5) == pytest.approx(-math.log2(4 / 15))


def test_empty_lists_and_empty_truth():
    assert M.hit_rate([], {"a"}) == 0.0 and M.mrr([], {"a"}) == 0.0 and M.ndcg([], {"a"}) == 0.0
    assert math.isnan(M.ndcg(["a"], set()))
    assert M.ild_category([]) == 0.0 and M.ild_embedding([]) == 0.0
    assert math.isnan(M.novelty([], {}, 0, 1)) and math.isnan(M.share([]))
    assert math.isnan(M.interest_coverage(["c1"], []))


def test_intra_list_diversity_by_category_with_ties():
    assert M.ild_category(["c1", "c1", "c1"]) == 0.0
    assert M.ild_category(["c1", "c2", "c3"]) == 1.0
    # pairs: (c1,c1) same, four mixed pairs differ among c1,c1,c2,c2 -> 4 of 6
    assert M.ild_category(["c1", "c1", "c2", "c2"]) == pytest.approx(4 / 6)
    assert M.ild_category(["c1", None, "c2"]) == 1.0  # unknown categories are left out
    assert M.distinct_categories(["c1", "c1", None, "c2"]) == 2


def test_embedding_diversity():
    same = M.ild_embedding(["red dress", "red dresses", "red dress"])
    diff = M.ild_embedding(["red dress", "camping tent", "coffee beans"])
    assert 0 <= same < diff <= 1
    e = M.text_embedding(["abc", ""])
    assert np.isclose(np.linalg.norm(e[0]), 1.0) and np.linalg.norm(e[1]) == 0


def test_interest_coverage():
    assert M.interest_coverage(["c1", "c9"], ["c1", "c2"]) == 0.5
    assert M.interest_coverage(["c1", "c2", "c2"], ["c1", "c2"]) == 1.0
