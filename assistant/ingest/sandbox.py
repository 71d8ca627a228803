"""Reading untrusted files in a child process under a CPU-time and memory budget: a hostile file costs at most the
budget, is refused naming the file, and never holds the server's interpreter (or its model's memory) meanwhile."""

from __future__ import annotations

import logging
import multiprocessing
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, TypeVar

from assistant.errors import CorpusError
from assistant.ingest.limits import Limits, parse_bounded
from assistant.ingest.loaders import load_document
from assistant.ingest.records import Clause, PolicyDocument

log = logging.getLogger(__name__)
T = TypeVar("T")

_HINT = "raise POLICY_ASSISTANT_INDEX__{} if the file is genuine, or split it"
# imported once by the fork server, so that each child starts in milliseconds with the parsers loaded (and without
# the server's torch model: children are forked from this small process, never from the server)
_PRELOAD = ["assistant.publishing", "assistant.ingest.loaders", "assistant.ingest.clauses", "pypdf", "pdfplumber",
            "docx", "lxml.etree"]
_started = threading.Lock()
_context: Any = None


def wall_s(limits: Limits) -> float:
    """A child that waits rather than computes (a stuck OCR tool) is ended after this long."""
    return max(10.0 * limits.parse_cpu_s, 60.0)


def run_bounded(work: Callable[..., T], *args: Any, name: str, limits: Limits) -> T:
    """`work(*args)` in a child process within the budget of `limits` (`parse_cpu_s`, `parse_memory_bytes`), its
    result sent back. A `CorpusError` it raises comes back as it was; running out of the budget, or any other
    failure, is a `CorpusError` naming the file `name`. `work` must be a module-level function (the child imports
    it by name)."""
    if limits.parse_cpu_s <= 0 or not _main_reloadable():
        return _guarded(work, args, name)
    receiving, sending = _fork_server().Pipe(duplex=False)
    # ended with this process, unless this one is a daemon itself (which may not have daemonic children); its CPU
    # limit ends it anyway
    child = _fork_server().Process(target=_child, args=(sending, work, args, limits),
                                   daemon=not multiprocessing.current_process().daemon)
    started = time.monotonic()
    child.start()
    sending.close()
    try:
        # waiting on the pipe releases the GIL: answers go on while the child reads
        outcome = receiving.recv() if receiving.poll(wall_s(limits)) else ("stuck", None)
    except EOFError:  # the child died without a word: killed at its CPU limit, or out of memory
        outcome = ("died", None)
    finally:
        receiving.close()
        if outcome[0] == "stuck" or child.is_alive() and not _joined(child, 5):
            child.kill()
        child.join()
    log.info("read %s in a child process: %s, %.1f s", name, outcome[0], time.monotonic() - started)
    return _result(outcome, child.exitcode, name, limits)  # type: ignore[no-any-return]


def parse_file(file: Path, root: Path, limits: Limits, max_chars: int) -> tuple[PolicyDocument, list[Clause]]:
    """A corpus file's document and its clauses (`limits.parse_bounded`), read within the budget of `limits`."""
    return run_bounded(_parse_file, file, root, limits, max_chars, name=str(file), limits=limits)


def _parse_file(file: Path, root: Path, limits: Limits, max_chars: int) -> tuple[PolicyDocument, list[Clause]]:
    doc = load_document(file, root, limits)
    return doc, parse_bounded(doc, str(file), max_chars, limits)


def _fork_server() -> Any:
    """The fork server's context (started once per process, with the parsers preloaded)."""
    global _context
    with _started:
        if _context is None:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(_PRELOAD + _main_imports())
            _context = context
    return _context


def _main_reloadable() -> bool:
    """Whether a child can run the main script again, as multiprocessing has each child do: not when it was read
    from standard input (`python - < script`), which then reads within this process, unbounded."""
    path = getattr(sys.modules.get("__main__"), "__file__", None)
    if path is None or Path(path).is_file():
        return True
    log.warning("files are read without a budget: the main script %s cannot be run again in a child process", path)
    return False


