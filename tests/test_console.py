"""What the CLI writes on stderr besides results: progress lines for a log file, and the library's notices."""

import io
import subprocess
import sys
from pathlib import Path

import pytest

from assistant.console import LogLines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_log_gets_whole_lines_at_most_every_tenth_and_every_few_seconds():
    out, clock = io.StringIO(), Clock()
    progress = LogLines(out, clock)
    for done in range(1, 1001):
        clock.now += 0.1  # 100 s in all
        progress("embedding", done, 1000)
    lines = out.getvalue().splitlines(keepends=True)
    assert all(line.endswith("\n") and "\r" not in line and "\x1b" not in line for line in lines)
    assert lines[-1] == "embedding: 1000/1000 clauses (100%)\n"
    assert lines[0] == "embedding: 100/1000 clauses (10%)\n" and 5 <= len(lines) <= 11


def test_a_fast_phase_gets_only_its_last_line_and_an_empty_one_none():
    out, clock = io.StringIO(), Clock()
    progress = LogLines(out, clock)
    for done in range(1, 38):
        progress("storing", done, 37)
    progress("embedding", 0, 0)
    progress("reading", 1, 2)
    progress("reading", 2, 2)
    assert out.getvalue() == "storing: 37/37 clauses (100%)\nreading: 2/2 documents (100%)\n"


def test_the_cli_shows_the_model_notice_plainly_and_hides_other_info():
    code = ("import logging; from assistant.console import configure_logging; configure_logging(); "
            "logging.getLogger('assistant.index.bundled_model').info('first use: preparing'); "
            "logging.getLogger('assistant.service').info('not for the terminal'); "
            "logging.getLogger('assistant.service').warning('a warning')")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stderr == "first use: preparing\nWARNING assistant.service: a warning\n"


def test_materialising_the_bundled_model_says_what_and_where_before_the_slow_part(tmp_path: Path, monkeypatch,
                                                                                   caplog):  # type: ignore[no-untyped-def]
    from assistant.index import bundled_model

    def slow_part(path: Path) -> None:
        raise RuntimeError("stopped before reading the 470 MB")

    monkeypatch.setattr(bundled_model, "read_blob", slow_part)
    target = tmp_path / "cache" / "multilingual-e5-small-v1"
    with caplog.at_level("INFO", logger="assistant.index.bundled_model"), pytest.raises(RuntimeError):
        bundled_model.materialize(target)
    assert [r.getMessage() for r in caplog.records] == [
        f"first use: preparing the bundled embedding model (about 470 MB, once) in {target} …"]
