"""Run an eval file (JSON lines of questions with expected clauses, and optionally the facts a good answer
states, or of conversations: `{"id", "turns": [{"question", "kind", "expect"}, …]}`) and compute retrieval and
answer metrics, and for conversations turn accuracy by position."""

from __future__ import annotations

import json
import re
import statistics
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.answer.records import Answer, Citation
from assistant.answer.sentences import sentence_units
from assistant.conversation import Turn
from assistant.errors import AssistantError
from assistant.ingest.normalize import is_traditional, normalize
from assistant.ingest.records import Clause
from assistant.retrieve import Retrieval

KINDS = ("answerable", "out_of_corpus")


@dataclass
class EvalItem:
    id: str
    question: str
    kind: str
    expect: list[str | dict[str, str]]
    facts: list[str] = field(default_factory=list)  # what a good answer contains (after t2s and width folding)
    forbidden: list[str] = field(default_factory=list)  # `not`: what it must not contain
    conversation: str = ""  # the conversation this question is a turn of ("": asked alone)
    turn: int = 0  # its position in the conversation, from 1


@dataclass
class EvalResult:
    """Per-question outcomes and the summary metrics (overall and per script)."""

    rows: list[dict[str, Any]] = field(default_factory=list)

    def metrics(self) -> dict[str, Any]:
        summary = summarize(self.rows)
        for script in ("simplified", "traditional"):
            rows = [r for r in self.rows if r.get("script") == script]
            if rows and len(rows) < len(self.rows):
                summary[script] = summarize(rows)
        return summary


