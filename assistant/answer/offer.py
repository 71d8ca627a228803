"""The `candidates` reply: no clause clearly answers, so it states no fact of its own and offers the clauses
that may, numbered, each with its citation and a one-line gist, for the asker to pick one."""

from __future__ import annotations

import re

from assistant.answer.display import render
from assistant.answer.extractive import validity_warning
from assistant.answer.outcome import CANDIDATES, Decision
from assistant.answer.records import Answer, Citation, gist
from assistant.ingest.normalize import is_traditional

_NUMERALS = "一二三四五六七八九"
# 「2」「第二个」「第2条」「选3」「2号」: a reply that picks one of the numbered candidates
_CHOICE = re.compile(rf"^(?:选|要|看|查看)?第?([1-9{_NUMERALS}])(?:个|条|项|号)?(?:条款)?$")
OPENING = "没有找到能明确回答这个问题的条款。以下条款可能相关："
PICK_HINT = "回复序号查看条款。"


def offer(question: str, decision: Decision, latest: str = "") -> Answer:
    """The candidates of `decision` as a numbered list, in the asker's script; the clauses are the answer's
    `candidates` (role "candidate"), not its citations: nothing is claimed from them."""
    traditional = is_traditional(latest or question)
    offered = [Citation(n, c.clause, c.relevance, role="candidate") for n, c in enumerate(decision.candidates, 1)]
    lines = [render(OPENING, traditional)]
    lines += [render(f"{c.n}. {c.reference()}：{gist(c.clause)}", traditional) for c in offered]
    warnings = list(dict.fromkeys(w for c in offered if (w := validity_warning(c.clause))))
    text = "\n".join(lines) + "\n" + render(PICK_HINT, traditional)
    if warnings:
        text = "\n".join(render(w, traditional) for w in warnings) + "\n\n" + text
    return Answer(question, text, refused=False, warnings=warnings, outcome=CANDIDATES,
                  confidence=decision.confidence, candidates=offered)


def parse_choice(text: str) -> int | None:
    """The number a reply picks (「2」, 「第二个」, 「第2条」, full-width digits too), or None when it is not a pick."""
    folded = re.sub(r"[\s。.！!？?，,、]", "", text).translate(str.maketrans("１２３４５６７８９", "123456789"))
    found = _CHOICE.match(folded) if len(folded) <= 8 else None
    if found is None:
        return None
    digit = found.group(1)
    return int(digit) if digit.isdigit() else _NUMERALS.index(digit) + 1
