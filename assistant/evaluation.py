"""Run an eval file (JSON lines of questions with expected clauses) and compute retrieval metrics."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.answer.records import Answer, Citation
from assistant.errors import AssistantError
from assistant.ingest.normalize import normalize

KINDS = ("answerable", "out_of_corpus")


@dataclass
class EvalItem:
    id: str
    question: str
    kind: str
    expect: list[str | dict[str, str]]


@dataclass
class EvalResult:
    """Per-question outcomes and the summary metrics."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, float | int]:
        answerable = [r for r in self.rows if r["kind"] == "answerable"]
        outside = [r for r in self.rows if r["kind"] == "out_of_corpus"]

        def share(rows: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> float:
            return round(sum(1 for r in rows if test(r)) / len(rows), 4) if rows else 0.0

        return {
            "questions": len(self.rows),
            "answerable": len(answerable),
            "out_of_corpus": len(outside),
            "hit@1": share(answerable, lambda r: r["rank"] == 1),
            "hit@3": share(answerable, lambda r: r["rank"] is not None and r["rank"] <= 3),
            "mrr": round(sum(1 / r["rank"] for r in answerable if r["rank"]) / len(answerable), 4)
            if answerable else 0.0,
            "refusal_accuracy": share(outside, lambda r: r["refused"]),
            "false_refusal_rate": share(answerable, lambda r: r["refused"]),
        }


def read_eval_file(path: Path) -> list[EvalItem]:
    """Read and validate an eval file; a bad line is an error naming the line and the field."""
    items: list[EvalItem] = []
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except OSError as e:
        raise AssistantError(f"cannot read eval file {path}: {e.strerror}") from e
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        where = f"{path}:{number}"
        try:
            raw = json.loads(line)
        except json.JSONDecodeError as e:
            raise AssistantError(f"{where}: not valid JSON ({e.msg})") from e
        if not isinstance(raw, dict) or not str(raw.get("question", "")).strip():
            raise AssistantError(f"{where}: field 'question' is missing or empty")
        kind = raw.get("kind", "answerable")
        if kind not in KINDS:
            raise AssistantError(f"{where}: field 'kind' is {kind!r}", "use 'answerable' or 'out_of_corpus'")
        expect = raw.get("expect", [])
        if isinstance(expect, str | dict):
            expect = [expect]
        if kind == "answerable" and not expect:
            raise AssistantError(f"{where}: an answerable question needs 'expect'")
        items.append(EvalItem(str(raw.get("id", number)), str(raw["question"]), kind, list(expect)))
    return items


def citation_matches(citation: Citation, expected: str | dict[str, str]) -> bool:
    """A phrase matches when the clause text contains it (after t2s); {title, clause} matches the label."""
    if isinstance(expected, str):
        return normalize(expected) in normalize(citation.clause.text)
    title = normalize(expected.get("title", "")).strip("《》")
    label = normalize(expected.get("clause", ""))
    title_ok = not title or title == normalize(citation.clause.title).strip("《》")
    clause_label = normalize(citation.clause.label)
    label_ok = not label or clause_label == label or clause_label.startswith(label + "第")
    return title_ok and label_ok


def first_hit(answer: Answer, expect: list[str | dict[str, str]]) -> int | None:
    for position, citation in enumerate(answer.citations, 1):
        if any(citation_matches(citation, e) for e in expect):
            return position
    return None


def run_eval(items: list[EvalItem], ask: Callable[[str], Answer]) -> Iterator[dict[str, Any]]:
    """Ask each question; yield one row per question (rank of the first matching citation, refused)."""
    for item in items:
        answer = ask(item.question)
        yield {
            "id": item.id,
            "kind": item.kind,
            "question": item.question,
            "refused": answer.refused,
            "rank": None if answer.refused else first_hit(answer, item.expect),
            "top": answer.citations[0].reference() if answer.citations else "",
        }
