"""Normalise a question → dense + BM25 + exact 文号/条号 matches → fuse → judge relevance."""

from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from assistant.config import Settings
from assistant.discern import clause_text, distinct_share
from assistant.errors import AssistantError
from assistant.index.build import passage_text
from assistant.index.embedder import ClauseEmbedder
from assistant.index.generations import Manifest, generation_dir
from assistant.index.lexical import LexicalIndex, tokenize
from assistant.index.links import find_articles, find_doc_numbers
from assistant.index.store import ClauseStore, chroma_client
from assistant.ingest.normalize import normalize
from assistant.ingest.records import Clause

log = logging.getLogger(__name__)

# Relevance model: a logistic function of a clause's dense cosine (e5-small, normalised text) and of
# the IDF-weighted share of the question's terms it contains. Fitted with bench/calibrate.py on
# eval/calibration.jsonl (C=1), never on the eval sets it is measured on.
RELEVANCE_WEIGHTS = {"bias": -52.55, "cosine": 59.16, "coverage": 3.25}
# Only the best fused candidates are judged (and reordered by relevance); the rest are never cited.
JUDGED = 20
# Two candidates whose relevance logits differ by less than this (about 0.0003 of cosine) are tied: a difference
# that small is below what the int8 model resolves (floating-point kernels differ across CPUs), so a tie is
# ordered by rule (`tie_order`), never by the digits.
TIE_LOGIT = 0.02
# A rival within this many logits of relevance of the best clause is near-tied with it (`near_tied`); a near
# twin of it (most of their text the same), within this many.
NEAR_TIE = 1.0
TWIN_TIE = 4.0
# A 第X条 in a question is matched exactly only when few documents have that article.
MAX_ARTICLE_MATCHES = 5


@dataclass
class Candidate:
    """A retrieved clause with the evidence for it."""

    clause: Clause
    dense: float = 0.0
    dense_rank: int | None = None
    lexical: float = 0.0
    lexical_rank: int | None = None
    exact: bool = False
    fused: float = 0.0
    coverage: float = 0.0
    relevance: float = 0.0
    rerank: float | None = None  # the reranker's probability, when one is set
    phrase: float = 0.0  # the longest verbatim run of the question's words it holds (0–1)

    def scores(self) -> dict[str, float | int | bool | None]:
        return {
            "dense": round(self.dense, 4), "dense_rank": self.dense_rank,
            "bm25": round(self.lexical, 4), "bm25_rank": self.lexical_rank,
            "exact": self.exact, "fused": round(self.fused, 5),
            "coverage": round(self.coverage, 3), "relevance": round(self.relevance, 3),
            **({"rerank": round(self.rerank, 3)} if self.rerank is not None else {}),
        }


@dataclass
class Retrieval:
    """The ranked candidates for one question and whether any is relevant enough to answer from."""

    question: str
    normalized: str
    candidates: list[Candidate] = field(default_factory=list)
    relevant: bool = False
    answerable: float | None = None  # the tuned judge's probability that the head holds the answer

    @property
    def relevance(self) -> float:
        return self.candidates[0].relevance if self.candidates else 0.0


@lru_cache(maxsize=4096)
def bigrams(text: str) -> frozenset[str]:
    """Character bigrams of the normalised text (cached: the same clauses are compared again and again)."""
    text = re.sub(r"[^\w]", "", normalize(text))
    return frozenset(text[i:i + 2] for i in range(len(text) - 1))


def same_content(clause: Clause, other: Clause) -> bool:
    """Most of the clause's character bigrams stand in the other: e.g. one article in two versions of a law."""
    mine = bigrams(clause.text)
    return bool(mine) and len(mine & bigrams(other.text)) / len(mine) >= 0.7


def prefer_in_force(ranked: list[Candidate]) -> list[Candidate]:
    """A clause no longer in force goes just below the version in force of the same clause, if that was retrieved."""
    order = list(ranked)
    for old in [c for c in ranked if not c.clause.in_force()]:
        position = order.index(old)
        twins = [i for i, c in enumerate(order) if i > position and c.clause.in_force()
                 and same_content(old.clause, c.clause)]
        if twins:
            order.insert(twins[-1], order.pop(position))
    return order


def rival_of(head: list[Candidate]) -> Candidate | None:
    """The best candidate after the first that would be a different answer: not the first clause's
    interpretation or the clause it interprets, and not the same text in another version."""
    top = head[0].clause
    for candidate in head[1:]:
        if not same_answer(top, candidate.clause):
            return candidate
    return None


