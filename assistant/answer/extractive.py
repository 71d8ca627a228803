"""The default answer, composed without an LLM: the sentences of the cited clauses that answer what was asked,
the one carrying the asked fact first, whole and verbatim, each tagged [n]; short, and nothing from a clause that
does not itself address the question."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from dataclasses import dataclass

from assistant.answer.asked import carries, question_kinds
from assistant.answer.display import render
from assistant.answer.records import Answer, Citation
from assistant.answer.sentences import Sentence, heading_of, sentence_units, strip_marker
from assistant.config import AnswerSettings
from assistant.index.lexical import LexicalIndex, tokenize
from assistant.ingest.layout import DOCUMENT_KIND
from assistant.ingest.normalize import is_traditional, normalize
from assistant.ingest.records import NOT_IN_FORCE, Clause, expired
from assistant.retrieve import JUDGED, Candidate, Retrieval, bigrams, same_content

# A further clause is cited only if it contains at least this (IDF-weighted) share of the question's terms:
# similarity alone is no evidence that it says anything about the question.
EXTRA_COVERAGE = 0.1
# …and if its best sentence (read with its heading) covers at least this share of what the best clause's does.
ADDRESSES = 0.6
FACT_KINDS = ("when", "how_much", "who")  # a question for one fact is answered once a sentence gives it
KIND_BONUS = 0.25  # a sentence carrying the asked kind of fact (a deadline for 什么时候) ranks above its peers
# the kind word a document is called by in a frame: 根据通知7、（一）推进政府网站集约化建设的要求，…
# (the bracket holds no bracket: `[^）]*` would run from every 办法（ in a title to its end, quadratic)
_SHORT_NAME = re.compile(rf"({DOCUMENT_KIND})(?:（[^（）]*+）)?$")


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
    latest: str = "",
) -> Answer:
    """Build a cited extractive answer, or a refusal when no clause is relevant enough. `latest`: the question
    as the asker last put it, when `retrieval` was made with a standalone version of a follow-up (its kind —
    什么时候, 多少 — decides what goes first)."""
    question = retrieval.question
    if not retrieval.relevant:
        return refusal(question, settings)
    chosen = _choose(retrieval.candidates, settings)
    citations = _with_interpreted(chosen, retrieval.candidates, fetch, settings)
    traditional = is_traditional(latest or question)
    picks, by_citation = _picks(citations, tokenize(retrieval.normalized), question_kinds(latest or question),
                                lexical)
    lines: list[str] = []
    used: list[Citation] = []
    size = 0

    def say(pick: _Pick) -> int | None:
        """Add the pick's sentence (framed by its heading when it needs it) unless the answer is long enough; an
        item of a list inside a sentence comes with the sentence's lead-in and the list's other items."""
        nonlocal size
        items = _whole_list(pick.citation, fetch)
        if items:
            lead, members = items
            text = render(lead, traditional) + "".join(
                f"{render(c.clause.text, traditional)}[{id(c)}]" for c in members)
        else:
            text = _frame(pick, used, traditional) + render(pick.unit.text, traditional) + f"[{id(pick.citation)}]"
        length = len(re.sub(r"\[\d+\]", "", text))
        if lines and (size + length > settings.max_answer_chars or len(lines) >= settings.max_sentences):
            return None
        size += length
        for member in items[1] if items else [pick.citation]:
            cite(member, pick.unit.text if member is pick.citation else member.clause.text)
        lines.append(text)
        return len(lines) - 1

    def cite(citation: Citation, sentence: str) -> None:
        citation.sentences.append(sentence)
        if citation not in used:
            used.append(citation)

    for pick in picks:
        twin = _twin(pick, by_citation, citations)
        if twin is None:
            if not any(_restates(line, [pick.unit.text]) for line in lines):  # not said already
                say(pick)
            continue
        # the interpretation says what its clause says, in plain words: its sentence, citing both
        at = next((i for i, line in enumerate(lines) if _restates(line, [twin.unit.text])), None)
        at = say(twin) if at is None else at
        if at is not None:
            cite(pick.citation, pick.unit.text)
            lines[at] += f"[{id(pick.citation)}]"
    for n, citation in enumerate(used, 1):  # numbered as the answer cites them
        lines = [line.replace(f"[{id(citation)}]", f"[{n}]") for line in lines]
        citation.n = n
    warnings = list(dict.fromkeys(w for c in used if (w := validity_warning(c.clause))))
    body = "".join(lines)
    return Answer(question, answer_text(body, used, warnings, traditional), refused=False,
                  citations=used, warnings=warnings, body=body)


@dataclass
class _Pick:
    citation: Citation
    unit: Sentence
    heading: str
    score: float


def _picks(citations: list[Citation], tokens: list[str], kinds: list[str],
           lexical: LexicalIndex) -> tuple[list[_Pick], dict[int, list[_Pick]]]:
    """The sentences an answer may use, in the order it uses them: the one that best answers what was asked
    first (a sentence carrying the asked kind of fact ranks above its peers), then the first clause's next best,
    then one from each further clause that itself addresses the question. A heading is never picked: it frames
    its clause's sentence."""
    scored: list[list[_Pick]] = []
    for citation in citations:
        units = sentence_units(citation.clause.text)
        heading = heading_of(units)
        content = [u for u in units if not u.heading] or [Sentence(u.text) for u in units]
        picks = [_Pick(citation, unit, heading, _score(unit.text, heading, tokens, kinds, lexical))
                 for unit in content]
        scored.append(sorted(picks, key=lambda p: -p.score))
    by_citation = {id(picks[0].citation): picks for picks in scored if picks}
    if not scored or not scored[0]:
        return [], by_citation
    # the first clause and the clause it is paired with (an interpretation and the clause it explains) answer;
    # a further clause only if it addresses the question itself
    best = max(p.score for p in scored[0])
    key = _key_term(tokens, scored[0][0].citation.clause, lexical)
    passes: list[bool] = []
    for i, picks in enumerate(scored):  # an interpreted clause answers when the interpretation before it does
        pair = bool(picks) and picks[0].citation.role == "interpreted" and i > 0 and passes[i - 1]
        passes.append(bool(picks) and (i == 0 or pair or (
            picks[0].score >= ADDRESSES * best and key in normalize(picks[0].citation.clause.text))))
    answering = [picks for picks, ok in zip(scored, passes, strict=True) if ok]
    # the best clause (with the clause it is paired with) gives the first sentence: retrieval ranked it first
    primary = [picks for picks in answering[:2] if picks is answering[0] or picks[0].citation.role == "interpreted"]
    first = max(((p.score, -i, p) for i, picks in enumerate(primary) for p in picks), key=lambda t: t[:2])[2]
    order = [first]
    order += [p for p in answering[0][:2] if p is not first]
    for picks in answering[1:]:
        order += [p for p in picks[:1] if p is not first]
    rest = [p for p in order[1:] if p.score > 0]
    if kinds and kinds[0] in FACT_KINDS and carries(kinds[0], first.unit.text):
        rest = [p for p in rest if carries(kinds[0], p.unit.text)]  # the asked fact is given: nothing else
    return [first, *rest], by_citation


