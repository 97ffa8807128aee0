"""Login rate limiting: a few failed attempts per user name and client address a minute.

Kept in the memory of each server process (each uvicorn worker counts on its own).
"""

from __future__ import annotations

import threading
import time
from collections import deque

MAX_FAILURES = 5
WINDOW_S = 60.0
#: addresses x names remembered at most; the oldest entries go first
MAX_KEYS = 10_000


class LoginLimiter:
    """Counts failed logins by ``(name, address)``; ``blocked`` once there were too many."""

    def __init__(self, *, max_failures: int = MAX_FAILURES, window_s: float = WINDOW_S) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self._failures: dict[tuple[str, str], deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, name: str, address: str) -> int:
        """Seconds until ``name`` may try again from ``address`` (0: now)."""
        now = time.monotonic()
        with self._lock:
            failures = self._failures.get((name.lower(), address))
            if not failures:
                return 0
            while failures and failures[0] <= now - self.window_s:
                failures.popleft()
            if len(failures) < self.max_failures:
                return 0
            return max(1, int(failures[0] + self.window_s - now + 0.999))

    def failed(self, name: str, address: str) -> None:
        with self._lock:
            if len(self._failures) >= MAX_KEYS:
                self._failures.pop(next(iter(self._failures)))
            self._failures.setdefault((name.lower(), address), deque()).append(time.monotonic())

    def succeeded(self, name: str, address: str) -> None:
        with self._lock:
            self._failures.pop((name.lower(), address), None)
