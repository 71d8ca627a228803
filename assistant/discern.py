"""Which of two near-tied clauses the question's own words point at: stretches of the question's text that stand
in one clause and not in the other (煤改电 in 二、（一）, 煤改气 in 二、（二）), found whole however a tokenizer
would split them."""

from __future__ import annotations

import re
from functools import lru_cache

from assistant.ingest.normalize import normalize
from assistant.ingest.records import Clause

_RUN = re.compile(r"[\u3400-\u9fff\w]+")
LONGEST = 8  # the longest stretch looked for: a term, not a sentence


def distinct_share(question: str, mine: str, theirs: str) -> tuple[float, float]:
    """The share of the question's characters covered by stretches of its text (two characters or more) that
    stand in `mine` and not in `theirs`, and the reverse. With `theirs` empty: the share `mine` holds."""
    runs = _RUN.findall(question)
    total = sum(len(run) for run in runs)
    if not total:
        return 0.0, 0.0
    return _covered(runs, mine, theirs) / total, _covered(runs, theirs, mine) / total


def _covered(runs: list[str], inside: str, outside: str) -> int:
    """Characters of the runs covered by their longest stretches that stand in `inside` and not in `outside`."""
    if not inside:
        return 0
    covered = 0
    for run in runs:
        marks = [False] * len(run)
        for i in range(len(run)):
            for j in range(min(len(run), i + LONGEST), i + 1, -1):  # the longest stretch from i first
                piece = run[i:j]
                if piece in inside:
                    if not outside or piece not in outside:
                        marks[i:j] = [True] * (j - i)
                    break
        covered += sum(marks)
    return covered


@lru_cache(maxsize=4096)
def _normalized(text: str) -> str:
    return normalize(text)


def clause_text(clause: Clause) -> str:
    """The clause's heading and text, normalised as questions are."""
    return _normalized(f"{clause.heading}{clause.text}")
