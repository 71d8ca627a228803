"""Reindex: diff the corpus against the registry, embed only what changed, publish a new generation.

Files added, revised or deleted and documents withdrawn, restored or removed all end in one
`Publisher.publish` (index/publish.py), which switches readers to the result only when it is complete.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from assistant.errors import AssistantError, CorpusError, IndexNotBuiltError
from assistant.index.generations import index_lock, recover
from assistant.index.lexical import tokenize
from assistant.index.links import exact_keys
from assistant.index.publish import Embedder, IndexSummary, Progress, Publisher, digest
from assistant.index.registry import ACTIVE, REGISTRY, REMOVED, WITHDRAWN, ClauseRow, DocumentRow, Registry, VersionRow
from assistant.index.store import chroma_client, clause_to_record, record_to_clause
from assistant.ingest.clauses import CHUNKING_VERSION
from assistant.ingest.limits import Limits
from assistant.ingest.loaders import doc_id_for, iter_corpus_files
from assistant.ingest.normalize import normalize
from assistant.ingest.records import Clause, PolicyDocument
from assistant.ingest.sandbox import parse_file

log = logging.getLogger(__name__)


@dataclass
class _Parsed:
    doc: PolicyDocument
    file: Path
    root: Path
    file_hash: str
    clauses: list[Clause]

    @property
    def text_hash(self) -> str:
        return hashlib.sha256(self.doc.text.encode("utf-8")).hexdigest()


def passage_text(clause: Clause) -> str:
    """What is embedded and BM25-indexed for a clause: its title and headings give it context."""
    return normalize(" ".join(part for part in (clause.title, clause.heading, clause.text) if part))




def shown(file: Path, root: Path) -> str:
    """A corpus file as a summary names it: from its corpus folder's name down (a summary is shown to the API's
    clients and on the editors' page, which are not told where the server keeps its files)."""
    try:
        return (Path(root.name) / file.relative_to(root)).as_posix()
    except ValueError:
        return file.name


def failed(e: CorpusError, file: Path, root: Path) -> str:
    """Why a file was not indexed, naming it as `shown` does."""
    return f"{shown(file, root)}: {e.reason}" + (f" ({e.hint})" if e.hint else "")


def chunking_key(max_chars: int) -> str:
    return f"{CHUNKING_VERSION}.{max_chars}"


