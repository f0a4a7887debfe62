"""Query text normalisation: the one definition of "the same query" used everywhere."""

import re
import unicodedata

_SPACES = re.compile(r"\s+")


def normalize_query(text: str) -> str:
    """Lower-case, NFKC-fold, drop control characters and collapse whitespace."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    return _SPACES.sub(" ", text).strip().lower()
