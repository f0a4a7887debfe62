"""The simulated shop's catalogue: domains, leaf categories, items and the query vocabulary.

Queries are composed from product types and attributes ("navy linen shirt"); the real WANDS
queries join the `home` domain with their product classes as categories. Within each category,
query popularity follows a Zipf law over a specificity-then-random order (bare product types are
searched most). The popularity prior is ground truth: only the world and evaluation read it.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from core import vocabulary as vocab
from core.lexicon import MAX_TOKENS
from core.text import normalize_query
from world import catalog_spec as spec

WANDS_QUERIES = Path(__file__).parent / "resources" / "wands" / "query.csv"
OTHER_HOME = "Other Home"


@dataclass
class Catalog:
    categories: pd.DataFrame  # category_id, category_name, domain
    queries: pd.DataFrame  # query_id, query, category_id, ptype, n_attributes, source
    items: pd.DataFrame  # item_id, title, category_id, ptype, colour..., price_tier, price
    query_prior: np.ndarray  # P(query | its category); ground truth
    query_item_offsets: np.ndarray  # items matching query i: query_item_index[off[i]:off[i+1]]
    query_item_index: np.ndarray

    @property
    def n_queries(self) -> int:
        return len(self.queries)

    def query_category_index(self) -> np.ndarray:
        """Category row index of every query (aligned with `queries`)."""
        codes = {c: i for i, c in enumerate(self.categories["category_id"])}
        return self.queries["category_id"].map(codes).to_numpy(np.int64)


def read_wands_queries(path: Path = WANDS_QUERIES) -> list[tuple[str, str]]:
    """(query, product class) pairs; an empty class becomes `Other Home`."""
    with open(path, newline="", encoding="utf-8") as f:
        rows = list(csv.DictReader(f, delimiter="\t"))
    return [(r["query"], (r["query_class"] or "").strip() or OTHER_HOME) for r in rows]


def product_type_of_class(class_name: str) -> str:
    """A searchable product type for a WANDS class: 'Coffee & Cocktail Tables' -> 'coffee tables'."""
    name = class_name.lower().replace("/", " & ").replace(",", " & ")
    parts = [p.strip() for p in name.split("&") if p.strip()]
    if len(parts) == 1:
        return parts[0]
    head_noun = parts[-1].split()[-1]
    first = parts[0].split()
    return " ".join(first if first[-1] == head_noun else first + [head_noun])


def make_brands(rng: np.random.Generator, n: int) -> list[str]:
    brands: list[str] = []
    while len(brands) < n:
        name = "".join(rng.choice(spec.BRAND_SYLLABLES, size=rng.integers(2, 4)))
        if name not in brands:
            brands.append(name)
    return brands


def colors_of(domain: str) -> tuple[str, ...]:
    return vocab.FLAVOURS if domain == "grocery" else vocab.COLORS


def _query_specs(ptype: str, domain: str, brands: list[str], rng: np.random.Generator, rich: bool):
    """(text, constraints) for the queries built on one product type."""
    attrs = vocab.ATTRIBUTES[domain]
    yield ptype, {}
    palette = colors_of(domain)
    colors = palette if rich else tuple(rng.choice(palette, 6, replace=False))
    for c in colors:
        yield f"{c} {ptype}", {"color": c}
    materials = attrs["material"] if rich else tuple(rng.choice(attrs["material"], 4, replace=False))
    for m in materials:
        yield f"{m} {ptype}", {"material": m}
    styles = attrs["style"] if rich else tuple(rng.choice(attrs["style"], 3, replace=False))
    for s in styles:
        yield f"{s} {ptype}", {"style": s}
    if not rich:
        return
    for a in attrs["audience"]:
        yield f"{a} {ptype}", {"audience": a}
    for b in rng.choice(brands, 3, replace=False):
        yield f"{b} {ptype}", {"brand": str(b)}
    for word in vocab.PRICE_WORDS:
        yield f"{word} {ptype}", {"price": word}
    for _ in range(3):
        c, m = rng.choice(palette), rng.choice(attrs["material"])
        yield f"{c} {m} {ptype}", {"color": str(c), "material": str(m)}


def _category_table() -> tuple[pd.DataFrame, dict[str, tuple[str, ...]], list[tuple[str, str]]]:
    wands = read_wands_queries()
    rows = [(name, domain) for domain, cats in spec.DOMAINS.items() for name in cats]
    ptypes = {name: p for cats in spec.DOMAINS.values() for name, p in cats.items()}
    for cls in sorted({c for _, c in wands}):
        rows.append((cls, "home"))
        ptypes[cls] = (product_type_of_class(cls),)
    categories = pd.DataFrame(rows, columns=["category_name", "domain"])
    categories.insert(0, "category_id", [f"c{i:03d}" for i in range(len(categories))])
    return categories, ptypes, wands


def build_catalog(seed: int = 7, items_per_category: int = 24, items_per_home_category: int = 10) -> Catalog:
    """Build the catalogue deterministically from `seed` (independent of the user count)."""
    rng = np.random.default_rng(seed)
    categories, ptypes, wands = _category_table()
    brands = {d: make_brands(rng, 6) for d in vocab.ATTRIBUTES}

    query_rows: list[dict] = []
    seen: set[str] = set()

    def add(text: str, cat_id: str, ptype: str, constraints: dict, source: str) -> None:
        norm = normalize_query(text)
        if norm and norm not in seen:
            seen.add(norm)
            query_rows.append(dict(query=norm, category_id=cat_id, ptype=ptype, constraints=constraints, source=source))

    cat_id_of = dict(zip(categories["category_name"], categories["category_id"]))
    for text, cls in wands:  # real queries first, so they win over synthetic duplicates
        add(text, cat_id_of[cls], ptypes[cls][0], {}, "wands")
    for row in categories.itertuples():
        rich = row.domain != "home"
        for ptype in ptypes[row.category_name]:
            for text, constraints in _query_specs(ptype, row.domain, brands[row.domain], rng, rich):
                add(text, row.category_id, ptype, constraints, "synthetic")

    queries = pd.DataFrame(query_rows)
    queries["n_attributes"] = queries["constraints"].map(len).astype(np.int64)
    items = _build_items(categories, ptypes, brands, rng, items_per_category, items_per_home_category)
    offsets, index = _match_items(queries, items)
    prior = _zipf_prior(queries, rng)
    order = queries.sort_values("category_id", kind="stable").index.to_numpy()
    # keep query ids grouped by category for readability; remap the item matches accordingly
    lengths = np.diff(offsets)
    new_index = np.concatenate([index[offsets[i] : offsets[i + 1]] for i in order])
    new_offsets = np.concatenate([[0], np.cumsum(lengths[order])])
    queries = queries.loc[order].reset_index(drop=True)
    queries.insert(0, "query_id", [f"q{i:05d}" for i in range(len(queries))])
    return Catalog(
        categories=categories,
        queries=queries.drop(columns="constraints")[
            ["query_id", "query", "category_id", "ptype", "n_attributes", "source"]
        ],
        items=items,
        query_prior=prior[order],
        query_item_offsets=new_offsets.astype(np.int64),
        query_item_index=new_index.astype(np.int64),
    )


def _build_items(categories, ptypes, brands, rng, per_cat: int, per_home_cat: int) -> pd.DataFrame:
    rows = []
    for row in categories.itertuples():
        attrs = vocab.ATTRIBUTES[row.domain]
        n = per_home_cat if row.domain == "home" else per_cat
        for _ in range(n):
            ptype = str(rng.choice(ptypes[row.category_name]))
            tier = int(rng.choice([1, 2, 3, 4, 5], p=[0.2, 0.3, 0.25, 0.15, 0.1]))
            item = dict(
                category_id=row.category_id,
                ptype=ptype,
                color=str(rng.choice(colors_of(row.domain))),
                material=str(rng.choice(attrs["material"])),
                style=str(rng.choice(attrs["style"])),
                audience=str(rng.choice(attrs["audience"])) if rng.random() < 0.5 else "",
                brand=str(rng.choice(brands[row.domain])),
                price_tier=tier,
                price=round(float(8 * tier**1.6 * rng.lognormal(0, 0.3)), 2),
            )
            words = [item["brand"], item["color"], item["material"], item["style"], ptype]
            item["title"] = " ".join(w for w in words if w)
            rows.append(item)
    items = pd.DataFrame(rows)
    items.insert(0, "item_id", [f"i{i:06d}" for i in range(len(items))])
    cols = [
        "item_id",
        "title",
        "category_id",
        "ptype",
        "color",
        "material",
        "style",
        "audience",
        "brand",
        "price_tier",
        "price",
    ]
    return items[cols]


def _match(constraints: dict, item) -> bool:
    for key, value in constraints.items():
        if key == "price":
            tier = item.price_tier
            if (value == "cheap" and tier > 2) or (value != "cheap" and tier < 4):
                return False
        elif getattr(item, key) != value:
            return False
    return True


def _match_items(queries: pd.DataFrame, items: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Items a query returns: same category and product type meeting its constraints, relaxed
    to the product type, then to the category, so every query returns something (as a search
    engine's partial match would)."""
    by_cat = {c: list(g.itertuples()) for c, g in items.reset_index().groupby("category_id")}
    offsets, index = [0], []
    for q in queries.itertuples():
        pool = by_cat[q.category_id]
        same_type = [it for it in pool if it.ptype == q.ptype]
        exact = [it for it in same_type if _match(q.constraints, it)]
        chosen = exact or same_type or pool
        index.extend(it.index for it in chosen)
        offsets.append(len(index))
    return np.asarray(offsets), np.asarray(index)


