"""`Assistant`: the one façade the CLI, web UI and WeChat channel call."""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterable
from dataclasses import replace
from pathlib import Path
from typing import Any

from assistant.answer.extractive import compose
from assistant.answer.generative import generate, make_model, rewrite
from assistant.answer.offer import offer, parse_choice
from assistant.answer.outcome import ANSWERED, CANDIDATES, decide
from assistant.answer.records import Answer
from assistant.config import LimitSettings, Settings
from assistant.conversation import Conversation, Reading, Turn, read, turns
from assistant.errors import AssistantError, IndexNotBuiltError, InputTooLongError
from assistant.index.build import Indexer, IndexSummary, Progress
from assistant.index.embedder import ClauseEmbedder, fingerprint_for, load_embedder
from assistant.index.generations import MANIFEST, Manifest
from assistant.index.registry import REMOVED, DocumentRow, VersionRow
from assistant.ingest.records import Clause
from assistant.publishing import (
    ReplaceNotConfirmed,
    Upload,
    change_status,
    publish_files,
    read_uploads,
    refuse_duplicates,
    replaced,
)
from assistant.retrieve import Candidate, Retrieval, Retriever

log = logging.getLogger(__name__)


class Assistant:
    """Answers questions from the active index generation; editors' changes go through its indexer.

    Each question is answered from the generation that is active when it starts: when another process
    (or this one) switches the index to a new generation, the next question opens it.
    """

    def __init__(self, settings: Settings, embedder: ClauseEmbedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._retriever: Retriever | None = None
        self._manifest_stamp: tuple[int, int] | None = None
        self._lock = threading.Lock()
        self._llm: Any = None

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    @property
    def embedder(self) -> ClauseEmbedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.index)
        return self._embedder

    @property
    def indexer(self) -> Indexer:
        index = self.settings.index
        return Indexer(self.index_dir, lambda: self.embedder, fingerprint=fingerprint_for(index), model=index.model,
                       chroma_url=self.settings.chroma_url, collection_prefix=index.collection_prefix,
                       max_chars=index.max_clause_chars, limits=index.limits())

    @property
    def retriever(self) -> Retriever:
        """The retriever of the active generation, reopened when the manifest names a new one."""
        path = self.index_dir / MANIFEST
        try:
            stat = path.stat()
            stamp = (stat.st_mtime_ns, stat.st_size)
        except FileNotFoundError:
            raise IndexNotBuiltError(str(self.index_dir)) from None
        retriever = self._retriever
        if retriever is not None and stamp == self._manifest_stamp:
            return retriever
        with self._lock:
            manifest = Manifest.read(self.index_dir)
            if self._retriever is None or self._retriever.manifest.generation != manifest.generation:
                if not self.settings.chroma_url:
                    _forget_embedded_clients()  # another process may have written: read the store afresh
                try:
                    self._retriever = Retriever(self.index_dir, self.embedder, self.settings, manifest)
                except FileNotFoundError:  # two switches since the manifest was read: open the newest
                    manifest = Manifest.read(self.index_dir)
                    self._retriever = Retriever(self.index_dir, self.embedder, self.settings, manifest)
                log.info("answering from index generation %s", manifest.generation)
            self._manifest_stamp = stamp
            return self._retriever

    def has_index(self) -> bool:
        return (self.index_dir / MANIFEST).exists()

    def manifest(self) -> Manifest:
        return Manifest.read(self.index_dir)

    def retrieve(self, question: str) -> Retrieval:
        return self.retriever.retrieve(question)

    def ask(self, question: str, history: Conversation = (), on_text: Callable[[str], None] | None = None) -> Answer:
        """A cited answer, or a refusal when nothing in the corpus is relevant. `history`: the conversation's
        earlier turns (or questions), for follow-ups; `on_text`: called with the growing text while an LLM writes."""
        return self.ask_traced(question, history, on_text)[0]

    def ask_traced(self, question: str, history: Conversation = (),
                   on_text: Callable[[str], None] | None = None) -> tuple[Answer, Retrieval]:
        """The answer together with the retrieval it was composed from (all candidates and their scores). A question
        or history over the limits is refused with `InputTooLongError` before any work is done."""
        question, history = bound_input(question, history, self.settings.limits)
        picked = self._picked(question, history)
        if picked is not None:
            return picked
        retriever = self.retriever
        reading = self.read(question, history)
        decision = decide(reading.retrieval, self.confidence_weights)
        if decision.outcome == CANDIDATES:
            answer = offer(reading.retrieval.question, decision, question)
        else:
            answer = compose(reading.retrieval, self.settings.answer, retriever.lexical, retriever.neighbours,
                             question)
            if self.llm_enabled and decision.outcome == ANSWERED:
                answer = generate(reading.asked, answer, reading.retrieval, self.settings.llm, self._chat_model(),
                                  on_text)
            answer.confidence = decision.confidence
        answer.question = question
        answer.asked = reading.asked if reading.asked != question else ""
        return answer, reading.retrieval

    def pick(self, choice: int, history: Conversation, on_text: Callable[[str], None] | None = None) -> Answer:
        """The answer from candidate `choice` (from 1) of the conversation's last answer; `AssistantError` when
        that answer offered no such candidate."""
        kept = turns(history)
        offered = self.offered(kept[-1], kept[:-1]) if kept else ()
        if not 1 <= choice <= len(offered):
            why = f"上一个回答没有第 {choice} 个候选条款。" if offered else "上一个回答没有候选条款可选。"
            raise AssistantError(why, "ask a question first; pick a number its answer offers")
        answer = self.choose(kept[-1].reading, offered[choice - 1], kept[:-1], on_text)
        answer.chosen = choice
        return answer

    def offered(self, turn: Turn, before: list[Turn]) -> tuple[str, ...]:
        """The candidates a turn's answer offered: as the conversation kept them, or, for a turn kept as its question
        alone (an OpenAI-style messages array), read again as it was asked."""
        if turn.offered or turn.cited:
            return turn.offered
        retrieval = self.read(turn.question, before).retrieval
        decision = decide(retrieval, self.confidence_weights)
        return tuple(c.clause.clause_id for c in decision.candidates) if decision.outcome == CANDIDATES else ()

    def _picked(self, question: str, history: list[Turn]) -> tuple[Answer, Retrieval] | None:
        """A reply that picks one of the last answer's candidates (「2」, 「第二个」): that candidate's answer."""
        choice = parse_choice(question)
        if choice is None or not history:
            return None
        offered = self.offered(history[-1], history[:-1])
        if not 1 <= choice <= len(offered):
            return None  # no list, or no such number: read as an ordinary question
        answer, retrieval = self._choose(history[-1].reading, offered[choice - 1], history[:-1])
        # read as the question it picks from: a follow-up after it continues that question
        answer.chosen, answer.question, answer.asked = choice, question, history[-1].reading
        return answer, retrieval

    def choose(self, question: str, clause_id: str, history: Conversation = (),
               on_text: Callable[[str], None] | None = None) -> Answer:
        """The cited answer from one clause the asker picked among the candidates offered for `question` (a
        `candidates` answer's clause id): read as the question was, with that clause first."""
        return self._choose(question, clause_id, history, on_text)[0]

    def _choose(self, question: str, clause_id: str, history: Conversation = (),
                on_text: Callable[[str], None] | None = None) -> tuple[Answer, Retrieval]:
        question, history = bound_input(question, history, self.settings.limits)
        retriever = self.retriever
        reading = self.read(question, history)
        retrieval = reading.retrieval
        picked = next((c for c in retrieval.candidates if c.clause.clause_id == clause_id), None)
        if picked is None:
            clause = retriever.neighbours([clause_id]).get(clause_id)
            if clause is None:
                raise AssistantError("所选条款已不在检索范围内，请重新提问。", "ask the question again")
            picked = Candidate(clause, relevance=self.settings.retrieval.min_relevance)
        chosen = replace(retrieval, candidates=[picked], relevant=True)
        answer = compose(chosen, self.settings.answer, retriever.lexical, retriever.neighbours, question)
        if self.llm_enabled:
            answer = generate(reading.asked, answer, chosen, self.settings.llm, self._chat_model(), on_text)
        answer.question = question
        answer.asked = reading.asked if reading.asked != question else ""
        return answer, chosen

    @property
    def confidence_weights(self) -> dict[str, float] | None:
        """The confidence weights fitted for the model (None: `outcome.DEFAULT_WEIGHTS`)."""
        return getattr(self.embedder, "confidence", None)

    def read(self, question: str, history: Conversation = ()) -> Reading:
        """How the question is read in its conversation (`conversation.read`: by rule, or with the LLM's rewrite
        when one is configured to rewrite follow-ups)."""
        return read(question, history, self.retriever, self._rewrite if self._llm_rewrites else None)

    def _rewrite(self, question: str, history: list[Turn], cited: dict[str, str]) -> str | None:
        return rewrite(question, history, cited, self.settings.llm, self._chat_model())

    @property
    def llm_enabled(self) -> bool:
        return bool(self.settings.llm.base_url)

    @property
    def _llm_rewrites(self) -> bool:
        return self.llm_enabled and self.settings.llm.rewrite_follow_ups

    def _chat_model(self) -> Any:
        if self._llm is None:
            self._llm = make_model(self.settings.llm)
        return self._llm

    def warm_up(self) -> None:
        """Load the model and the index, and answer a Simplified and a Traditional question once, so that the
        first citizens do not wait for loading (the model, the script converter, the traced model's first runs), and
        read a follow-up once."""
        for question in ("政府信息公开申请多久答复？", "政府資訊公開申請多久答覆？"):
            self.ask(question)
        self.ask("那市里呢？", ["政府信息公开申请多久答复？"])  # the tagger that reads follow-ups loads

    def reindex(self, paths: Iterable[Path] | None = None, *, rebuild: bool = False,
                progress: Progress | None = None) -> IndexSummary:
        """Bring the index in step with the given files/folders (default: the corpus folder)."""
        targets = list(paths or [Path(self.settings.corpus_dir)])
        return self.indexer.sync(targets, rebuild=rebuild, progress=progress)

    def documents(self) -> list[DocumentRow]:
        return self.indexer.documents()

    def document(self, doc_id: str) -> tuple[DocumentRow, list[Clause]]:
        return self.indexer.clauses(doc_id)

    def row(self, doc_id: str) -> DocumentRow:
        """A document as the registry knows it, without its clauses (`AssistantError` when there is none)."""
        return self.indexer.document(doc_id)

    def replacing(self, doc_ids: list[str]) -> dict[str, str]:
        """doc id → what publishing it would replace: a published document, or a file of that name in the corpus."""
        rows = self.documents() if self.has_index() else []
        return replaced(rows, Path(self.settings.corpus_dir), doc_ids)

    def search(self, query: str, k: int = 5) -> Retrieval:
        """The `k` best clauses for a query, ranked and scored as answers rank them (no answer composed)."""
        query, _ = bound_input(query, (), self.settings.limits)
        retrieval = self.retriever.retrieve(query)
        retrieval.candidates = retrieval.candidates[:k]
        return retrieval

    def publish(self, uploads: list[Upload], fields: dict[str, str] | None = None, *, replace: bool = False,
                progress: Progress | None = None) -> tuple[IndexSummary, dict[str, str]]:
        """Publish uploaded files into the corpus and the index: each is read with the given metadata (which
        overrides the file's), written into the corpus folder as Markdown (the original kept under .originals/),
        and the corpus is reindexed. Replacing a published document (or a corpus file) needs `replace`. Nothing is
        written when any file cannot be read (`PublishError` naming it), or duplicates a published document
        (`DuplicateDocument`), and a publish that fails on the way leaves the corpus and the index as they were.
        Returns the summary and doc id → title."""
        index = self.settings.index
        loaded = read_uploads(uploads, fields or {}, index.limits(), index.max_clause_chars)
        replacing = self.replacing([item.upload.doc_id for item in loaded])
        if replacing and not replace:
            raise ReplaceNotConfirmed(replacing)
        refuse_duplicates(loaded, self.documents() if self.has_index() else [])
        corpus = Path(self.settings.corpus_dir)
        summary = publish_files(loaded, corpus, lambda: self.reindex([corpus], progress=progress), self._file_hash)
        return summary, {item.upload.doc_id: item.doc.title for item in loaded}

    def set_status(self, doc_id: str, status: str, replaced_by: str = "") -> IndexSummary:
        """Change a published document's status (已废止, …) in its corpus file and publish it; nothing is
        re-embedded. Answers citing it then carry a warning. When it fails, the file stays as it was."""
        return change_status(self.row(doc_id), status, replaced_by, self.settings.index.limits(),
                             lambda folder: self.reindex([folder]), self._file_hash)

    def _file_hash(self, doc_id: str) -> str | None:
        """The hash of the file a document is indexed from (None when the index has no such document)."""
        try:
            row = self.indexer.document(doc_id)
        except AssistantError:
            return None
        return row.file_hash if row.state != REMOVED else None

    def withdraw(self, doc_id: str) -> IndexSummary:
        return self.indexer.withdraw(doc_id)

    def restore(self, doc_id: str) -> IndexSummary:
        return self.indexer.restore(doc_id)

    def remove(self, doc_id: str) -> IndexSummary:
        return self.indexer.remove(doc_id)

    def history(self, doc_id: str) -> list[VersionRow]:
        return self.indexer.history(doc_id)

    def revert(self, doc_id: str, version: int, progress: Progress | None = None) -> IndexSummary:
        return self.indexer.revert(doc_id, version, progress=progress)


def bound_input(question: str, history: Conversation, limits: LimitSettings) -> tuple[str, list[Turn]]:
    """The question and the history's turns as the core takes them, or `InputTooLongError`. Every door calls
    this (through `ask`, or itself before it queues work), so one bound holds for all of them."""
    question = question.strip()
    if len(question) > limits.max_question_chars:
        raise InputTooLongError(f"问题过长（{len(question)} 字），请控制在 {limits.max_question_chars} 字以内。",
                                "ask a shorter question")
    kept = turns(history)
    if len(kept) > limits.max_history_turns or \
            sum(len(t.question) + len(t.asked) for t in kept) > limits.max_history_chars:
        raise InputTooLongError(f"对话过长（{len(kept)} 轮），请清空对话后重新提问。", "start a new conversation")
    return question, kept


def _forget_embedded_clients() -> None:
    """Chroma's embedded client keeps one in-memory copy of a store per process; the next client reads it anew
    (clients already open keep working on theirs)."""
    from chromadb.api.shared_system_client import SharedSystemClient

    SharedSystemClient.clear_system_cache()
