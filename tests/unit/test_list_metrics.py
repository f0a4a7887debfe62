"""Per-served-list monitoring metrics on hand-made log rows."""

import math

import pandas as pd

from core import metrics as M
from core.catalogue import QueryCatalogue
from monitoring.list_metrics import COLUMNS, daily, list_metrics

CATALOGUE = QueryCatalogue(
    pd.DataFrame(
        {
            "query": ["tent", "lamp", "red dress", "dress"],
            "category_id": ["c1", "c2", "c3", "c3"],
            "ptype": ["tent", "lamp", "dress", "dress"],
        }
    ),
    pd.DataFrame(
        {
            "category_id": ["c1", "c2", "c3"],
            "category_name": ["Tents", "Lamps", "Dresses"],
            "domain": ["outdoor", "home", "fashion"],
        }
    ),
)


def row(request_id, day, queries, sources, scores, categories=None, degraded=False):
    return {
        "request_id": request_id,
        "served_at": pd.Timestamp(day, tz="UTC"),
        "user_id": "u",
        "queries": queries,
        "sources": sources,
        "scores": scores,
        "categories": categories,
        "degraded": degraded,
    }


def test_category_entropy():
    assert M.category_entropy(["a", "a"]) == 0.0
    assert math.isclose(M.category_entropy(["a", "b"]), math.log(2))
    assert M.category_entropy([None]) == 0.0


def test_list_metrics_on_hand_rows():
    served = pd.DataFrame(
        [
            row(
                "r1",
                "2026-01-01 10:00",
                ["tent", "lamp", "red dress"],
                ["direct", "think", "fallback"],
                [0.3, 0.2, 0.1],
                ["c1", "c2", "c3"],
            ),
            row("r2", "2026-01-01 11:00", ["dress", "red dress"], ["fallback", "fallback"], [1.0, 0.5], None),
            row("r3", "2026-01-02 09:00", ["tent", "zzzz qqq"], ["direct", "direct"], [0.4, 0.2], ["c1", None], True),
        ]
    )
    m = list_metrics(served, CATALOGUE, {"tent": 10, "lamp": 1}, 11, clicks={"r1": 1})
    r1, r2, r3 = m.to_dict("records")
    assert r1["distinct_categories"] == 3 and math.isclose(r1["category_entropy"], math.log(3))
    assert math.isclose(r1["mean_ctr_score"], 0.2) and math.isclose(r1["click_through"], 1 / 3)
    assert math.isclose(r1["share_direct"], 1 / 3) and r1["validity"] == 1.0 and r1["degraded"] == 0.0
    assert r2["distinct_categories"] == 1  # categories looked up in the catalogue when the log has none
    assert math.isnan(r2["mean_ctr_score"])  # a popular-list answer was not ranked by the CTR model
    assert r2["click_through"] == 0.0
    assert r3["degraded"] == 1.0 and r3["validity"] == 0.5 and math.isnan(r3["mean_ctr_score"])
    assert r1["novelty"] > 0
    by_day = daily(m)
    assert len(by_day) == 2 and set(COLUMNS) <= set(by_day.columns)
    assert by_day.iloc[0]["distinct_categories"] == 2.0
