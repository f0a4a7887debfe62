"""The HintQ request contract, the same on every server and in `aigq recommend`: the fields, their
limits, and `parse_request`, which answers a malformed request with a RequestError (HTTP 400)
naming the field at fault."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from core.errors import AigqError

MAX_K = 20


MAX_USER_ID_CHARS = 128


MAX_CONTEXT_ITEMS = 20


MAX_CONTEXT_TEXT = 100


class RequestError(AigqError):
    """A malformed request: servers answer it with HTTP 400 and this message."""


@dataclass(frozen=True)
class HintQRequest:
    user_id: str
    k: int = 8
    context: Mapping[str, Any] = field(default_factory=dict)


# request-time context fields a caller may send: (type, check, description)
CONTEXT_FIELDS = {
    "hour": "integer 0..23, the user's local hour (default: the server's UTC hour)",
    "session_queries": f"list of up to {MAX_CONTEXT_ITEMS} strings, searches of the current session not yet in Feast",
    "categories": f"list of up to {MAX_CONTEXT_ITEMS} category ids the page is about (cold-start hint)",
}


def parse_request(payload: Any) -> HintQRequest:
    """A validated request, or RequestError naming the field at fault."""
    if not isinstance(payload, Mapping):
        raise RequestError(f"request must be a JSON object, got {type(payload).__name__}")
    unknown = set(payload) - {"user_id", "k", "context"}
    if unknown:
        raise RequestError(f"unknown request fields {sorted(unknown)}; expected user_id, k, context")
    user_id = payload.get("user_id")
    if not isinstance(user_id, str) or not user_id.strip():
        raise RequestError("user_id: required, a non-empty string")
    if len(user_id) > MAX_USER_ID_CHARS or any(ord(ch) < 32 for ch in user_id):
        raise RequestError(f"user_id: at most {MAX_USER_ID_CHARS} printable characters")
    k = payload.get("k", 8)
    if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= MAX_K:
        raise RequestError(f"k: an integer between 1 and {MAX_K}, got {k!r}"[:200])
    context = payload.get("context") or {}
    if not isinstance(context, Mapping):
        raise RequestError("context: an object of optional request-time fields")
    return HintQRequest(user_id, k, parse_context(context))


def parse_context(context: Mapping) -> dict:
    unknown = set(context) - set(CONTEXT_FIELDS)
    if unknown:
        raise RequestError(
            f"context: unknown fields {sorted(map(str, unknown))[:5]}; known: "
            + "; ".join(f"{k} ({v})" for k, v in CONTEXT_FIELDS.items())
        )
    out: dict = {}
    if "hour" in context:
        hour = context["hour"]
        if isinstance(hour, bool) or not isinstance(hour, int) or not 0 <= hour <= 23:
            raise RequestError(f"context.hour: {CONTEXT_FIELDS['hour']}, got {hour!r}"[:200])
        out["hour"] = hour
    for name in ("session_queries", "categories"):
        if name in context:
            values = context[name]
            if (
                not isinstance(values, list)
                or len(values) > MAX_CONTEXT_ITEMS
                or not all(isinstance(v, str) and len(v) <= MAX_CONTEXT_TEXT for v in values)
            ):
                raise RequestError(f"context.{name}: {CONTEXT_FIELDS[name]} of at most {MAX_CONTEXT_TEXT} characters")
            out[name] = list(values)
    return out