def summarize(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """hit@k and MRR@5 over the retrieved ranking; `cited`: the answer cites an accepted clause. A figure whose
    questions are absent (refusal accuracy without out-of-corpus questions …) is None, not 0."""
    answerable = [r for r in rows if r["kind"] == "answerable"]
    outside = [r for r in rows if r["kind"] == "out_of_corpus"]

    def share(group: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> float | None:
        return round(sum(1 for r in group if test(r)) / len(group), 4) if group else None

    def within(k: int) -> Callable[[dict[str, Any]], bool]:
        return lambda r: r["rank"] is not None and r["rank"] <= k

    return {
        "questions": len(rows),
        "answerable": len(answerable),
        "out_of_corpus": len(outside),
        "hit@1": share(answerable, within(1)),
        "hit@3": share(answerable, within(3)),
        "hit@5": share(answerable, within(5)),
        "mrr@5": round(sum(1 / r["rank"] for r in answerable if within(5)(r)) / len(answerable), 4)
        if answerable else None,
        "cited": share(answerable, lambda r: r.get("cited", False)),
        "refusal_accuracy": share(outside, lambda r: r["refused"]),
        "false_refusal_rate": share(answerable, lambda r: r["refused"]),
        **outcome_metrics(answerable, outside),
        **answer_metrics(answerable),
        **turn_metrics(rows),
    }


def outcome_metrics(answerable: list[dict[str, Any]], outside: list[dict[str, Any]]) -> dict[str, Any]:
    """How sure the answers are: the outcome mix; `precision`: an answer given as sure (`answered`) cites an
    accepted clause first; `coverage`: answerable questions answered as sure; `shown`: answerable questions whose
    accepted clause is the sure answer's first citation or one of the candidates offered; `outside_answered`:
    out-of-corpus questions answered as sure."""
    rows = answerable + outside
    sure = [r for r in rows if r.get("outcome") == "answered"]

    def share(group: list[dict[str, Any]], test: Callable[[dict[str, Any]], bool]) -> float | None:
        return round(sum(1 for r in group if test(r)) / len(group), 4) if group else None

    return {
        "outcomes": {name: sum(1 for r in rows if r.get("outcome") == name)
                     for name in ("answered", "candidates", "refused")},
        "precision": share(sure, lambda r: r["kind"] == "answerable" and r.get("first_cited", False)),
        "coverage": share(answerable, lambda r: r.get("outcome") == "answered"),
        "shown": share(answerable, lambda r: (r.get("outcome") == "answered" and r.get("first_cited", False))
                       or (r.get("outcome") == "candidates" and r.get("offered", False))),
        "outside_answered": share(outside, lambda r: r.get("outcome") == "answered"),
    }


def answer_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """What the answers say: the share of listed facts they state (a refusal states none), forbidden strings
    said, the share of cited clauses that address the question, body length and heading-only answers."""
    facts = [r for r in rows if r.get("facts_total")]
    answered = [r for r in rows if not r["refused"]]
    cited = sum(r.get("cited_total", 0) for r in answered)
    return {
        "fact_recall": round(sum(r["facts_found"] for r in facts) / sum(r["facts_total"] for r in facts), 4)
        if facts else None,
        "forbidden_said": sum(r.get("forbidden_said", 0) for r in rows),
        "citation_precision": round(sum(r.get("cited_relevant", 0) for r in answered) / cited, 4) if cited else None,
        "median_body_chars": statistics.median(lengths) if (lengths := [r["body_chars"] for r in answered
                                                                        if "body_chars" in r]) else None,
        "heading_only": sum(1 for r in answered if r.get("heading_only")),
    }


def turn_metrics(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """For conversations: the share of turns answered right (an answerable turn cites an accepted clause, an
    out-of-corpus one is refused), overall and by position in the conversation, and out-of-corpus turns refused."""
    turns = [r for r in rows if r.get("turn")]
    if not turns:
        return {}

    def right(r: dict[str, Any]) -> bool:
        return bool(r["refused"]) if r["kind"] == "out_of_corpus" else bool(r.get("cited")) and not r["refused"]

    def share(group: list[dict[str, Any]]) -> float | None:
        return round(sum(1 for r in group if right(r)) / len(group), 4) if group else None

    positions = sorted({r["turn"] for r in turns})
    return {"conversations": len({r["conversation"] for r in turns}), "turn_accuracy": share(turns),
            "by_turn": {str(n): share([r for r in turns if r["turn"] == n]) for n in positions},
            "turns_by_position": {str(n): sum(1 for r in turns if r["turn"] == n) for n in positions},
            "out_of_corpus_turns_refused": share([r for r in turns if r["kind"] == "out_of_corpus"])}


def read_eval_file(path: Path) -> list[EvalItem]:
    """Read and validate an eval file; a bad line is an error naming the line and the field. A conversation's turns
    become consecutive items (`id#n`) of that conversation."""
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
        if isinstance(raw, dict) and "turns" in raw:
            if not isinstance(raw["turns"], list) or not raw["turns"]:
                raise AssistantError(f"{where}: field 'turns' must be a non-empty list of questions")
            name = str(raw.get("id", number))
            for n, turn in enumerate(raw["turns"], 1):
                item = _item(turn, f"{name}#{n}", f"{where} turn {n}")
                item.conversation, item.turn = name, n
                items.append(item)
        else:
            items.append(_item(raw, str(raw.get("id", number)) if isinstance(raw, dict) else str(number), where))
    return items


def _item(raw: Any, name: str, where: str) -> EvalItem:
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
    facts, forbidden = (_strings(raw, name_, where) for name_ in ("facts", "not"))
    return EvalItem(name, str(raw["question"]), kind, list(expect), facts, forbidden)


def _strings(raw: dict[str, Any], name: str, where: str) -> list[str]:
    value = raw.get(name, [])
    value = [value] if isinstance(value, str) else value
    if not isinstance(value, list) or not all(isinstance(v, str) and v.strip() for v in value):
        raise AssistantError(f"{where}: field '{name}' must be a list of non-empty strings")
    return value


def clause_matches(clause: Clause, expected: str | dict[str, str]) -> bool:
    """A phrase matches when the clause text contains it (after t2s); {title, clause} matches the label."""
    if isinstance(expected, str):
        return normalize(expected) in normalize(clause.text)
    title = normalize(expected.get("title", "")).strip("《》")
    label = normalize(expected.get("clause", ""))
    title_ok = not title or title == normalize(clause.title).strip("《》")
    clause_label = normalize(clause.label)
    label_ok = not label or clause_label == label or clause_label.startswith(label + "第")
    return title_ok and label_ok


def first_hit(clauses: list[Clause], expect: list[str | dict[str, str]]) -> int | None:
    """1-based position of the first clause that an expectation accepts."""
    for position, clause in enumerate(clauses, 1):
        if any(clause_matches(clause, e) for e in expect):
            return position
    return None


def script_of(question: str) -> str:
    return "traditional" if is_traditional(question) else "simplified"


Ask = Callable[[str, list[Turn]], tuple[Answer, Retrieval]]


def run_eval(items: list[EvalItem], ask: Ask, kept_turns: int = 3) -> Iterator[dict[str, Any]]:
    """Ask each question, a conversation's turns with the turns before them (the last `kept_turns`, as the doors
    keep them); yield one row per question: rank of the first accepted clause among the retrieved candidates,
    whether the answer cites one, and whether it refused."""
    history: list[Turn] = []
    for n, item in enumerate(items):
        if not item.conversation or n == 0 or items[n - 1].conversation != item.conversation:
            history = []
        answer, retrieval = ask(item.question, history)
        if item.conversation:
            history = [*history, Turn.of(answer)][-kept_turns:]
        ranked = [c.clause for c in retrieval.candidates]
        yield {
            "id": item.id,
            "kind": item.kind,
            "script": script_of(item.question),
            "question": item.question,
            "conversation": item.conversation,
            "turn": item.turn,
            "asked": answer.asked,
            "refused": answer.refused,
            "outcome": answer.outcome,
            "confidence": answer.confidence,
            "rank": first_hit(ranked, item.expect),
            "cited": first_hit([c.clause for c in answer.citations], item.expect) is not None,
            "first_cited": bool(answer.citations) and first_hit([answer.citations[0].clause], item.expect) == 1,
            "offered": first_hit([c.clause for c in answer.candidates], item.expect) is not None,
            "top": answer.citations[0].reference() if answer.citations else "",
            **judge_answer(item, answer),
        }


def judge_answer(item: EvalItem, answer: Answer) -> dict[str, Any]:
    """The answer text against the item: facts stated, forbidden strings said, cited clauses that address the
    question (an accepted clause, or the interpretation / interpreted clause cited with one), body length, and
    whether its body is nothing but its clauses' headings."""
    body = re.sub(r"\[\d+\]", "", answer.body if not answer.refused else "")
    said = _folded(body)
    relevant = [c for c in answer.citations if any(clause_matches(c.clause, e) for e in item.expect)]
    addressing = [c for c in answer.citations if c in relevant or any(_paired(c, r) for r in relevant)]
    return {
        "facts_total": len(item.facts),
        "facts_found": sum(1 for fact in item.facts if _folded(fact) in said),
        "missing_facts": [fact for fact in item.facts if _folded(fact) not in said],
        "forbidden_said": sum(1 for text in item.forbidden if _folded(text) in said),
        "cited_total": len(answer.citations),
        "cited_relevant": len(addressing),
        "body_chars": len(body),
        "heading_only": bool(body) and _heading_only(body, answer.citations),
        "answer": body,
    }


def _folded(text: str) -> str:
    """t2s, width folding, and no spaces or punctuation: the form facts are compared in."""
    return re.sub(r"[\s，。、；：！？,.;:!?“”\"'（）()《》]", "", normalize(text))


def _paired(citation: Citation, other: Citation) -> bool:
    return (citation.clause.clause_id in other.clause.refers_to) or (other.clause.clause_id in
                                                                    citation.clause.refers_to)


def _heading_only(body: str, citations: list[Citation]) -> bool:
    """Every sentence of the body is the heading of a cited clause that has more to say than its heading."""
    headings: set[str] = set()
    for citation in citations:
        units = sentence_units(citation.clause.text)
        headings |= {_folded(u.text) for u in units if u.heading and len(units) > 1}
    sentences = [_folded(s) for s in re.split(r"(?<=[。！？])", re.sub(r"^根[据據].*?的要求，", "", body)) if s.strip()]
    return bool(sentences) and all(s in headings for s in sentences)
