"""A per-client rate limit: at most `limit` actions per client in any `window_s`, for anonymous writes."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable


class PerClientLimit:
    """Counts each client's actions in a sliding window. Bounded: at most `max_clients` clients are tracked, the
    least recently active forgotten first."""

    def __init__(self, limit: int, window_s: float = 60, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.limit, self.window_s, self.max_clients = limit, window_s, max_clients
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, client: str) -> float:
        """0 when the client may act now (and the action is counted), else the seconds until it may."""
        with self._lock:
            now = self._clock()
            times = self._seen.pop(client, deque())
            self._seen[client] = times  # re-inserted: the dict's order is least recently active first
            while times and times[0] <= now - self.window_s:
                times.popleft()
            if len(times) >= self.limit:
                return times[-self.limit] + self.window_s - now
            times.append(now)
            while len(self._seen) > self.max_clients:
                del self._seen[next(iter(self._seen))]
            return 0.0
