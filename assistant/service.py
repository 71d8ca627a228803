"""`Assistant`: the one façade the CLI, web UI and WeChat channel call."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path

from assistant.answer.extractive import compose
from assistant.answer.records import Answer
from assistant.config import Settings
from assistant.index.build import BuildSummary, Manifest, Progress, build_index
from assistant.index.embedder import ClauseEmbedder, load_embedder
from assistant.retrieve import Retrieval, Retriever

log = logging.getLogger(__name__)


class Assistant:
    """Answers questions from the active index; reindexes a corpus."""

    def __init__(self, settings: Settings, embedder: ClauseEmbedder | None = None) -> None:
        self.settings = settings
        self._embedder = embedder
        self._retriever: Retriever | None = None

    @property
    def index_dir(self) -> Path:
        return Path(self.settings.index_dir)

    @property
    def embedder(self) -> ClauseEmbedder:
        if self._embedder is None:
            self._embedder = load_embedder(self.settings.index)
        return self._embedder

    @property
    def retriever(self) -> Retriever:
        if self._retriever is None:
            Manifest.read(self.index_dir)  # fail fast, before loading the model, when there is no index
            self._retriever = Retriever(self.index_dir, self.embedder, self.settings,
                                        self.settings.index.chroma_url)
        return self._retriever

    def has_index(self) -> bool:
        return (self.index_dir / "manifest.json").exists()

    def manifest(self) -> Manifest:
        return Manifest.read(self.index_dir)

    def retrieve(self, question: str) -> Retrieval:
        return self.retriever.retrieve(question)

    def ask(self, question: str) -> Answer:
        """A cited answer, or a refusal when nothing in the corpus is relevant."""
        return self.ask_traced(question)[0]

    def ask_traced(self, question: str) -> tuple[Answer, Retrieval]:
        """The answer together with the retrieval it was composed from (all candidates and their scores)."""
        retrieval = self.retrieve(question)
        answer = compose(retrieval, self.settings.answer, self.retriever.lexical, self.retriever.neighbours)
        return answer, retrieval

    def reindex(self, paths: Iterable[Path] | None = None, progress: Progress | None = None) -> BuildSummary:
        """Index the given files/folders (default: the corpus folder) and switch to the new generation."""
        targets = list(paths or [Path(self.settings.corpus_dir)])
        summary = build_index(
            targets, self.index_dir, self.embedder,
            chroma_url=self.settings.index.chroma_url,
            max_chars=self.settings.index.max_clause_chars,
            max_file_bytes=self.settings.index.max_file_bytes,
            progress=progress,
        )
        self._retriever = None
        return summary
