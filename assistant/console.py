"""What the CLI writes on stderr besides its results: the progress of long runs (bars on a terminal, a few whole
lines in a log file) and the library's notices."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from typing import Any, TextIO, TypeVar

T = TypeVar("T")
Progress = Callable[[str, int, int], None]

UNITS = {"reading": "documents", "registering": "documents", "embedding": "clauses", "storing": "clauses"}
# library loggers whose INFO records are notices for the person at the terminal (the model written on first use)
NOTICE_LOGGERS = ("assistant.index.bundled_model", "assistant.index.tuned_model")
STEP = 0.1  # a log gets at most one line per tenth of a phase…
MIN_INTERVAL_S = 5.0  # …and per few seconds, besides the line that ends the phase


def with_progress(run: Callable[[Progress], T], stream: TextIO | None = None) -> T:
    """`run(progress)`, its progress shown on `stream` (stderr): a bar per phase on a terminal; elsewhere (a log
    file, a pipe) plain lines such as `embedding: 370/3700 clauses (10%)`, because a bar's cursor codes
    (`\\r`, `ESC[A`) turn a log into noise."""
    stream = stream or sys.stderr
    if _is_terminal(stream):
        return _with_bars(run, stream)
    return run(LogLines(stream))


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or replaced stream
        return False


def _with_bars(run: Callable[[Progress], T], stream: TextIO) -> T:
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in bars:
            unit = "doc" if UNITS.get(phase) == "documents" else "clause"
            bars[phase] = tqdm(total=total, unit=unit, desc=phase, file=stream, leave=False)
        bars[phase].update(done - bars[phase].n)

    try:
        return run(progress)
    finally:
        for bar in bars.values():
            bar.close()


class LogLines:
    """A progress callback that writes whole lines: a phase's end, and on the way at most one line per tenth
    done and per MIN_INTERVAL_S."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.clock = clock
        self._shown: dict[str, tuple[int, float]] = {}  # phase → (done, when) of its last line

    def __call__(self, phase: str, done: int, total: int) -> None:
        now = self.clock()
        if phase not in self._shown:
            self._shown[phase] = (0, now)
        last_done, last_time = self._shown[phase]
        if total <= 0 or done <= last_done:
            return
        finished = done >= total
        if not finished and (done - last_done < STEP * total or now - last_time < MIN_INTERVAL_S):
            return
        self._shown[phase] = (done, now)
        self.stream.write(f"{phase}: {done}/{total} {UNITS.get(phase, 'items')} ({100 * done // total}%)\n")
        self.stream.flush()


class _Formatter(logging.Formatter):
    """Notices as plain lines; warnings and errors with their level and logger."""

    full = logging.Formatter("%(levelname)s %(name)s: %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        return super().format(record) if record.levelno < logging.WARNING else self.full.format(record)


def configure_logging() -> None:
    """Warnings and errors on stderr, and the notices of NOTICE_LOGGERS (INFO) as plain lines."""
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(_Formatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])
    for name in NOTICE_LOGGERS:
        logging.getLogger(name).setLevel(logging.INFO)