def _main_imports() -> list[str]:
    """This package's modules that the main script imported (a console script's `assistant.cli`): a child runs the
    main script again before its work, which costs nothing once the fork server holds them."""
    main = getattr(sys.modules.get("__main__"), "__dict__", {})
    names = {getattr(value, "__module__", None) or getattr(value, "__name__", None) for value in main.values()}
    return sorted(n for n in names if isinstance(n, str) and n.startswith("assistant.") and n not in _PRELOAD)


def _joined(child: Any, timeout: float) -> bool:
    child.join(timeout)
    return not child.is_alive()


def _child(sending: Connection, work: Callable[..., Any], args: tuple[Any, ...], limits: Limits) -> None:
    import resource

    # the soft CPU limit sends SIGXCPU (which ends the process); the hard one, a second later, SIGKILL. Memory past
    # the address space limit fails to allocate: a MemoryError
    resource.setrlimit(resource.RLIMIT_CPU, (limits.parse_cpu_s, limits.parse_cpu_s + 1))
    resource.setrlimit(resource.RLIMIT_AS, (limits.parse_memory_bytes, limits.parse_memory_bytes))
    try:
        outcome: tuple[str, Any] = ("ok", work(*args))
    except CorpusError as e:
        outcome = ("refused", _error_state(e))
    except MemoryError:
        outcome = ("memory", None)
    except BaseException as e:  # noqa: BLE001 (whatever a parser raises becomes a refusal naming the file)
        outcome = ("failed", _reason(e))
    try:
        sending.send(outcome)
    except MemoryError:
        os.kill(os.getpid(), signal.SIGKILL)


def _guarded(work: Callable[..., T], args: tuple[Any, ...], name: str) -> T:
    """`work(*args)` in this process, any failure other than a `CorpusError` refused as the child refuses it."""
    try:
        return work(*args)
    except CorpusError:
        raise
    except MemoryError as e:
        raise CorpusError(name, "ran out of memory while being read") from e
    except Exception as e:
        raise CorpusError(name, f"could not be read ({_reason(e)})") from e


def _result(outcome: tuple[str, Any], exitcode: int | None, name: str, limits: Limits) -> Any:
    kind, value = outcome
    if kind == "ok":
        return value
    if kind == "refused":
        raise _rebuilt(value)
    if kind == "failed":
        raise CorpusError(name, f"could not be read ({value})")
    if kind == "stuck":
        raise CorpusError(name, f"was still being read after {wall_s(limits):.0f} s", _HINT.format("PARSE_CPU_S"))
    if kind == "memory":
        raise CorpusError(name, f"needs more than {limits.parse_memory_bytes:,} bytes of memory to read",
                          _HINT.format("PARSE_MEMORY_BYTES"))
    if exitcode in (-signal.SIGXCPU, -signal.SIGKILL):  # the soft CPU limit, or the hard one a second later
        raise CorpusError(name, f"needs more than {limits.parse_cpu_s} s of CPU time to read",
                          _HINT.format("PARSE_CPU_S"))
    raise CorpusError(name, f"could not be read (the reading process ended with code {exitcode})")


def _error_state(e: CorpusError) -> tuple[type[CorpusError], dict[str, Any]]:
    """A `CorpusError` as it crosses the pipe (its __init__ takes more than the message pickling keeps)."""
    return type(e), dict(vars(e))


def _rebuilt(state: tuple[type[CorpusError], dict[str, Any]]) -> CorpusError:
    kind, fields = state
    error = kind.__new__(kind)
    Exception.__init__(error, fields.get("message", ""))
    error.__dict__.update(fields)
    return error


def _reason(e: BaseException) -> str:
    """What went wrong, without the paths an OS error carries."""
    if isinstance(e, RecursionError):
        return "nested too deeply"
    if isinstance(e, OSError):
        return f"{type(e).__name__}: {e.strerror or 'I/O error'}"
    return f"{type(e).__name__}: {str(e)[:200]}"
