"""A circuit breaker for one dependency of the online path (the online store, the ranker, the
Direct generator): after a failure nobody waits on the dependency for `retry_seconds`; then one
request at a time probes it (half-open) while the others keep the fallback, and the first
success closes the circuit. A dead dependency then costs one request per `retry_seconds` its
timeout, not every request in flight, and a recovered one is used again within `retry_seconds`.
"""

from __future__ import annotations

import threading
import time


class Circuit:
    def __init__(self, retry_seconds: float):
        self.retry_seconds = retry_seconds
        self._lock = threading.Lock()
        self._open_until = 0.0  # 0: closed
        self._probing = False

    def allow(self) -> bool:
        """May this request call the dependency? Closed: yes. Open: no, until `retry_seconds`
        have passed; then yes for one request (the probe) until it reports back."""
        if self._open_until == 0.0:
            return True
        with self._lock:
            if self._open_until == 0.0:
                return True
            if self._probing or time.monotonic() < self._open_until:
                return False
            self._probing = True
            return True

    def succeeded(self) -> None:
        if self._open_until or self._probing:
            with self._lock:
                self._open_until, self._probing = 0.0, False

    def failed(self) -> None:
        with self._lock:
            self._open_until = time.monotonic() + self.retry_seconds
            self._probing = False

    @property
    def is_open(self) -> bool:
        return self._open_until != 0.0
