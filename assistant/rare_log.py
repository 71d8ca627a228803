"""Warnings about refused clients, written at most once a minute per reason: a flood of requests must not become a
flood of log lines (the disk is what the flood would fill)."""

from __future__ import annotations

import logging
import threading
import time
from typing import Any


class RareLog:
    """`warning(reason, *args)` logs through `logger` at most once every `every_s` per `reason` (a format string),
    saying how many were left out since its last line."""

    def __init__(self, logger: logging.Logger, every_s: float = 60) -> None:
        self.logger, self.every_s = logger, every_s
        self._last: dict[str, tuple[float, int]] = {}
        self._lock = threading.Lock()

    def warning(self, reason: str, *args: Any) -> None:
        with self._lock:
            now = time.monotonic()
            last, count = self._last.get(reason, (-self.every_s, 0))
            if now - last < self.every_s:
                self._last[reason] = (last, count + 1)
                return
            self._last[reason] = (now, 0)
        self.logger.warning(reason + "%s", *args, f" ({count} more since the last such line)" if count else "")
