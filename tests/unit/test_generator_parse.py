import pytest

from models.generator import candidates, clean_query, complete_list, parse_list


@pytest.mark.parametrize(
    "text,expected",
    [
        (" red dress | tent | mug<|endoftext|>", ["red dress", "tent", "mug"]),
        (" Red  DRESS| red dress |tent", ["red dress", "tent"]),  # normalised, duplicates dropped
        ("", []),
        ("<|endoftext|> red dress", []),  # nothing before the end of text
        (" | | ||", []),
        (" 12345 | ?? | tent", ["tent"]),  # no letters: not a query
        (" tent<|list|>mug | lamp", ["tent", "mug", "lamp"]),  # a stray special token separates
        (" bad\x00query | ok query", ["ok query"]),  # control characters reject the piece
        (" " + "x" * 61 + " | fine", ["fine"]),  # too long
    ],
)
def test_parse_list_on_malformed_outputs(text, expected):
    assert parse_list(text, 8) == expected


def test_parse_respects_k_validity_and_blocklist():
    text = " a tent | buy drugs | unknown thing | mug | lamp"
    assert parse_list(text, 2) == ["a tent", "buy drugs"]
    assert parse_list(text, 8, is_valid=lambda q: q != "unknown thing", blocklist=["drugs"]) == [
        "a tent",
        "mug",
        "lamp",
    ]
    assert candidates(text) == ["a tent", "buy drugs", "unknown thing", "mug", "lamp"]


def test_complete_list_fills_and_marks_fallback():
    queries, sources = complete_list(["a", "b"], ["b", "c", "d"], 4)
    assert queries == ["a", "b", "c", "d"] and sources == ["model", "model", "fallback", "fallback"]
    assert complete_list(["a", "b", "c"], [], 2) == (["a", "b"], ["model", "model"])


def test_clean_query():
    assert clean_query("  ＲＥＤ dress ") == "red dress"
    assert clean_query("a") is None and clean_query("\u200b\u200b") is None


def test_interest_scope_caps_each_named_category_by_its_30_day_share():
    from models.generator import interest_scope

    ctx = {
        "top_categories_30d": ["c1", "c2", "c3"],
        "top_category_weights_30d": [0.6, 0.3, 0.02],
        "top_categories_7d": ["c2", "c9"],
        "recent_click_categories": ["c9", None, "c7"],
    }
    assert interest_scope(ctx, 8, capped=True) == {"c1": 5, "c2": 2, "c3": 1, "c9": 1, "c7": 1}
    assert interest_scope(ctx, 8, capped=False) == dict.fromkeys(["c1", "c2", "c3", "c9", "c7"], 8)
    assert interest_scope({"top_categories_30d": None}, 8, capped=True) == {}
