"""How sure an answer is: `answered` (the cited answer), `candidates` (up to three numbered clauses, no claim of
its own) or `refused` (nothing relevant), decided once from a calibrated confidence that the first clause
answers the question."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import lru_cache

from assistant.discern import clause_text, distinct_share
from assistant.ingest.normalize import normalize
from assistant.ingest.records import Clause
from assistant.retrieve import JUDGED, Candidate, Retrieval, distinct, judge, logit, near_tied, rival_of

ANSWERED, CANDIDATES, REFUSED = "answered", "candidates", "refused"
OUTCOMES = (ANSWERED, CANDIDATES, REFUSED)
MAX_CANDIDATES = 3
# Without weights fitted for the model (the plain e5-small), the confidence weighs the head's judgment and how
# far the first clause stands above its rival; `bench/fit_confidence.py` fits the tuned model's.
DEFAULT_WEIGHTS = {"bias": -2.0, "answerable": 0.6, "margin": 0.8, "held": 2.0, "own_terms": 3.0, "rival_terms": -3.0,
                   "figures_differ": -2.0, "place_conflict": -3.0, "answer_at": 0.5}
_FIGURE = re.compile(r"\d+(?:\.\d+)?%?|[零一二三四五六七八九十百千万两]+(?=[元年月日天个人倍万亿周小时公里米%])")
_LEVEL = re.compile(r"(?:省|自治区|特别行政区|市|自治州|地区|盟|县|区|旗)$")
_ADMINISTRATIVE = re.compile(r"[\u4e00-\u9fff]{2,7}?(?:省|自治区|特别行政区|市|自治州|县)")
# places that name the whole country (a national law answers for every place in it), and words jieba tags as
# places that name no place in particular
_NATIONAL = {"中华人民共和国", "中国", "全国", "国家", "城市", "农村", "城镇", "乡村", "城乡", "地方", "本地", "当地",
             "各地", "国内", "国外", "境内", "境外", "海外", "全省", "全市", "全县", "本市", "本省", "本县"}


@dataclass
class Decision:
    """The outcome, the confidence behind it, the clauses a `candidates` outcome offers, and the evidence."""

    outcome: str
    confidence: float
    candidates: list[Candidate] = field(default_factory=list)
    evidence: dict[str, float] = field(default_factory=dict)


def decide(retrieval: Retrieval, weights: dict[str, float] | None = None) -> Decision:
    """`refused` when nothing is relevant; `answered` when the confidence that the first clause answers the
    question reaches the weights' `answer_at`; else `candidates`, the best distinct clauses of the head."""
    head = retrieval.candidates[:JUDGED]
    if not retrieval.relevant or not head:
        return Decision(REFUSED, 0.0)
    w = weights or DEFAULT_WEIGHTS
    facts = confidence_evidence(retrieval)
    confidence = judge(facts, {k: v for k, v in w.items() if k != "answer_at"})
    if head[0].relevance >= 1.0:  # the question names a 文号 that this clause carries or cites
        confidence = 1.0
    # two near-tied clauses that state different figures, and a question that does not say which it means: the
    # asker is shown both, never told one figure as sure; nor is a place's rule given as another place's
    if confidence >= w.get("answer_at", 0.5) and not facts["figures_differ"] and not facts["place_conflict"]:
        return Decision(ANSWERED, confidence, [], facts)
    return Decision(CANDIDATES, confidence, distinct(head)[:MAX_CANDIDATES], facts)


def confidence_evidence(retrieval: Retrieval) -> dict[str, float]:
    """What the confidence weighs: the head's judgment (is anything here the answer), the first clause's
    relevance, its margin over the best clause that would be a different answer (`rival`), the share of the
    question's text that stands in the first clause (`held`), and that stands in it and not in the rival (and the
    reverse), whether the two
    state different figures while the question does not tell them apart, and whether the question names a place
    that the first clause's document does not, while that document names another."""
    head = retrieval.candidates[:JUDGED]
    top = head[0]
    rival = rival_of(head)
    top_logit = logit(top.relevance, 1e-6)
    answerable = logit(retrieval.answerable, 1e-6) if retrieval.answerable is not None else top_logit
    question = retrieval.normalized
    own = their = 0.0
    differ = 0.0
    if rival is not None:
        margin = min(top_logit - logit(rival.relevance, 1e-6), 8.0)
        cosine_margin, coverage_margin = top.dense - rival.dense, top.coverage - rival.coverage
        own, their = distinct_share(question, clause_text(top.clause), clause_text(rival.clause))
        near = near_tied(top, rival)
        differ = float(near and own == 0 and _figures(top.clause) != _figures(rival.clause)
                       and bool(_figures(top.clause)) and bool(_figures(rival.clause)))
    else:
        margin, cosine_margin, coverage_margin = 8.0, 0.2, 1.0
    same_document = sum(1 for c in head[1:5] if c.clause.doc_id == top.clause.doc_id) / 4
    held, _ = distinct_share(question, clause_text(top.clause), "")
    return {"answerable": max(min(answerable, 10.0), -10.0), "top_logit": max(min(top_logit, 10.0), -10.0),
            "margin": margin, "held": held, "own_terms": own, "rival_terms": their, "figures_differ": differ,
            "place_conflict": float(place_conflict(question, top.clause)), "cosine": top.dense,
            "cosine_margin": cosine_margin, "coverage": top.coverage, "coverage_margin": coverage_margin,
            "phrase": top.phrase, "same_document": same_document}


def _figures(clause: Clause) -> frozenset[str]:
    return frozenset(_FIGURE.findall(clause_text(clause)))


def place_conflict(question: str, clause: Clause) -> bool:
    """The question names a place (深圳市, 海淀区) that the clause's document does not mention, while the
    document's title or issuer names a place of its own: a 上海市 regulation does not answer for 深圳."""
    asked = places(question)
    if not asked:
        return False
    document = normalize(f"{clause.title}{clause.metadata.get('issuer', '')}")
    if not places(document):
        return False
    text = document + clause_text(clause)
    return not any(_LEVEL.sub("", place) in text for place in asked)


@lru_cache(maxsize=4096)
def places(text: str) -> frozenset[str]:
    """The place names in a text: jieba's place words (`ns`), and the province, city or county that starts one of
    its words (保定市, 山东省人民政府 → 山东省), without those that name the whole country or no place in particular."""
    import jieba.posseg

    found = set()
    for word in jieba.posseg.cut(text):
        if word.flag == "ns" and len(word.word) >= 2:
            found.add(word.word)
        elif word.flag.startswith("n") and (head := _ADMINISTRATIVE.match(word.word)):
            found.add(head.group(0))
    return frozenset(found - _NATIONAL)
