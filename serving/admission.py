"""Admission at the door of a server (ASGI middleware, used by BentoML and KServe alike).

Each HintQ request is stamped with the moment it arrived (`x-aigq-arrived`, this process's
monotonic clock; a client's own value is dropped), so the path can tell how long it queued for a
worker and answer a late one with the cached popular list (`HintQ.overload_reason`). Past
`reject_in_flight` open requests in this process even that costs too much: the request gets a
503 with Retry-After at once, before its body is read.
"""

from __future__ import annotations

import json
import time

from serving.config import from_env

ARRIVED_HEADER = "x-aigq-arrived"


def arrived_at(headers) -> float | None:
    """The arrival stamp from a request's headers (a mapping, any case), or None."""
    if headers is None:
        return None
    value = headers.get(ARRIVED_HEADER) or headers.get(ARRIVED_HEADER.title())
    try:
        return float(value) if value else None
    except ValueError:
        return None


class Admission:
    """ASGI middleware over the request paths ending in one of `paths`."""

    def __init__(self, app, paths: tuple[str, ...], reject_in_flight: int | None = None, retry_after_s: int = 1):
        self.app, self.paths = app, paths
        # the server's own ServingConfig when not given (read when the app is built, not at import)
        self.reject_in_flight = reject_in_flight or from_env("admission").reject_in_flight
        self.retry_after_s = retry_after_s
        self.open = 0  # one event loop per process: no lock needed
        self.rejected = 0

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").rstrip("/").endswith(self.paths):
            await self.app(scope, receive, send)
            return
        if self.open >= self.reject_in_flight:
            self.rejected += 1
            await self.reject(send)
            return
        headers = [(k, v) for k, v in scope["headers"] if k != ARRIVED_HEADER.encode()]
        headers.append((ARRIVED_HEADER.encode(), repr(time.monotonic()).encode()))
        self.open += 1
        try:
            await self.app({**scope, "headers": headers}, receive, send)
        finally:
            self.open -= 1

    async def reject(self, send) -> None:
        body = json.dumps(
            {"error": f"overloaded: {self.open} requests open; retry after {self.retry_after_s} s"}
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"retry-after", str(self.retry_after_s).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})