def distinct(head: list[Candidate]) -> list[Candidate]:
    """The head without candidates that would be the same answer as one before them."""
    kept: list[Candidate] = []
    for candidate in head:
        if not any(same_answer(k.clause, candidate.clause) for k in kept):
            kept.append(candidate)
    return kept


def same_answer(one: Clause, other: Clause) -> bool:
    """An interpretation and the clause it explains, or one clause in two versions of a document (two clauses of
    one document are two answers, however alike: 煤改电 and 煤改气)."""
    return (one.clause_id in other.refers_to or other.clause_id in one.refers_to
            or (one.doc_id != other.doc_id and (same_content(one, other) or same_content(other, one))))


def near_tied(top: Candidate, rival: Candidate) -> bool:
    """Scores cannot tell the two apart: their relevance is within `NEAR_TIE` logits, or they are near twins
    (most of their text the same, 煤改电 / 煤改气), whose scores differ by where each ranked more than by what
    they say."""
    margin = logit(top.relevance, 1e-6) - logit(rival.relevance, 1e-6)
    return margin < NEAR_TIE or (margin < TWIN_TIE and twins(top.clause, rival.clause))


def twins(one: Clause, other: Clause) -> bool:
    mine, theirs = bigrams(one.text), bigrams(other.text)
    return bool(mine and theirs) and len(mine & theirs) / min(len(mine), len(theirs)) >= 0.6


def prefer_named(question: str, head: list[Candidate]) -> list[Candidate]:
    """When the best clause's rival is near-tied with it and the question names a term that stands in the rival
    and not in the best clause, while the best clause holds nothing of the question that the rival lacks, the
    rival goes first: 「煤改电」 picks the 煤改电 clause over the 煤改气 one, however close their scores."""
    rival = rival_of(head) if head and not head[0].exact else None
    if rival is None or rival.exact or not near_tied(head[0], rival):
        return head
    own, theirs = distinct_share(question, clause_text(head[0].clause), clause_text(rival.clause))
    if theirs > 0 and own == 0:
        order = list(head)
        order.remove(rival)
        return [rival, *order]
    return head


def tie_order(candidate: Candidate) -> tuple[bool, bool, str, int]:
    """How tied candidates are ordered: in force first, then policy clauses before interpretations (an
    interpretation is cited together with the clause it explains; see answer/extractive.py), then their place in
    the corpus (document id, clause order)."""
    clause = candidate.clause
    return (not clause.in_force(), clause.metadata.get("kind") == "interpretation", clause.doc_id, clause.order)


def order_by_relevance(candidates: list[Candidate]) -> list[Candidate]:
    """Exact 文号/条号 matches first, then by relevance; a run of candidates within `TIE_LOGIT` of the best of the
    run is tied and ordered by `tie_order`."""
    ranked = sorted(sorted(candidates, key=tie_order), key=lambda c: (c.exact, c.relevance), reverse=True)
    ordered: list[Candidate] = []
    run: list[Candidate] = []
    for candidate in ranked:
        if run and (candidate.exact != run[0].exact
                    or logit(run[0].relevance) - logit(candidate.relevance) >= TIE_LOGIT):
            ordered += sorted(run, key=tie_order)
            run = []
        run.append(candidate)
    return ordered + sorted(run, key=tie_order)


def logit(p: float, floor: float = 1e-9) -> float:
    """The log-odds of a probability, kept `floor` away from 0 and 1."""
    p = min(max(p, floor), 1 - floor)
    return math.log(p / (1 - p))


def logistic(z: float) -> float:
    return 1.0 / (1.0 + math.exp(-max(-60.0, min(60.0, z))))


def relevance(cosine: float, coverage: float, weights: dict[str, float] | None = None) -> float:
    return judge({"cosine": cosine, "coverage": coverage}, weights)


def judge(features: dict[str, float], weights: dict[str, float] | None = None) -> float:
    """The probability that a clause answers the question: a logistic function of its evidence (`features`),
    with the weights fitted for the model that made the cosines (a feature without a weight counts nothing)."""
    w = weights or RELEVANCE_WEIGHTS
    return logistic(w["bias"] + sum(weight * features.get(name, 0.0) for name, weight in w.items() if name != "bias"))


