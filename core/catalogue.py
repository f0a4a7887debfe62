"""The observed catalogue: category names and domains, the query vocabulary and its product types.
What training and serving may read; no ground truth here (the simulated shop that writes it is
`world/catalog.py`)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from core.text import normalize_query


class QueryCatalogue:
    """The observed catalogue (category names and domains, the query vocabulary and its product
    types): what training and serving may read. No ground truth here."""

    def __init__(self, queries: pd.DataFrame, categories: pd.DataFrame):
        self.vocabulary = set(queries["query"])
        self.category_of = dict(zip(queries["query"], queries["category_id"]))
        self.ptype_category = dict(zip(queries["ptype"], queries["category_id"]))
        self.name = dict(zip(categories["category_id"], categories["category_name"]))
        self.domain = dict(zip(categories["category_id"], categories["domain"]))

    @classmethod
    def load(cls, data_dir: Path) -> QueryCatalogue:
        return cls(pd.read_parquet(data_dir / "queries.parquet"), pd.read_parquet(data_dir / "categories.parquet"))

    def category(self, query: str) -> str | None:
        """A query's category: from the vocabulary, else by the product type it names."""
        return self.category_of.get(query) or longest_named(query, self.ptype_category)

    def is_valid(self, query: str) -> bool:
        """In the vocabulary or naming a product type (it would return items)."""
        return query in self.vocabulary or longest_named(query, self.ptype_category) is not None


def longest_named(text: str, phrases: dict):
    """The value of the longest phrase (up to 6 words) that `text` contains as whole words."""
    key = longest_named_key(text, phrases)
    return None if key is None else phrases[key]


def longest_named_key(text: str, phrases: dict) -> str | None:
    """The longest phrase (up to 6 words) of `phrases` that `text` contains as whole words."""
    words = normalize_query(text).split()
    for n in range(min(len(words), 6), 0, -1):
        for i in range(len(words) - n + 1):
            key = " ".join(words[i : i + n])
            if key in phrases:
                return key
    return None
