"""Query text normalisation: the one definition of "the same query" used everywhere, for every
text that enters (logs, requests, generated text, the blocklist)."""

import re
import unicodedata

MAX_QUERY_CHARS = 60
_SPACES = re.compile(r"\s+")


def normalize_query(text: str) -> str:
    """Lower-case, NFKC-fold, drop control characters and collapse whitespace."""
    text = unicodedata.normalize("NFKC", text)
    text = "".join(ch for ch in text if unicodedata.category(ch)[0] != "C" or ch in " \t\n")
    return _SPACES.sub(" ", text).strip().lower()


def valid_query(text: str) -> str | None:
    """The normalised query, or None if the text is not one a user could have typed: control
    characters (other than spaces and tabs), shorter than 2 or longer than MAX_QUERY_CHARS
    characters, or no letter."""
    folded = unicodedata.normalize("NFKC", text)
    if any(unicodedata.category(ch)[0] == "C" and ch not in " \t" for ch in folded):
        return None
    query = normalize_query(folded)
    if not (2 <= len(query) <= MAX_QUERY_CHARS) or not any(ch.isalpha() for ch in query):
        return None
    return query
