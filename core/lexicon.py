"""Attribute words of the shop: which colours, materials, styles, audiences, price words and
brands a text names, outside its product type.

Every word is one token whatever the domain ("leather" in a jacket and in a seat cover is the same
taste), so a shopper's tastes carry across categories. The lexicon is built from the public
catalogue vocabulary (`catalog_spec` and the items' brands): training and serving may use it too;
the world uses it to judge any text, inside the query vocabulary or not, by what it names.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from core import vocabulary
from core.text import normalize_query

MAX_TOKENS = 4  # attribute words per text that count (queries name at most three)
MAX_PHRASE = 3  # longest attribute phrase in words ("organic cotton", "mid century")


class Lexicon:
    def __init__(self, brands: Iterable[str] = ()):
        words: list[str] = list(vocabulary.COLORS) + list(vocabulary.FLAVOURS) + list(vocabulary.PRICE_WORDS)
        for attrs in vocabulary.ATTRIBUTES.values():
            for values in attrs.values():
                words.extend(values)
        words.extend(sorted(set(brands)))
        self.tokens: list[str] = list(dict.fromkeys(normalize_query(w) for w in words))
        self.index = {t: i for i, t in enumerate(self.tokens)}
        self.brands = {normalize_query(b) for b in brands}

    def __len__(self) -> int:
        return len(self.tokens)

    def token_ids(self, text: str, ptype: str | None = None) -> list[int]:
        """Attribute tokens a text names, longest phrase first, left to right; the product type's
        own words are skipped ("gaming mouse" names no attribute, "gaming keyboard" neither)."""
        words = normalize_query(text).split()
        if ptype:
            p = normalize_query(ptype).split()
            for i in range(len(words) - len(p) + 1):
                if words[i : i + len(p)] == p:
                    words = words[:i] + [""] + words[i + len(p) :]
                    break
        out: list[int] = []
        i = 0
        while i < len(words) and len(out) < MAX_TOKENS:
            for n in range(min(MAX_PHRASE, len(words) - i), 0, -1):
                hit = self.index.get(" ".join(words[i : i + n]))
                if hit is not None and "" not in words[i : i + n]:
                    if hit not in out:
                        out.append(hit)
                    i += n
                    break
            else:
                i += 1
        return out

    def token_matrix(self, texts: Sequence[str], ptypes: Sequence[str | None]) -> np.ndarray:
        """[n, MAX_TOKENS] token ids per text, -1 padded."""
        out = np.full((len(texts), MAX_TOKENS), -1, dtype=np.int32)
        for row, (text, ptype) in enumerate(zip(texts, ptypes)):
            ids = self.token_ids(text, ptype)
            out[row, : len(ids)] = ids
        return out

    def ids(self, words: Iterable[str]) -> list[int]:
        return [self.index[w] for w in (normalize_query(x) for x in words) if w in self.index]