def _zipf_prior(queries: pd.DataFrame, rng: np.random.Generator, exponent: float = 1.05) -> np.ndarray:
    """P(query | category): Zipf over (fewer attributes first, then a random order)."""
    noise = rng.random(len(queries))
    prior = np.zeros(len(queries))
    for _, idx in queries.groupby("category_id").indices.items():
        order = np.lexsort((noise[idx], queries["n_attributes"].to_numpy()[idx]))
        ranks = np.empty(len(idx))
        ranks[order] = np.arange(len(idx))
        weights = 1.0 / (ranks + 1.0) ** exponent
        prior[idx] = weights / weights.sum()
    return prior


def standardised_novelty(catalog: Catalog) -> np.ndarray:
    """z-score of -log2 of a query's population-level popularity."""
    share = catalog.query_prior / len(catalog.categories)
    nov = -np.log2(share)
    return (nov - nov.mean()) / nov.std()


def novelty_by_category_and_length(category, n_tokens, novelty, n_categories: int) -> np.ndarray:
    """[category, attribute words 0..MAX] median novelty of vocabulary queries of that shape
    (the nearest shorter shape where a category has none), for texts outside the vocabulary."""
    table = np.full((n_categories, MAX_TOKENS + 1), np.nan)
    frame = pd.DataFrame({"c": category, "n": np.minimum(n_tokens, MAX_TOKENS), "z": novelty})
    for (c, n), z in frame.groupby(["c", "n"])["z"].median().items():
        table[c, n] = z
    for n in range(1, MAX_TOKENS + 1):
        table[:, n] = np.where(np.isnan(table[:, n]), table[:, n - 1], table[:, n])
    return np.nan_to_num(table, nan=0.0)
