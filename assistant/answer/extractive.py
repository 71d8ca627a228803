"""The default answer: the most relevant sentences of the top clauses, verbatim, each tagged [n]."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable

from assistant.answer.records import Answer, Citation
from assistant.config import AnswerSettings
from assistant.index.lexical import LexicalIndex, tokenize
from assistant.ingest.normalize import is_traditional, normalize, to_simplified, to_traditional
from assistant.ingest.records import NOT_IN_FORCE, Clause, expired
from assistant.retrieve import JUDGED, Candidate, Retrieval, bigrams, same_content

_SENTENCE = re.compile(r"[^。！？；!?;\n]+[。！？；!?;]?")
_LEADING_MARKER = re.compile(
    r"^\s*(?:[（(][一二三四五六七八九十\d]{1,3}[)）]|[一二三四五六七八九十]{1,3}、|\d{1,2}[、.．]"
    r"|第[〇零一二三四五六七八九十百千两\d]+条(?:之[一二三四五六七八九十\d]+)?\s*|[答]\s*[:：])\s*"
)
# A further clause is cited only if it contains at least this (IDF-weighted) share of the question's terms:
# similarity alone is no evidence that it says anything about the question.
EXTRA_COVERAGE = 0.1
_QUESTION_LINE = re.compile(r"^\s*[问問]\s*[\d一二三四五六七八九十]*\s*[:：]")


def split_sentences(text: str) -> list[str]:
    """Sentences of a clause, without its leading number and without an interpretation's question."""
    sentences: list[str] = []
    for line in text.split("\n"):
        if _QUESTION_LINE.match(line):
            continue
        for i, sentence in enumerate(_SENTENCE.findall(line)):
            sentence = _LEADING_MARKER.sub("", sentence, count=1) if i == 0 else sentence
            if sentence.strip(" ，,、"):
                sentences.append(sentence.strip())
    return sentences


def render(text: str, traditional: bool) -> str:
    """The user's script: Simplified unless the question was written in Traditional."""
    return to_traditional(text) if traditional else to_simplified(text)


def validity_warning(clause: Clause, today: dt.date | None = None) -> str:
    """A plain warning when the clause's document is not in force, naming its replacement if known; else ''."""
    title = clause.title.strip("《》")
    expiry = clause.metadata.get("expiry_date", "")[:10]
    if clause.status in NOT_IN_FORCE:
        warning = f"注意：《{title}》的状态为“{clause.status}”，所引内容可能已不再适用。"
    elif expired(expiry, today):
        warning = f"注意：《{title}》已于{expiry}到期，所引内容可能已不再适用。"
    else:
        return ""
    new_title = clause.metadata.get("replaced_by_title", "").strip("《》")
    if new_title:
        date = clause.metadata.get("replaced_by_date", "")
        which = "现行版本" if new_title == title else "现行文件"
        warning += f"{which}为《{new_title}》" + (f"（{date}公布）" if date else "") + "，请以其为准。"
    return warning


def refusal(question: str, settings: AnswerSettings) -> Answer:
    traditional = is_traditional(question)
    text = render("抱歉，在已收录的政策文件中没有找到与您的问题相关的内容，无法给出有依据的回答。", traditional)
    return Answer(question, f"{text}{render(settings.referral, traditional)}", refused=True)


def compose(
    retrieval: Retrieval,
    settings: AnswerSettings,
    lexical: LexicalIndex,
    fetch: Callable[[list[str]], dict[str, Clause]],
) -> Answer:
    """Build a cited extractive answer, or a refusal when no clause is relevant enough."""
    question = retrieval.question
    if not retrieval.relevant:
        return refusal(question, settings)
    chosen = _choose(retrieval.candidates, settings)
    citations = _with_interpreted(chosen, retrieval.candidates, fetch, settings)
    tokens = tokenize(retrieval.normalized)
    traditional = is_traditional(question)
    lines: list[str] = []
    budget = settings.max_sentences
    for citation in citations:
        picked = _pick_sentences(citation, tokens, lexical, first=citation.n == 1, budget=budget)
        if citation.role == "interpreted" and lines and picked and _restates(lines[-1], picked):
            # the interpretation just said this in other words: cite the clause beside it, don't repeat it
            citation.sentences = picked
            lines[-1] += f"[{citation.n}]"
            continue
        citation.sentences = picked
        budget -= len(picked)
        lines.extend(f"{render(s, traditional)}[{citation.n}]" for s in picked)
        if budget <= 0:
            break
    citations = [c for c in citations if c.sentences]
    warnings = list(dict.fromkeys(w for c in citations if (w := validity_warning(c.clause))))
    body = "".join(lines)
    return Answer(question, answer_text(body, citations, warnings, traditional), refused=False,
                  citations=citations, warnings=warnings, body=body)


