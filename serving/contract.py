"""The HintQ request contract, the same on every server and in `aigq recommend`: one pydantic
schema (`HintQRequestBody`, which BentoML publishes in its OpenAPI document) and `parse_request`,
which validates a decoded JSON body against it and answers a malformed request with a
RequestError (HTTP 400) whose message names the field at fault, never an internal class.

Types are strict (JSON numbers for numbers: `"8"`, `8.0` and `true` are not a `k`); text must not
hold control characters (C0, DEL, C1, lone surrogates, line/paragraph separators); session queries
pass the project's one normaliser, so "Pet  Shampoo" is the already-searched "pet shampoo".
"""

from __future__ import annotations

import json
import reprlib
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, ValidationError

from core.errors import AigqError
from core.text import normalize_query

MAX_K = 20
MAX_USER_ID_CHARS = 128
MAX_CONTEXT_ITEMS = 20
MAX_CONTEXT_TEXT = 100
# Unicode categories refused in any request text: control (Cc: C0, DEL, C1), surrogate (Cs),
# line and paragraph separators (Zl, Zp). Format characters (Cf, e.g. ZWJ in emoji) are text.
REFUSED_CATEGORIES = frozenset({"Cc", "Cs", "Zl", "Zp"})
_SHORT = reprlib.Repr()  # an echoed input stays short (a body may hold an 8 MB string)
_SHORT.maxstring, _SHORT.maxother, _SHORT.maxlist, _SHORT.maxdict = 60, 60, 4, 4
JSON_HINT = 'send a JSON object with Content-Type: application/json, e.g. {"user_id": "u1", "k": 8}'


class RequestError(AigqError):
    """A malformed request: servers answer it with HTTP 400 and this message."""


def _printable(text: str) -> str:
    if any(unicodedata.category(ch) in REFUSED_CATEGORIES for ch in text):
        raise ValueError("control characters are not allowed")
    return text


def _normalised_queries(queries: list[str]) -> list[str]:
    return [q for q in (normalize_query(text) for text in queries) if q]


ContextText = Annotated[str, Field(max_length=MAX_CONTEXT_TEXT), AfterValidator(_printable)]


class Context(BaseModel):
    """Optional request-time fields."""

    model_config = ConfigDict(extra="forbid", strict=True)
    hour: int | None = Field(None, ge=0, le=23, description="integer 0..23, the user's local hour (default: UTC now)")
    session_queries: Annotated[list[ContextText], AfterValidator(_normalised_queries)] = Field(
        default_factory=list,
        max_length=MAX_CONTEXT_ITEMS,
        description=f"up to {MAX_CONTEXT_ITEMS} searches of the current session not yet in Feast",
    )
    categories: list[ContextText] = Field(
        default_factory=list,
        max_length=MAX_CONTEXT_ITEMS,
        description=f"up to {MAX_CONTEXT_ITEMS} category ids the page is about (cold-start hint)",
    )


class HintQRequestBody(BaseModel):
    """A HintQ request: the user, the list length, optional request-time context."""

    model_config = ConfigDict(extra="forbid", strict=True)
    user_id: Annotated[str, AfterValidator(_printable)] = Field(
        min_length=1, max_length=MAX_USER_ID_CHARS, description="the user (any id; unknown users get a cold-start list)"
    )
    k: int = Field(8, ge=1, le=MAX_K, description=f"list length, 1..{MAX_K}")
    context: Context | None = None


@dataclass(frozen=True)
class HintQRequest:
    user_id: str
    k: int = 8
    context: Mapping[str, Any] = field(default_factory=dict)


# what each field must be, in the words of the 400 message
FIELD_HELP = {
    "user_id": f"required: a string of 1..{MAX_USER_ID_CHARS} printable characters",
    "k": f"an integer between 1 and {MAX_K}",
    "context": "an object of optional request-time fields (hour, session_queries, categories)",
    "context.hour": Context.model_fields["hour"].description,
    "context.session_queries": f"a list of at most {MAX_CONTEXT_ITEMS} strings of at most {MAX_CONTEXT_TEXT} "
    "printable characters",
    "context.categories": f"a list of at most {MAX_CONTEXT_ITEMS} strings of at most {MAX_CONTEXT_TEXT} "
    "printable characters",
}


def _message(error: dict) -> str:
    loc = [str(part) for part in error.get("loc", ())]
    names = [part for part in loc if not part.isdigit()]
    if error["type"] == "extra_forbidden":
        where = ".".join(names[:-1])
        known = ", ".join(HintQRequestBody.model_fields if not where else Context.model_fields)
        return f"{where + ': ' if where else ''}unknown field {names[-1]!r}; expected {known}"[:300]
    if error["type"] == "model_type" and not loc:
        return "request must be a JSON object with user_id, k, context"
    path = ".".join(names)
    if path not in FIELD_HELP:  # a type error inside a union: report the field it belongs to
        path = next((p for p in FIELD_HELP if path.startswith(p + ".")), path)
    index = next((f"[{part}]" for part in loc if part.isdigit()), "")
    got = f", got {_SHORT.repr(error['input'])}" if "input" in error and error["type"] != "missing" else ""
    return f"{path}{index}: {FIELD_HELP.get(path, error['msg'])}{got}"[:300]


def parse_request(payload: Any) -> HintQRequest:
    """A validated, normalised request, or RequestError naming the field at fault."""
    if not isinstance(payload, Mapping):
        raise RequestError(f"request must be a JSON object, got {type(payload).__name__}")
    try:
        body = HintQRequestBody.model_validate(payload)
    except ValidationError as e:
        raise RequestError(_message(e.errors(include_url=False)[0])) from None
    context = body.context.model_dump(exclude_none=True, exclude_defaults=True) if body.context else {}
    return HintQRequest(body.user_id, body.k, context)


def decode_json(raw: bytes) -> Any:
    """A request body as JSON, or RequestError saying to send JSON (form-encoded, text, ...)."""
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise RequestError(f"the body is not JSON: {JSON_HINT}") from None