# A question for a particular fact that laws and policies seldom state (a telephone number, an address, a price,
# opening hours, a website), and the signs that a clause states one.
_ASKS_PARTICULAR = re.compile(r"电话|号码|热线是|地址|在哪|哪里办|网址|网站是|价格|多少钱|票价|几点|营业时间|开放时间"
                              r"|上班时间|办公时间|二维码|公众号|官网|客服")
_STATES_PARTICULAR = re.compile(r"\d{3,}|\d{1,2}[:：]\d{2}"
                                r"|(?<![零一二三四五六七八九十百千万两\d])[零一二三四五六七八九十百千万两\d]+\s*"
                                r"(?:时|点|元|角|号楼|路|街)"
                                r"|电话|地址|网址|价格|票价|营业时间|开放时间")
# A question for a figure, a day or a name (how much it costs, which day, which firm), and the signs that a clause
# states a figure or a day at all.
_ASKS_FIGURE = re.compile(r"多少钱|收多少|多少费|价格|票价|几点|几号|哪天|哪一天|几月|哪一年|电话|号码|账号|名字|叫什么"
                          r"|哪家|哪个平台|网址|地址|在哪")
# (a run of numerals is tried from its first one only: tried from each, a long run would be quadratic)
_STATES_FIGURE = re.compile(r"\d|(?<![零一二三四五六七八九十百千万两])[零一二三四五六七八九十百千万两]+\s*"
                            r"(?:时|点|元|年|月|日|天|个|人|%|倍|万|亿|周|小时|公里|米)")
# A question for a quantity: how much, how long, the most or the least.
_ASKS_QUANTITY = re.compile(r"多少|几[个天年月日次倍岁周十百千万成]|几小时|多久|多长|多大|多高|多重|比例|期限"
                            r"|最长|最短|最多|最少|最低|最高|上限|下限")
# A question about the present moment (this year's figure, the latest news): laws and standing policies do not
# state it.
_ASKS_CURRENT = re.compile(r"今年|明年|去年|今天|明天|昨天|这个月|下个月|上个月|本月|这周|下周|最近|最新|目前|近期"
                           r"|第[一二三四五六七八九十]+次")


def question_evidence(head: list[Candidate], question: str = "") -> dict[str, float]:
    """What decides a refusal: the best judged candidate's evidence and judgment, how far its cosine stands
    above the rest of the head (an answerable question has a clause that stands out), whether the question asks
    for a particular fact (a telephone number, an address, a price, a day) that the best clause does not state,
    and whether it asks about the present moment."""
    top = head[0]
    text = normalize(top.clause.text)
    particular = bool(_ASKS_PARTICULAR.search(question)) and not _STATES_PARTICULAR.search(text)
    figure = bool(_ASKS_FIGURE.search(question)) and not _STATES_FIGURE.search(text)
    cosines = sorted((c.dense for c in head), reverse=True)
    spread = cosines[0] - cosines[min(4, len(cosines) - 1)]
    return {"top_cosine": top.dense, "top_coverage": top.coverage, "top_logit": logit(top.relevance, 1e-6),
            "spread": spread, "top_phrase": top.phrase, "asks_unstated": float(particular),
            "asks_figure": float(figure), "asks_current": float(bool(_ASKS_CURRENT.search(question)))}


def rare_terms(tokens: list[str], lexical: LexicalIndex) -> list[str]:
    """The question's terms that few clauses use (document frequency at most about √N)."""
    return [t for t in tokens if lexical.idf(t) >= 0.5 * math.log(len(lexical.ids) + 1)]


def evidence(candidate: Candidate, tokens: list[str], passage: str, rare: list[str] | None = None,
             question: str = "") -> dict[str, float]:
    """What the judge weighs: the cosine, the share of the question's terms the clause holds (IDF-weighted, as
    `coverage`), how high each ranking put it, the longest run of the question's own words that stands
    verbatim in the clause (a distinctive phrase found is strong evidence), the share of the question's rare
    terms (`rare_terms`) it holds, and whether the question asks for a quantity (多少, 多久, 最长 …) that the
    clause states a figure for."""
    longest = 0
    for i in range(len(tokens)):
        for j in range(i + 2, len(tokens) + 1):
            phrase = "".join(tokens[i:j])
            if len(phrase) <= longest:
                continue
            if phrase not in passage:
                break
            longest = len(phrase)
    candidate.phrase = min(longest, 12) / 12 if longest >= 4 else 0.0
    return {
        "cosine": candidate.dense, "coverage": candidate.coverage,
        "dense_rr": 1.0 / (1 + candidate.dense_rank) if candidate.dense_rank is not None else 0.0,
        "lexical_rr": 1.0 / (1 + candidate.lexical_rank) if candidate.lexical_rank is not None else 0.0,
        "phrase": candidate.phrase,
        "rare": sum(1 for t in rare if t in passage) / len(rare) if rare else 0.0,
        "figure": float(bool(_ASKS_QUANTITY.search(question)) and bool(_STATES_FIGURE.search(passage))),
    }