def answer_text(body: str, citations: list[Citation], warnings: list[str], traditional: bool) -> str:
    """The layout every cited answer shares: validity warnings, the body, then 依据： and a line per citation."""
    sources = "\n".join(f"[{c.n}] {c.reference()}" for c in citations)
    head = "\n".join(render(w, traditional) for w in warnings)
    return "\n\n".join(part for part in (head, body, render("依据：", traditional) + "\n" + sources) if part)


def _restates(line: str, sentences: list[str]) -> bool:
    """True when most of the sentences' character bigrams already stand in the line."""
    said = bigrams(re.sub(r"\[\d+\]", "", line))
    new = bigrams("".join(sentences))
    return bool(new) and len(new & said) / len(new) >= 0.6


def _choose(candidates: list[Candidate], settings: AnswerSettings) -> list[Candidate]:
    top = candidates[0]
    chosen = [top]
    floor = _floor(top, settings)
    for candidate in candidates[1:]:
        if len(chosen) >= settings.max_citations:
            break
        if (candidate.fused >= settings.relative_cut * top.fused and _relevant_further(candidate, floor)
                and not any(same_content(candidate.clause, c.clause) for c in chosen)):
            chosen.append(candidate)
    return chosen


def _with_interpreted(chosen: list[Candidate], candidates: list[Candidate],
                      fetch: Callable[[list[str]], dict[str, Clause]], settings: AnswerSettings) -> list[Citation]:
    """Citations in order. An interpretation and the policy clause it explains are cited as a pair, the
    interpretation first (it says it in plain words) and the clause right after it: when the interpretation is
    chosen, its clause follows it; when the clause is chosen and a relevant interpretation of it was retrieved
    (judged relevant as a further citation would be), that interpretation goes before it. Which of the two ranked
    higher does not matter."""
    floor = _floor(candidates[0], settings)
    explaining: dict[str, Candidate] = {}
    for candidate in candidates[:JUDGED]:
        if candidate.clause.metadata.get("kind") == "interpretation" and _relevant_further(candidate, floor):
            for clause_id in candidate.clause.refers_to:
                explaining.setdefault(clause_id, candidate)
    wanted = [cid for c in chosen for cid in c.clause.refers_to]
    interpreted = fetch(wanted) if wanted else {}
    citations: list[Citation] = []
    seen: set[str] = set()

    def cite(clause: Clause, score: float, role: str = "retrieved") -> None:
        seen.add(clause.clause_id)
        citations.append(Citation(len(citations) + 1, clause, score, role=role))

    for candidate in chosen:
        clause = candidate.clause
        if clause.clause_id in seen:
            continue
        interpretation = explaining.get(clause.clause_id)
        if interpretation is not None and interpretation.clause.clause_id not in seen:
            cite(interpretation.clause, interpretation.relevance)
            cite(clause, candidate.relevance, role="interpreted")
            continue
        cite(clause, candidate.relevance)
        for clause_id in clause.refers_to:
            if clause_id in interpreted and clause_id not in seen:
                cite(interpreted[clause_id], candidate.relevance, role="interpreted")
    return citations


def _floor(top: Candidate, settings: AnswerSettings) -> float:
    return max(0.5, settings.relative_relevance * top.relevance)


def _relevant_further(candidate: Candidate, floor: float) -> bool:
    """Relevant enough to be cited beside the best clause: by relevance, and by containing the question's terms
    (similarity alone is no evidence that a clause says anything about the question)."""
    return candidate.relevance >= floor and candidate.coverage >= EXTRA_COVERAGE


def _pick_sentences(citation: Citation, tokens: list[str], lexical: LexicalIndex, first: bool,
                    budget: int) -> list[str]:
    """The clause's sentences that share most of the question's vocabulary, in their own order."""
    sentences = split_sentences(citation.clause.text)
    if not sentences or budget <= 0:
        return []
    scored = [(lexical.coverage(tokens, normalize(s)), i) for i, s in enumerate(sentences)]
    best = max(scored)
    want = min(budget, 2 if first else 1)
    picked = {best[1]}
    for score, i in sorted(scored, reverse=True):
        if len(picked) >= want:
            break
        if score > 0 and score >= 0.5 * best[0]:
            picked.add(i)
    if first and len(picked) < want and 0 not in picked and len(sentences[0]) <= 40:
        picked.add(0)  # the clause's own topic sentence frames the answer
    return [sentences[i] for i in sorted(picked)]