class Indexer:
    """Keeps one index directory in step with a corpus, one generation at a time."""

    def __init__(self, index_dir: Path, load_embedder: Callable[[], Embedder], *, fingerprint: str, model: str,
                 chroma_url: str = "", collection_prefix: str = "clauses", max_chars: int = 400,
                 limits: Limits = Limits()) -> None:  # noqa: B008 (frozen)
        self.index_dir = index_dir
        self._load_embedder = load_embedder
        self._embedder: Embedder | None = None
        self.fingerprint = fingerprint
        self.model = model
        self.chroma_url = chroma_url
        self.prefix = collection_prefix
        self.max_chars = max_chars
        self.limits = limits
        self.chunking = chunking_key(max_chars)
        self.publisher = Publisher(index_dir, lambda: self.embedder, fingerprint, self.chunking, model,
                                   collection_prefix, chroma_url)

    @property
    def embedder(self) -> Embedder:
        """Loaded only when something must be embedded: a run with nothing new to embed never loads it."""
        if self._embedder is None:
            self._embedder = self._load_embedder()
        return self._embedder

    # the editors' operations
    def sync(self, paths: Iterable[Path], *, rebuild: bool = False, progress: Progress | None = None) -> IndexSummary:
        """Bring the index in step with the files under `paths`: add new, replace changed, drop deleted ones.

        Documents indexed from elsewhere are left alone; a file that fails to load keeps its indexed version.
        With `rebuild` (or when the model or the chunking changed) a new collection is built and switched to.
        """
        paths = list(paths)
        missing = [p for p in paths if not p.exists()]
        files = list(iter_corpus_files(paths))
        if missing or not files:
            where = ", ".join(str(p) for p in (missing or paths))
            raise CorpusError(where, "no such file or folder" if missing else "no corpus files found",
                              "supported files: .md .txt .html .docx .pdf; nothing in the index was changed")
        return self._sync(files, [p.resolve() for p in paths], rebuild=rebuild, progress=progress)

    def _sync(self, files: list[tuple[Path, Path]], scope: list[Path], *, rebuild: bool = False,
              progress: Progress | None = None, revive: str = "") -> IndexSummary:
        started = time.perf_counter()
        summary = IndexSummary()
        with self._writing() as (registry, client):
            full = rebuild or self._needs_rebuild(registry)
            known = registry.documents()
            if revive in known:
                known[revive].file_hash = ""  # `docs restore` of a removed document: read its file again
            parsed, gone = self._scan(files, scope, known, full, summary, progress)
            dropped: list[str] = []
            if full:
                more, dropped = self._reparse_others(known, parsed, gone, summary)
                parsed += more
            if not (full or parsed or gone or dropped):
                summary.generation = registry.committed_generation()[0]
                active = registry.documents([ACTIVE])
                summary.documents, summary.clauses = len(active), sum(row.clauses for row in active.values())
                summary.seconds = time.perf_counter() - started
                return summary
            self._embed_missing(registry, [c for p in parsed for c in p.clauses], summary, progress)

            def change() -> None:
                for i, item in enumerate(parsed, 1):
                    old = known.get(item.doc.doc_id)
                    state = old.state if old is not None and old.state == WITHDRAWN else ACTIVE
                    self._store_document(registry, item, state)
                    if progress:
                        progress("registering", i, len(parsed))
                for doc_id in gone + dropped:
                    registry.delete_document(doc_id)

            self.publisher.publish(registry, client, change, full, summary, progress)
        summary.seconds = time.perf_counter() - started
        return summary

    def withdraw(self, doc_id: str) -> IndexSummary:
        """Keep the document (and its vectors) but stop retrieving it."""
        return self._set_state(doc_id, ACTIVE, WITHDRAWN)

    def restore(self, doc_id: str, progress: Progress | None = None) -> IndexSummary:
        """Retrieve a withdrawn document again; a removed one is indexed again from its file."""
        with closing(self._registry()) as registry:
            row = self._document(registry, doc_id)
        if row.state != REMOVED:
            return self._set_state(doc_id, WITHDRAWN, ACTIVE)
        if not Path(row.path).exists():
            raise CorpusError(row.path, "no such file", f"put the file of {doc_id!r} back, then restore it")
        return self._sync([(Path(row.path), Path(row.root))], [], progress=progress, revive=doc_id)

    def remove(self, doc_id: str) -> IndexSummary:
        """Delete the document from the index; `index` leaves its file out until the file changes."""
        started = time.perf_counter()
        summary = IndexSummary()
        with self._writing(changing=doc_id) as (registry, client):
            row = self._document(registry, doc_id)
            if row.state == REMOVED:
                raise AssistantError(f"document {doc_id!r} is already removed", "`docs restore` brings it back")

            def change() -> None:
                registry.delete_document(doc_id)
                row.state, row.clauses = REMOVED, 0
                registry.put_document(row)

            summary.removed.append(doc_id)
            self.publisher.publish(registry, client, change, False, summary, None)
        summary.seconds = time.perf_counter() - started
        return summary

    def history(self, doc_id: str) -> list[VersionRow]:
        """Every indexed version of the document's file, oldest first."""
        with closing(self._registry()) as registry:
            self._document(registry, doc_id)
            return registry.versions(doc_id)

    def revert(self, doc_id: str, version: int, progress: Progress | None = None) -> IndexSummary:
        """Put version `version` of the document's file back in the corpus and index it (a new version whose
        bytes are the old one's; the versions in between are kept)."""
        with closing(self._registry()) as registry:
            row = self._document(registry, doc_id)
            found = registry.version_content(doc_id, version)
        if found is None:
            raise AssistantError(f"document {doc_id!r} has no version {version}",
                                 f"`policy-assistant docs history {doc_id}` lists its versions")
        kept, content = found
        current = Path(row.path)
        target = current.with_name(Path(current.stem + Path(kept.file).suffix).name)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        if current != target and current.exists():
            current.unlink()  # the version being replaced is in the history
        return self._sync([(target, Path(row.root))], [], progress=progress, revive=doc_id)

    def documents(self) -> list[DocumentRow]:
        with closing(self._registry()) as registry:
            return list(registry.documents().values())

    def document(self, doc_id: str) -> DocumentRow:
        """A document's row (`AssistantError` when the index has none of that id)."""
        with closing(self._registry()) as registry:
            return self._document(registry, doc_id)

    def clauses(self, doc_id: str) -> tuple[DocumentRow, list[Clause]]:
        """A document and its clauses as parsed (the preview editors check before publishing)."""
        with closing(self._registry()) as registry:
            row = self._document(registry, doc_id)
            return row, [record_to_clause(c.record) for c in registry.clauses([doc_id])]

    # steps
    @contextmanager
    def _writing(self, changing: str = "") -> Iterator[tuple[Registry, Any]]:
        """The writer's lock, the registry and the store, brought to their last committed state."""
        if changing:
            self._registry().close()  # there must be an index to change a document of
        with index_lock(self.index_dir), closing(Registry(self.index_dir)) as registry:
            client = chroma_client(self.index_dir, self.chroma_url)
            recover(self.index_dir, registry, client)
            if changing and self._needs_rebuild(registry):
                raise AssistantError(f"the index in {self.index_dir} was built with another model or chunking",
                                     f"run `policy-assistant index` first, then change {changing!r}")
            yield registry, client

    def _registry(self) -> Registry:
        """The registry of an index that exists (reading must not create one)."""
        if not (self.index_dir / REGISTRY).exists():
            raise IndexNotBuiltError(str(self.index_dir))
        return Registry(self.index_dir)

    def _needs_rebuild(self, registry: Registry) -> bool:
        generation, _ = registry.committed_generation()
        return (not generation or registry.get_meta("fingerprint") != self.fingerprint
                or registry.get_meta("chunking") != self.chunking)

    def _document(self, registry: Registry, doc_id: str) -> DocumentRow:
        row = registry.document(doc_id)
        if row is None:
            raise AssistantError(f"no document {doc_id!r} in the index", "`policy-assistant docs list` shows the ids")
        return row

    def _set_state(self, doc_id: str, expected: str, new: str) -> IndexSummary:
        started = time.perf_counter()
        summary = IndexSummary()
        with self._writing(changing=doc_id) as (registry, client):
            row = self._document(registry, doc_id)
            if row.state != expected:
                raise AssistantError(f"document {doc_id!r} is {row.state}, not {expected}")
            summary.updated.append(doc_id)
            self.publisher.publish(registry, client, lambda: registry.set_state(doc_id, new), False, summary, None)
        summary.seconds = time.perf_counter() - started
        return summary

    def _scan(self, files: list[tuple[Path, Path]], scope: list[Path], known: dict[str, DocumentRow], full: bool,
              summary: IndexSummary, progress: Progress | None = None) -> tuple[list[_Parsed], list[str]]:
        """Load the files that are new or changed; find the documents in `scope` whose files are gone."""
        seen: dict[str, Path] = {}
        parsed: list[_Parsed] = []
        for i, (file, root) in enumerate(files, 1):
            if progress:
                progress("reading", i, len(files))
            doc_id = doc_id_for(file, root)
            if doc_id in seen:
                summary.errors.append(f"{shown(file, root)}: same document id {doc_id!r} as "
                                      f"{shown(seen[doc_id], root)} (rename one of the files)")
                continue
            seen[doc_id] = file
            old = known.get(doc_id)
            file_hash = self._file_hash(file)
            if old is not None and old.file_hash == file_hash and (old.state == REMOVED or not full):
                if old.state == REMOVED:
                    summary.skipped.append(doc_id)
                else:
                    summary.unchanged += 1
                continue
            try:
                doc, clauses = parse_file(file, root, self.limits, self.max_chars)
            except CorpusError as e:
                log.warning("%s", e)
                summary.errors.append(failed(e, file, root) + ("; the indexed version stays"
                                                              if old and old.state != REMOVED else ""))
                continue
            parsed.append(_Parsed(doc, file, root, file_hash, clauses))
        gone = [doc_id for doc_id, row in known.items()
                if doc_id not in seen and any(Path(row.path) == s or Path(row.path).is_relative_to(s) for s in scope)]
        parsed = self._drop_duplicates(parsed, known, set(gone), summary)
        for item in parsed:
            old = known.get(item.doc.doc_id)
            (summary.added if old is None or old.state == REMOVED else summary.updated).append(item.doc.doc_id)
        summary.removed += [d for d in gone if known[d].state != REMOVED]
        return parsed, gone

    def _file_hash(self, file: Path) -> str:
        try:
            if 0 < file.stat().st_size <= self.limits.max_file_bytes:
                return hashlib.sha256(file.read_bytes()).hexdigest()
        except OSError:
            pass
        return ""  # the loader reports why

    def _drop_duplicates(self, parsed: list[_Parsed], known: dict[str, DocumentRow], gone: set[str],
                         summary: IndexSummary) -> list[_Parsed]:
        """A document whose text is already indexed under another id is refused (a rename is not a duplicate)."""
        changing = {p.doc.doc_id for p in parsed}
        owners = {row.text_hash: doc_id for doc_id, row in known.items()
                  if row.state != REMOVED and doc_id not in gone and doc_id not in changing}
        kept = []
        for item in parsed:
            other = owners.get(item.text_hash)
            if other is not None:
                summary.errors.append(f"{shown(item.file, item.root)}: same text as document {other!r}, already "
                                      "indexed (keep one of the two files)")
                continue
            owners[item.text_hash] = item.doc.doc_id
            kept.append(item)
        return kept

    def _reparse_others(self, known: dict[str, DocumentRow], parsed: list[_Parsed], gone: list[str],
                        summary: IndexSummary) -> tuple[list[_Parsed], list[str]]:
        """For a rebuild: the documents indexed from outside the given paths, read again from their files."""
        done = {p.doc.doc_id for p in parsed} | set(gone)
        more, dropped = [], []
        for doc_id, row in known.items():
            if doc_id in done or row.state == REMOVED or doc_id in summary.updated:
                continue
            try:
                doc, clauses = parse_file(Path(row.path), Path(row.root), self.limits, self.max_chars)
                more.append(_Parsed(doc, Path(row.path), Path(row.root), self._file_hash(Path(row.path)), clauses))
            except CorpusError as e:
                summary.errors.append(f"{failed(e, Path(row.path), Path(row.root))}; not in the rebuilt index")
                dropped.append(doc_id)
        return more, dropped

    def _embed_missing(self, registry: Registry, clauses: list[Clause], summary: IndexSummary,
                       progress: Progress | None) -> None:
        """Embed the passages the cache lacks, shortest first (little padding), storing each batch at once."""
        passages = {digest(p): p for p in (passage_text(c) for c in clauses)}
        cached = registry.cached_vectors(self.fingerprint, passages)
        todo = sorted((h for h in passages if h not in cached), key=lambda h: len(passages[h]))
        if not todo:
            return
        embedder = self.embedder
        step = max(embedder.batch_size, 1) * 4
        for start in range(0, len(todo), step):
            batch = todo[start:start + step]
            vectors = embedder.embed_documents([passages[h] for h in batch])
            registry.cache_vectors(self.fingerprint, {h: np.asarray(v, dtype=np.float32)
                                                      for h, v in zip(batch, vectors, strict=True)})
            summary.embedded += len(batch)
            if progress:
                progress("embedding", min(start + step, len(todo)), len(todo))

    def _store_document(self, registry: Registry, item: _Parsed, state: str) -> None:
        doc = item.doc
        rows = []
        for clause in item.clauses:
            passage = passage_text(clause)
            rows.append(ClauseRow(clause.clause_id, doc.doc_id, clause.order, clause_to_record(clause), passage,
                                  digest(passage), registry.term_ids(tokenize(passage)), clause_keys(clause)))
        registry.put_clauses(doc.doc_id, rows)
        now = time.strftime("%Y-%m-%dT%H:%M:%S")
        registry.put_document(DocumentRow(
            doc.doc_id, str(item.root.resolve()), str(item.file.resolve()), item.file_hash, item.text_hash,
            doc.content_hash, doc.metadata(), state, len(rows), now, 0))
        registry.add_version(doc.doc_id, item.file, item.file_hash, doc.title, len(rows), now)

def clause_keys(clause: Clause) -> list[str]:
    return exact_keys(clause.text, clause.doc_number, clause.label)


def build_index(paths: Iterable[Path], index_dir: Path, embedder: Embedder, **options: Any) -> IndexSummary:
    """Sync `index_dir` with the files under `paths` using an embedder that is already loaded."""
    progress = options.pop("progress", None)
    rebuild = options.pop("rebuild", False)
    indexer = Indexer(index_dir, lambda: embedder, fingerprint=embedder.fingerprint, model=embedder.name, **options)
    return indexer.sync(paths, rebuild=rebuild, progress=progress)
