import numpy as np
import pytest

from core.text import normalize_query
from world.catalog import build_catalog, product_type_of_class, read_wands_queries


@pytest.fixture(scope="module")
def catalog():
    return build_catalog(seed=7)


def test_catalogue_is_big_and_varied_enough(catalog):
    assert catalog.categories["domain"].nunique() >= 8
    assert len(catalog.categories) >= 60
    assert (catalog.categories["domain"] != "home").sum() >= 60  # besides the WANDS classes
    assert len(catalog.queries) >= 5000
    assert catalog.queries["query"].is_unique
    for col in ("color", "material", "style", "brand", "price_tier"):
        assert catalog.items[col].nunique() > 1, col


def test_every_wands_query_is_in_home_under_its_class(catalog):
    cats = catalog.categories.set_index("category_id")
    by_text = catalog.queries.set_index("query")
    for text, cls in read_wands_queries():
        row = by_text.loc[normalize_query(text)]
        assert cats.loc[row["category_id"], "domain"] == "home"
        assert cats.loc[row["category_id"], "category_name"] == cls


def test_every_query_returns_items_of_its_category(catalog):
    counts = np.diff(catalog.query_item_offsets)
    assert counts.min() >= 1
    item_cat = catalog.items["category_id"].to_numpy()
    for i in range(0, len(catalog.queries), 97):
        idx = catalog.query_item_index[catalog.query_item_offsets[i] : catalog.query_item_offsets[i + 1]]
        assert set(item_cat[idx]) == {catalog.queries["category_id"][i]}


def test_popularity_is_zipf_within_each_category(catalog):
    prior = catalog.query_prior
    sums = catalog.queries.assign(p=prior).groupby("category_id")["p"].sum()
    assert np.allclose(sums, 1.0)
    top = catalog.queries.assign(p=prior).groupby("category_id")["p"].apply(lambda s: sorted(s, reverse=True))
    ratios = [ps[0] / ps[1] for ps in top if len(ps) > 2]
    assert np.median(ratios) == pytest.approx(2**1.05, rel=1e-6)
    bare = catalog.queries["n_attributes"] == 0
    assert prior[bare.to_numpy()].mean() > 3 * prior[~bare.to_numpy()].mean()


def test_catalogue_is_deterministic():
    a, b = build_catalog(seed=3), build_catalog(seed=3)
    assert a.queries.equals(b.queries) and a.items.equals(b.items)
    assert np.array_equal(a.query_prior, b.query_prior)


@pytest.mark.parametrize(
    "cls,ptype",
    [
        ("Coffee & Cocktail Tables", "coffee tables"),
        ("Bath Rugs & Mats", "bath rugs mats"),
        ("Accent Pillows", "accent pillows"),
        ("Accent Chests / Cabinets", "accent chests cabinets"),
    ],
)
def test_product_type_of_wands_class(cls, ptype):
    assert product_type_of_class(cls) == ptype