class Retriever:
    """Hybrid retrieval over one index generation (the active one when it was opened)."""

    def __init__(self, index_dir: Path, embedder: ClauseEmbedder, settings: Settings,
                 manifest: Manifest | None = None):
        self.settings = settings.retrieval
        self.embedder = embedder
        self.manifest = manifest or Manifest.read(index_dir)
        if self.manifest.fingerprint not in embedder.query_fingerprints:
            raise AssistantError(
                f"the index in {index_dir} was built with model {self.manifest.model!r} in another precision or "
                f"with other prompts than the configured {embedder.name!r}",
                "run `policy-assistant index` to rebuild it with the configured model",
            )
        if self.manifest.fingerprint != embedder.fingerprint:
            log.warning("the index in %s holds int8 vectors embedded in batches (before reproducible vectors); "
                        "questions are answered from it, and the next `policy-assistant index` rebuilds it", index_dir)
        folder = generation_dir(index_dir, self.manifest.generation)
        self.lexical = LexicalIndex.load(folder / "lexical")
        self.exact: dict[str, list[str]] = json.loads((folder / "exact.json").read_text(encoding="utf-8"))
        self.records: dict[str, str] = json.loads((folder / "records.json").read_text(encoding="utf-8"))
        try:
            client = chroma_client(index_dir, settings.chroma_url)
            self.store = ClauseStore(client, self.manifest.collection, self.manifest.generation, create=False,
                                     records=self.records)
        except Exception as e:
            raise AssistantError(f"the index's vector collection {self.manifest.collection!r} cannot be opened: {e}",
                                 "check POLICY_ASSISTANT_CHROMA_URL, or run `policy-assistant index --rebuild`") from e
        self._passages: dict[str, str] = {}  # clause id -> normalised passage; clauses are fixed within a generation
        self._reranker: Any = None

    def retrieve(self, question: str) -> Retrieval:
        normalized = normalize(question)
        result = Retrieval(question, normalized)
        if not normalized:
            return result
        k = self.settings.candidates
        query_vector = self.embedder.embed_query(normalized)
        tokens = tokenize(normalized)
        by_id: dict[str, Candidate] = {}
        for rank, (clause, cosine) in enumerate(self.store.search(query_vector, k)):
            by_id[clause.clause_id] = Candidate(clause, dense=cosine, dense_rank=rank)
        lexical_hits = self.lexical.search(tokens, k)
        exact_ids, by_number = self._exact_ids(normalized)
        missing = [cid for cid, _ in lexical_hits if cid not in by_id] + [c for c in exact_ids if c not in by_id]
        missing_records = [self.records[cid] for cid in missing if cid in self.records]
        for clause_id, (clause, vector) in self.store.get_with_vectors(missing_records).items():
            by_id[clause_id] = Candidate(clause, dense=float(np.dot(vector, query_vector)))
        for rank, (clause_id, score) in enumerate(lexical_hits):
            if clause_id in by_id:
                by_id[clause_id].lexical, by_id[clause_id].lexical_rank = score, rank
        for clause_id in exact_ids:
            if clause_id in by_id:
                by_id[clause_id].exact = True
        self._fuse(by_id.values())
        ranked = sorted(sorted(by_id.values(), key=tie_order), key=lambda c: c.fused, reverse=True)
        rare = rare_terms(tokens, self.lexical)
        for candidate in ranked[:JUDGED]:
            passage = self._passage(candidate.clause)
            candidate.coverage = self.lexical.coverage(tokens, passage)
            candidate.relevance = judge(evidence(candidate, tokens, passage, rare, normalized),
                                        getattr(self.embedder, "judge", None))
        if self.settings.reranker:
            self._rerank(normalized, ranked[:JUDGED])
        # the judged head is ordered by relevance (exact 文号/条号 matches first): the fusion finds candidates,
        # the relevance model, which weighs cosine against term coverage, orders them
        ranked[:JUDGED] = prefer_named(normalized, order_by_relevance(ranked[:JUDGED]))
        ranked = prefer_in_force(ranked)
        if ranked and ranked[0].clause.clause_id in by_number:
            ranked[0].relevance = 1.0  # the question names a 文号 that this clause carries or cites
        result.candidates = ranked
        refusal = getattr(self.embedder, "refusal", None)
        if ranked and refusal and ranked[0].clause.clause_id not in by_number:
            # the tuned model's judge decides refusals on the whole head (is anything here the answer?)
            result.answerable = judge(question_evidence(ranked[:JUDGED], normalized), refusal)
            result.relevant = result.answerable >= self.settings.min_relevance
        else:
            result.relevant = bool(ranked) and ranked[0].relevance >= self.settings.min_relevance
        holder = None if result.relevant or not ranked else self._distinctive(normalized, tokens, ranked[:JUDGED])
        if holder is not None:
            # the question's own distinctive phrase stands in this clause and in no other judged one: never refused
            ranked.remove(holder)
            ranked.insert(0, holder)
            holder.relevance = max(holder.relevance, self.settings.min_relevance)
            result.relevant = True
        return result

    def _distinctive(self, normalized: str, tokens: list[str], head: list[Candidate]) -> Candidate | None:
        """The one judged clause holding a stretch of the question's own text of five characters or more with a
        rare term in it (「不见面审批」), longest first; None when no such stretch stands in exactly one."""
        rare = rare_terms(tokens, self.lexical)
        stretches = {run[i:j] for run in re.findall(r"[\u4e00-\u9fff\w]{5,}", normalized)
                     for i in range(len(run)) for j in range(i + 5, min(len(run), i + 16) + 1)}
        for phrase in sorted((p for p in stretches if any(t in p for t in rare)), key=len, reverse=True):
            holders = [c for c in head if phrase in self._passage(c.clause)]
            if len(holders) == 1:
                return holders[0]
        return None

    def _rerank(self, question: str, head: list[Candidate]) -> None:
        """The cross-encoder's probability that each clause answers the question, averaged with the judge's."""
        if not head:
            return
        if self._reranker is None:
            from sentence_transformers import CrossEncoder

            try:
                self._reranker = CrossEncoder(self.settings.reranker, device="cpu")
            except (OSError, ValueError) as e:
                raise AssistantError(f"cannot load the reranker {self.settings.reranker!r}: {e}",
                                     "set POLICY_ASSISTANT_RETRIEVAL__RERANKER to a downloaded model or a folder, "
                                     "or to empty") from e
        scores = self._reranker.predict([(question, self._passage(c.clause)) for c in head], show_progress_bar=False)
        for candidate, score in zip(head, scores, strict=True):
            candidate.rerank = 1.0 / (1.0 + math.exp(-float(score)))
            candidate.relevance = (candidate.relevance + candidate.rerank) / 2

    def _passage(self, clause: Clause) -> str:
        passage = self._passages.get(clause.clause_id)
        if passage is None:
            passage = self._passages[clause.clause_id] = passage_text(clause)
        return passage

    def _exact_ids(self, normalized: str) -> tuple[list[str], set[str]]:
        """Clauses matched by a 文号 or a 第X条 in the question; the second item: those matched by a 文号."""
        by_number = [cid for key in find_doc_numbers(normalized) for cid in self.exact.get(key, [])]
        ids = list(by_number)
        for key in find_articles(normalized):
            matches = self.exact.get(key, [])
            if len(matches) <= MAX_ARTICLE_MATCHES:  # 第X条 alone is ambiguous across many documents
                ids.extend(matches)
        return list(dict.fromkeys(ids)), set(by_number)

    def _fuse(self, candidates: Iterable[Candidate]) -> None:
        k = self.settings.rrf_k
        for c in candidates:
            score = 0.0
            if c.dense_rank is not None:
                score += self.settings.dense_weight / (k + c.dense_rank + 1)
            if c.lexical_rank is not None:
                score += self.settings.lexical_weight / (k + c.lexical_rank + 1)
            if c.exact:
                score += (self.settings.dense_weight + self.settings.lexical_weight) / (k + 1)
            c.fused = score

    def neighbours(self, clause_ids: list[str]) -> dict[str, Clause]:
        return self.store.get(self.records[cid] for cid in clause_ids if cid in self.records)
