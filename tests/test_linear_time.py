"""Every parser and display function takes time linear in its input, on the inputs that make a backtracking regex
or a tree builder superlinear: long runs of `(`, `（`, `<!--`, `第一条`, digits, Chinese numerals, unpunctuated
Chinese, line breaks, deeply nested HTML. Each is run at 10× and 100× a base length; the 100× run must take less
than 30× the 10× run (linear: 10×, quadratic: 100×) plus a small constant. CPU time of this process is measured,
so other processes on the machine do not make it flaky."""

from __future__ import annotations

import random
import sys
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import ROOT

sys.path.insert(0, str(ROOT / "bench"))

from assistant.answer.display import render
from assistant.answer.extractive import _SHORT_NAME
from assistant.answer.sentences import sentence_units
from assistant.index.lexical import tokenize
from assistant.ingest.clauses import parse_clauses
from assistant.ingest.html import html_lines
from assistant.ingest.loaders import build_document, load_document
from assistant.ingest.normalize import normalize
from assistant.retrieve import _STATES_FIGURE, _STATES_PARTICULAR

SLACK_S = 0.05  # CPU time that is noise, not growth


def _cjk(n: int) -> str:
    chars = "政务公开考核分值是多少市里县区乡镇办理申请材料审批服务群众企业"
    pick = random.Random(n).choice
    return "".join(pick(chars) for _ in range(n))


# name → (text of about n characters); each makes some rule or parser superlinear if one is
RUNS: dict[str, Callable[[int], str]] = {
    "open bracket and a long run": lambda n: "(" + _cjk(n),
    "full-width open bracket and a long run": lambda n: "（" + _cjk(n),
    "open brackets": lambda n: "(" * n,
    "comment openers": lambda n: "<!--" * (n // 4),
    "article markers": lambda n: "第一条" * (n // 3),
    "article marker lines": lambda n: "第一条\n" * (n // 4),
    "digits": lambda n: "1" * n,
    "Chinese numerals": lambda n: "一" * n,
    "unpunctuated Chinese": _cjk,
    "one character repeated": lambda n: "中" * n,
    "line breaks between Chinese": lambda n: "中" + "\n" * n + "文",
    "spaces": lambda n: "中" + " " * n + "x",
    "title kinds and brackets": lambda n: "办法（" * (n // 3),
    "table rule": lambda n: "|" + "---|" * (n // 4) + "x",
}

# name → (function, base length): the base is the 10× size; quadratic behaviour there already costs ~0.1 s
FUNCTIONS: dict[str, tuple[Callable[[str], object], int]] = {
    "display.render": (lambda text: render(text, False), 4_000),
    "sentences.sentence_units": (sentence_units, 4_000),
    "lexical.tokenize": (tokenize, 2_000),
    "normalize": (normalize, 4_000),
    "document and clauses": (lambda text: parse_clauses(build_document("t", text, {})), 4_000),
    "retrieve's figure rules": (lambda text: (_STATES_FIGURE.search(text), _STATES_PARTICULAR.search(text)), 4_000),
    "extractive's short name": (lambda text: _SHORT_NAME.search(text), 4_000),
    "html_lines": (html_lines, 4_000),
}


def cpu_time(fn: Callable[[str], object], text: str) -> float:
    """CPU seconds of one call, without the collector's passes (their cost grows with everything the test
    process holds, not with this input)."""
    import gc

    gc.collect()
    gc.disable()
    try:
        started = time.process_time()
        fn(text)
        return time.process_time() - started
    finally:
        gc.enable()


def assert_linear(fn: Callable[[str], object], make: Callable[[int], str], base: int) -> None:
    fn(make(base // 10))  # warm-up: imports, jieba's dictionary, compiled patterns
    small = min(cpu_time(fn, make(base)) for _ in range(3))
    large = min(cpu_time(fn, make(base * 10)) for _ in range(2))
    assert large < 30 * small + SLACK_S, f"{base:,} chars: {small:.4f} s; {base * 10:,} chars: {large:.4f} s"


@pytest.mark.parametrize("function", FUNCTIONS)
@pytest.mark.parametrize("run", RUNS)
def test_text_paths_are_linear(function: str, run: str):
    fn, base = FUNCTIONS[function]
    assert_linear(fn, RUNS[run], base)


def test_deeply_nested_html_is_read_in_linear_time():
    def nested(n: int) -> str:
        return "<div><span>" * (n // 11) + "第一条　内容。" + "</span></div>" * (n // 11)

    assert_linear(html_lines, nested, 100_000)
    lines, _ = html_lines(nested(1_100_000))  # 100,000 elements deep
    assert lines == ["第一条　内容。"]


def test_a_ten_megabyte_page_of_tags_is_read_within_bounded_memory():
    import subprocess

    script = ("import resource; from assistant.ingest.html import html_lines\n"
              "before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss\n"
              "lines, _ = html_lines('<p>第一条<b>内容</b></p>\\n' * 416_667)\n"
              "print(len(lines), (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)")
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120,
                          cwd=ROOT)
    assert done.returncode == 0, done.stderr
    lines, grown_mb = map(int, done.stdout.split())
    assert lines == 416_667
    assert grown_mb < 300, f"reading 10 MB of HTML grew the peak RSS by {grown_mb} MB"


@pytest.mark.parametrize("suffix", [".md", ".txt", ".html"])
@pytest.mark.parametrize("run", ["comment openers", "open bracket and a long run", "article marker lines",
                                 "line breaks between Chinese", "unpunctuated Chinese"])
def test_loading_a_file_is_linear(tmp_path: Path, suffix: str, run: str):
    def load(text: str) -> object:
        file = tmp_path / f"doc{suffix}"
        file.write_text("标题\n\n" + text, encoding="utf-8")
        try:
            return parse_clauses(load_document(file, tmp_path))
        except Exception as e:  # a refusal is an answer too, as long as it comes at once
            return e

    assert_linear(load, RUNS[run], 4_000)


def test_a_pdf_of_dense_rules_is_read_quickly():
    from probe_stall import ruled_pdf

    from assistant.ingest.limits import Limits
    from assistant.ingest.office import pdf_lines

    started = time.process_time()
    lines, _ = pdf_lines(ruled_pdf(4_000), "rules.pdf", Limits())
    assert time.process_time() - started < 5
    assert lines == ["Rules for testing", "Rule 1. This page is for testing."]


def test_a_docx_declaring_expanding_entities_is_refused_by_name():
    from probe_stall import entity_docx

    from assistant.errors import CorpusError
    from assistant.ingest.office import docx_lines

    with pytest.raises(CorpusError, match="entity.docx"):
        docx_lines(entity_docx(), "entity.docx")


def test_no_clause_is_longer_than_the_bound():
    doc = build_document("t", "第一条（" + _cjk(48_000) + "\n第二条　短的一条。", {})
    clauses = parse_clauses(doc, max_chars=400)
    assert max(len(c.text) for c in clauses) <= 400
    assert "".join(c.text for c in clauses if c.label.startswith("第一条")).replace("\n", "") == \
        "第一条（" + _cjk(48_000)
    assert [c.label for c in clauses][-1] == "第二条"