def _twin(pick: _Pick, by_citation: dict[int, list[_Pick]], citations: list[Citation]) -> _Pick | None:
    """For a sentence of an interpreted clause, the sentence of the interpretation cited with it that restates
    it; None when there is none."""
    if pick.citation.role != "interpreted":
        return None
    for citation in citations:
        if pick.citation.clause.clause_id in citation.clause.refers_to:
            return next((p for p in by_citation.get(id(citation), []) if _restates(p.unit.text, [pick.unit.text])),
                        None)
    return None


_ITEM_MARKER = re.compile(r"^(?:[（(](\d{1,2})[)）]|(\d{1,2})[.．、]|([①-⑳]))$")


def _whole_list(citation: Citation,
                fetch: Callable[[list[str]], dict[str, Clause]]) -> tuple[str, list[Citation]] | None:
    """(the lead-in, the list's items as citations) when the clause is an item of a list inside a sentence
    (…包括：（1）…；（2）…。, each item a clause of its own); None otherwise. The items run from the first to the
    one that closes the sentence."""
    clause = citation.clause
    base, _, marker = clause.clause_id.rpartition("/")
    form = _ITEM_MARKER.match(marker)
    if len(clause.path) < 2 or not form or not clause.path[-2].rstrip().endswith(("：", ":")):
        return None
    names = [f"（{i}）" for i in range(1, 21)] if form.group(1) else [f"{i}{marker[-1]}" for i in range(1, 21)] \
        if form.group(2) else [chr(0x2460 + i) for i in range(20)]
    found = fetch([f"{base}/{name}" for name in names])
    members: list[Citation] = []
    for name in names:
        item = clause if f"{base}/{name}" == clause.clause_id else found.get(f"{base}/{name}")
        if item is None:
            break
        members.append(citation if item is clause else Citation(0, item, citation.score, role="list"))
        if item.text.rstrip().endswith(("。", "！", "？")):
            break
    if citation not in members:
        return None
    lead = re.split(r"(?<=[。！？])", clause.path[-2].strip())[-1] or clause.path[-2].strip()
    return strip_marker(lead), members


def _key_term(tokens: list[str], clause: Clause, lexical: LexicalIndex) -> str:
    """The question's most telling term (the rarest in the corpus) that the best clause holds: a further clause
    that lacks it speaks of something else (政府信息公开 where 公共资源配置 was asked)."""
    text = normalize(clause.text)
    held = [t for t in tokens if t in text]
    return max(held, key=lexical.idf) if held else ""


def _score(sentence: str, heading: str, tokens: list[str], kinds: list[str], lexical: LexicalIndex) -> float:
    """How well the sentence, read under its heading, answers the question: the share of the question's terms it
    holds, and a bonus when it carries the kind of fact asked for."""
    score = lexical.coverage(tokens, normalize(f"{heading}{sentence}"))
    if kinds and carries(kinds[0], sentence):
        score += KIND_BONUS
    elif any(carries(kind, sentence) for kind in kinds[1:]):
        score += KIND_BONUS / 2
    return score


def _frame(pick: _Pick, used: list[Citation], traditional: bool) -> str:
    """「根据通知7、（一）推进政府网站集约化建设的要求，」 before the first sentence taken from a clause with a
    heading, when the sentence does not say what the heading says."""
    if not pick.heading or pick.citation in used or _restates(pick.unit.text, [pick.heading]):
        return ""
    title = pick.citation.clause.title.strip("《》")
    name = match.group(1) if (match := _SHORT_NAME.search(title)) else "文件"
    return render(f"根据{name}{pick.citation.clause.label}{pick.heading}的要求，", traditional)


def answer_text(body: str, citations: list[Citation], warnings: list[str], traditional: bool) -> str:
    """The layout every cited answer shares: validity warnings, the body, then 依据： and a line per citation."""
    sources = "\n".join(render(f"[{c.n}] {c.reference()}", traditional) for c in citations)
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
