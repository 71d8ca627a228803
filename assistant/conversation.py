"""Reading a question against the conversation it is asked in: `read(question, conversation) -> Reading`.

A citizen asks, reads the answer and goes on (「什么时候之前要弄完？」, 「那医院的呢？」). The question is
retrieved on its own and read against the conversation — the previous question glued before it (the rule), or
the LLM's standalone rewrite — and the evidence decides between the readings: the one whose best clause holds the
new question's own subject terms wins; an elliptical question, with no subject of its own, keeps to the clauses
the conversation has just cited; a question whose subject the corpus does not know at all is read alone, so that
it is refused rather than answered from the previous topic.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from assistant.answer.records import Answer
from assistant.index.lexical import LexicalIndex
from assistant.ingest.normalize import normalize
from assistant.retrieve import (
    JUDGED,
    Candidate,
    Retrieval,
    Retriever,
    logistic,
    logit,
    order_by_relevance,
    question_evidence,
)

# 「不是，我问的是……」: the previous question was misunderstood; what follows is what was meant.
_CORRECTION = re.compile(r"^(?:(?:不是|不对|错了)[，,。！!\s]+)?(?:我(?:是)?想?问的?是|我想问|我是说|我说的是)"
                         r"[：:，,\s]*|^(?:不是|不对|错了)[，,。！!]\s*")
# Nouns that name an aspect of what was asked (its time, its extent, its level), not a subject of its own.
_ASPECT_NOUNS = frozenset("时候 时间 方面 程度 问题 情况 东西 事情 事儿 地方 办法 方式 内容 部分 要求 规定 标准 "
                          "流程 步骤 材料 手续 条件 期限 多少 时限 结果 意见 哪些 什么 "
                          "省里 市里 县里 区里 乡里 镇里 村里 当地 本地 这里 那里 这边 那边 国内 国外".split())
_NOUN_TAGS = ("n", "vn", "s", "eng")  # jieba's nouns (n, nr, ns, nt, nz …), verbal nouns, places, Latin words
# How much a clause the conversation has just cited, its siblings and its document are favoured in an elliptical
# reading (added to the judge's logit).
CITED_BONUS, SIBLING_BONUS, DOCUMENT_BONUS = 1.5, 0.75, 0.25
MAX_TURN_CHARS = 300
MAX_TOPIC_CHARS = 60


@dataclass(frozen=True)
class Turn:
    """One earlier exchange: the question as asked, the standalone question it was read as ("" when as asked),
    and the clauses its answer cited."""

    question: str
    asked: str = ""
    cited: tuple[str, ...] = ()
    offered: tuple[str, ...] = ()  # the candidates its answer offered, numbered from 1, when it was not sure

    @property
    def reading(self) -> str:
        return self.asked or self.question

    def dumps(self) -> str:
        data = {"q": self.question[-MAX_TURN_CHARS:], "a": self.asked[-MAX_TURN_CHARS:], "c": list(self.cited)}
        if self.offered:
            data["o"] = list(self.offered)
        return json.dumps(data, ensure_ascii=False)

    @classmethod
    def of(cls, answer: Answer) -> Turn:
        """The turn an answer makes: its question, the reading retrieved with, the clauses it cited."""
        return cls(answer.question[-MAX_TURN_CHARS:], answer.asked[-MAX_TURN_CHARS:],
                   tuple(c.clause.clause_id for c in answer.citations),
                   tuple(c.clause.clause_id for c in answer.candidates))

    @classmethod
    def loads(cls, text: str) -> Turn:
        """A stored turn; a plain string (a question kept before turns were stored) is a turn without citations."""
        try:
            data = json.loads(text)
        except ValueError:
            return cls(text)
        if not isinstance(data, dict):
            return cls(text)
        return cls(str(data.get("q", "")), str(data.get("a", "")), tuple(str(c) for c in data.get("c", [])),
                   tuple(str(c) for c in data.get("o", [])))


Conversation = Sequence[Turn | str]  # earlier turns, oldest first; a string is an earlier question alone


@dataclass
class Reading:
    """How a question was read: the text retrieved with, the retrieval, and which reading it was."""

    asked: str
    retrieval: Retrieval
    how: str = "alone"  # "alone", "follow-up" (read with the conversation) or "rewrite" (the LLM's rewrite)
    own_terms: list[str] = field(default_factory=list)


Rewrite = Callable[[str, list[Turn], dict[str, str]], str | None]


def turns(conversation: Conversation) -> list[Turn]:
    return [t if isinstance(t, Turn) else Turn(t) for t in conversation if (t.question if isinstance(t, Turn) else t)]


def read(question: str, conversation: Conversation, retriever: Retriever, rewrite: Rewrite | None = None) -> Reading:
    """The reading to answer `question` from, given the conversation before it. `rewrite`: the LLM strategy (the
    question, the turns and the labels and headings of the clauses they cited → a standalone question, or None)."""
    history = turns(conversation)
    own_question = _CORRECTION.sub("", question.strip()) or question
    if own_question != question.strip():
        history = history[:-1]  # 「不是，我问的是……」: the turn before was misread; what follows is what was meant
    if not history:
        return Reading(own_question, retriever.retrieve(own_question), "alone")
    own = own_terms(own_question, retriever.lexical)
    complete = _complete(own_question, own)
    first = retriever.retrieve(own_question) if complete else None  # a whole question is read alone first
    if first is not None and first.relevant and _covered(first, own) == 1:
        return Reading(own_question, first, "alone", own)  # and the reading alone finds its subject
    in_context = _in_context(own_question, history, own, retriever, rewrite)

    def alone() -> Reading:
        return Reading(own_question, first or retriever.retrieve(own_question), "alone", own)

    if in_context.retrieval.relevant and _asks_beyond(in_context, own_question):
        # a particular, a figure or today's state that the clause read in the conversation does not give: the
        # earlier topic does not answer it, and the question is judged as it stands
        return alone()
    if not own:  # no subject of its own: it is about what was just said, or refused (it has nothing else to go on)
        return in_context
    covered_context = _covered(in_context.retrieval, own)
    if in_context.retrieval.relevant and covered_context == 1 and not complete:
        return in_context  # a short question whose subject the conversation holds: read alone, it could do no better
    reading = alone()
    if not reading.retrieval.relevant and any(retriever.lexical.df(t) == 0 for t in own):
        # its own subject is unknown to the corpus (养老金 in a corpus on government transparency): refused as it
        # stands, never answered from the previous topic
        return reading
    if not in_context.retrieval.relevant:
        return reading
    covered_alone = _covered(reading.retrieval, own)
    if not reading.retrieval.relevant:
        # refused on its own: the conversation answers it only when what it reads there holds its own subject
        return in_context if covered_context > 0 else reading
    if covered_alone > covered_context:  # it names a subject of its own that the reading alone finds
        return reading
    if covered_context > covered_alone or not complete:
        return in_context  # as well covered in the conversation, and too short to stand on its own
    return reading


def _in_context(question: str, history: list[Turn], own: list[str], retriever: Retriever,
                rewrite: Rewrite | None) -> Reading:
    """The question read with the conversation: glued to the last answered turn's reading (the rule), or as the
    LLM rewrote it; each favouring the clauses that turn cited. A rewrite is kept only when the evidence holds it as
    well as the rule's reading: as relevant, its best clause holding as many of the question's own terms, and as
    close to what was just cited."""
    # the topic is the last turn that was answered (a refused turn in between left it unchanged)
    last = next((t for t in reversed(history) if t.cited), history[-1])
    glued = f"{_topic(last.reading)} {question}"
    retrieval = retriever.retrieve(glued)
    # the cited clauses, as the glued reading retrieved them (it holds the question they answered), else read
    context = {c.clause.clause_id: c.clause for c in retrieval.candidates if c.clause.clause_id in last.cited}
    if missing := [cid for cid in last.cited if cid not in context]:
        context.update(retriever.neighbours(missing))
    readings = [Reading(glued, _favour(retrieval, context), "follow-up", own)]
    if rewrite is not None:
        earlier = retriever.neighbours([c for t in history[-3:] for c in t.cited])
        labels = {cid: f"{c.label} {c.heading}".strip() for cid, c in earlier.items()}
        text = rewrite(question, history, labels)
        if text and normalize(text) != normalize(question):
            readings.insert(0, Reading(text, _favour(retriever.retrieve(text), context), "rewrite", own))
    return max(readings, key=lambda r: (r.retrieval.relevant, _covered(r.retrieval, own), _near(r, context)))


def _topic(reading: str) -> str:
    """The earlier reading a follow-up is glued to: its last questions (a reading is questions joined by spaces),
    at most `MAX_TOPIC_CHARS` of them, so that a long conversation does not grow the text retrieved with."""
    kept: list[str] = []
    for part in reversed(reading.split(" ")):
        if kept and sum(len(k) for k in kept) + len(part) > MAX_TOPIC_CHARS:
            break
        kept.insert(0, part)
    return " ".join(kept)


def _asks_beyond(reading: Reading, question: str) -> bool:
    """Whether the question asks for a particular, a figure or today's state that the reading's best clause does
    not give (`retrieve.question_evidence`)."""
    asks = question_evidence(reading.retrieval.candidates[:1], normalize(question))
    return bool(asks["asks_unstated"] or asks["asks_figure"] or asks["asks_current"])


def _complete(question: str, own: list[str]) -> bool:
    """A question long enough, with a subject of its own, to be read as it stands even when it opens with 那 or
    points with 这个 (「这个能要求赔多少」 after describing a new matter)."""
    return bool(own) and len(re.sub(r"[\s，,。？?！!、]", "", normalize(question))) > 12


def own_terms(question: str, lexical: LexicalIndex) -> list[str]:
    """The question's own subject terms: its nouns and place words (jieba's part of speech) of two characters or
    more that are not an aspect of the question (时候, 方面, 要求 …) and that at most a quarter of the corpus's
    clauses use."""
    import jieba.posseg

    text = normalize(question)
    limit = max(1, len(lexical.ids) // 4)
    terms = []
    for word in jieba.posseg.cut(text):
        token = word.word.strip()
        if len(token) < 2 or token in _ASPECT_NOUNS or not word.flag.startswith(_NOUN_TAGS):
            continue
        if lexical.df(token) <= limit and token not in terms:
            terms.append(token)
    return terms


def _covered(retrieval: Retrieval, own: list[str]) -> float:
    """The share of the question's own terms that the reading's best clause holds (1 when it has none)."""
    if not own:
        return 1.0
    if not retrieval.candidates:
        return 0.0
    text = normalize(retrieval.candidates[0].clause.heading + retrieval.candidates[0].clause.text)
    return sum(1 for t in own if t in text) / len(own)


def _near(reading: Reading, context: dict) -> float:  # type: ignore[type-arg]
    candidates = reading.retrieval.candidates
    return _bonus(candidates[0], context) if candidates and context else 0.0


def _favour(retrieval: Retrieval, context: dict) -> Retrieval:  # type: ignore[type-arg]
    """The judged head reordered with a bonus for the clauses the conversation has just cited, their siblings
    (same document, same parent heading) and their documents."""
    if not context or not retrieval.candidates:
        return retrieval
    head = retrieval.candidates[:JUDGED]
    for candidate in head:
        candidate.relevance = logistic(logit(candidate.relevance, 1e-6) + _bonus(candidate, context))
    retrieval.candidates[:JUDGED] = order_by_relevance(head)
    return retrieval


def _bonus(candidate: Candidate, context: dict) -> float:  # type: ignore[type-arg]
    clause = candidate.clause
    if clause.clause_id in context:
        return CITED_BONUS
    if any(c.doc_id == clause.doc_id and c.path[:-1] == clause.path[:-1] for c in context.values()):
        return SIBLING_BONUS
    if any(c.doc_id == clause.doc_id for c in context.values()):
        return DOCUMENT_BONUS
    return 0.0

