"""Failed-login limits: a client, and an account, that fail too often in a window are refused until it passes."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class LoginThrottle:
    """Counts failed logins per client address and per account name within `window_s`.

    A client with `per_client` failures is refused until its oldest failure leaves the window. An account with
    `per_account` failures (from any clients) is refused only to clients that have failed themselves in the
    window: others cannot lock the account's owner out, who keeps logging in from a client that has not failed. A
    success clears the client's count. Bounded: at most `max_keys` clients and accounts are tracked (the oldest
    are forgotten first).
    """

    def __init__(self, per_client: int, per_account: int, window_s: float, max_keys: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.per_client, self.per_account, self.window_s = per_client, per_account, window_s
        self.max_keys = max_keys
        self._clock = clock
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def retry_after(self, client: str, account: str) -> float:
        """Seconds until this client may try this account again; 0 when it may now."""
        with self._lock:
            now = self._clock()
            client_wait = self._wait(f"client:{client}", self.per_client, now)
            if client_wait > 0 or not self._failures.get(f"client:{client}"):
                return client_wait  # per client first: a client that has not failed has its password checked
            return self._wait(f"account:{account.lower()}", self.per_account, now)

    def failed(self, client: str, account: str) -> None:
        with self._lock:
            now = self._clock()
            for key in (f"client:{client}", f"account:{account.lower()}"):
                times = self._failures.pop(key, deque())
                times.append(now)
                self._failures[key] = times  # re-inserted: the dict's order is least recently failed first
            while len(self._failures) > self.max_keys:
                del self._failures[next(iter(self._failures))]

    def succeeded(self, client: str) -> None:
        with self._lock:
            self._failures.pop(f"client:{client}", None)

    def _wait(self, key: str, limit: int, now: float) -> float:
        times = self._failures.get(key)
        if not times:
            return 0.0
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if len(times) < limit:
            return 0.0
        return times[-limit] + self.window_s - now
