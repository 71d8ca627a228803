"""The answer records every door shows: `Answer` and its `Citation`s."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from assistant.answer.sentences import strip_marker
from assistant.ingest.records import Clause


def reference(clause: Clause) -> str:
    """《title》（文号） label — the way a person cites a clause."""
    number = f"（{clause.doc_number}）" if clause.doc_number else ""
    return f"《{clause.title.strip('《》')}》{number} {clause.label}".strip()


def gist(clause: Clause, limit: int = 30) -> str:
    """One line saying what a clause is about: the start of its first sentence, without its number."""
    first = re.split(r"(?<=[。！？；;])", strip_marker(clause.text.strip()), maxsplit=1)[0]
    text = re.sub(r"\s+", "", strip_marker(first.lstrip("问問：: 　")))
    return text if len(text) <= limit else text[:limit] + "…"


@dataclass
class Citation:
    """A clause an answer cites as [n]."""

    n: int
    clause: Clause
    score: float
    # Why it is cited: "retrieved" (it answered the question), "interpreted" (the clause that a cited
    # interpretation explains) or "list" (another item of the list, inside one sentence, that a retrieved item is in).
    role: str = "retrieved"
    sentences: list[str] = field(default_factory=list)

    def reference(self) -> str:
        return reference(self.clause)

    def to_json(self) -> dict[str, Any]:
        return {
            "n": self.n,
            "doc_id": self.clause.doc_id,
            "clause_id": self.clause.clause_id,
            "title": self.clause.title,
            "doc_number": self.clause.doc_number,
            "clause": self.clause.label,
            "text": self.clause.text,
            "status": self.clause.status,
            "in_force": self.clause.in_force(),
            "replaced_by": self.clause.metadata.get("replaced_by_title", ""),
            "kind": self.clause.metadata.get("kind", "policy"),
            "role": self.role,
            "score": round(self.score, 4),
            "sentences": self.sentences,
        }


@dataclass
class Answer:
    """What the assistant says to one question."""

    question: str
    text: str
    refused: bool
    citations: list[Citation] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    body: str = ""
    mode: str = "extractive"  # or "generative" (written by the LLM and verified)
    verified: bool | None = None  # generative: every sentence cited a given clause and its figures were found
    checks: list[dict[str, Any]] = field(default_factory=list)  # generative: per citation
    fallback: str = ""  # why an LLM answer was not used, when the LLM is on
    asked: str = ""  # the standalone question retrieved with, when it differs (a follow-up)
    # how sure (answer/outcome.py): "answered", "candidates" (no claim of its own; `candidates` numbered) or "refused"
    outcome: str = ""
    confidence: float | None = None  # the calibrated probability that the first clause answers the question
    candidates: list[Citation] = field(default_factory=list)
    chosen: int | None = None  # answered from the asker's pick of an earlier answer's candidates (1-based)

    def __post_init__(self) -> None:
        if not self.outcome:
            self.outcome = "refused" if self.refused else "answered"

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "question": self.question,
            "answer": self.text,
            "refused": self.refused,
            "warnings": self.warnings,
            "citations": [c.to_json() for c in self.citations],
            "mode": self.mode,
            "outcome": self.outcome,
            "confidence": round(self.confidence, 4) if self.confidence is not None else None,
            "candidates": [{**c.to_json(), "reference": c.reference(), "gist": gist(c.clause)}
                           for c in self.candidates],
        }
        if self.chosen is not None:
            data["chosen"] = self.chosen
        if self.mode == "generative":
            data.update(verified=self.verified, checks=self.checks)
        if self.fallback:
            data["fallback"] = self.fallback
        if self.asked:
            data["standalone_question"] = self.asked
        return data
