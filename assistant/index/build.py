"""Reindex: diff the corpus against the registry, embed only what changed, publish a new generation.

Every change — files added, revised or deleted, a document withdrawn, restored or removed — goes the
same way: the registry's documents and clauses are changed inside one SQLite transaction, the clause
records that differ from the visible ones are added to the vector store under the new generation
(vectors from the embedding cache) and the old ones marked removed, the generation's BM25 and exact-key
files are written, the transaction commits, and the manifest switches. Readers of the previous
generation see none of it until the switch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable, Iterable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.errors import AssistantError, CorpusError
from assistant.index.generations import (
    Manifest,
    clean_up,
    collection_name,
    generation_dir,
    index_lock,
    recover,
)
from assistant.index.lexical import LexicalIndex, tokenize
from assistant.index.links import exact_keys, interpretation_links, replacement_links
from assistant.index.registry import ACTIVE, REMOVED, WITHDRAWN, ClauseRow, DocumentRow, Registry
from assistant.index.store import (
    ClauseStore,
    chroma_client,
    clause_to_record,
    drop_collection,
    record_id,
    record_to_clause,
)
from assistant.ingest.clauses import CHUNKING_VERSION, parse_clauses
from assistant.ingest.loaders import doc_id_for, iter_corpus_files, load_document
from assistant.ingest.normalize import normalize
from assistant.ingest.records import Clause, PolicyDocument

log = logging.getLogger(__name__)

# (phase, done, total): "embedding" and "storing" report clause by clause.
Progress = Callable[[str, int, int], None]


class Embedder(Protocol):
    name: str
    batch_size: int

    @property
    def fingerprint(self) -> str: ...

    def embed_documents(self, texts: list[str]) -> list[list[float]]: ...


@dataclass
class IndexSummary:
    """What one run did."""

    added: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    unchanged: int = 0
    skipped: list[str] = field(default_factory=list)  # removed with `docs remove`, file unchanged
    errors: list[str] = field(default_factory=list)
    embedded: int = 0
    records_added: int = 0
    records_removed: int = 0
    documents: int = 0
    clauses: int = 0
    generation: int = 0
    switched: bool = False
    seconds: float = 0.0
    changes: list[dict[str, object]] = field(default_factory=list)  # per added/updated document


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


def _hash(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def chunking_key(max_chars: int) -> str:
    return f"{CHUNKING_VERSION}.{max_chars}"


class Indexer:
    """Keeps one index directory in step with a corpus, one generation at a time."""

    def __init__(self, index_dir: Path, load_embedder: Callable[[], Embedder], *, fingerprint: str, model: str,
                 chroma_url: str = "", collection_prefix: str = "clauses", max_chars: int = 400,
                 max_file_bytes: int = 20_000_000) -> None:
        self.index_dir = index_dir
        self._load_embedder = load_embedder
        self._embedder: Embedder | None = None
        self.fingerprint = fingerprint
        self.model = model
        self.chroma_url = chroma_url
        self.prefix = collection_prefix
        self.max_chars = max_chars
        self.max_file_bytes = max_file_bytes
        self.chunking = chunking_key(max_chars)

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
        with index_lock(self.index_dir), closing(Registry(self.index_dir)) as registry:
            client = chroma_client(self.index_dir, self.chroma_url)
            recover(self.index_dir, registry, client)
            full = rebuild or self._needs_rebuild(registry)
            known = registry.documents()
            if revive in known:
                known[revive].file_hash = ""  # `docs restore` of a removed document: read its file again
            parsed, gone = self._scan(files, scope, known, full, summary)
            dropped: list[str] = []
            if full:
                more, dropped = self._reparse_others(known, parsed, gone, summary)
                parsed += more
            if not (full or parsed or gone or dropped):
                summary.generation = registry.committed_generation()[0]
                summary.documents = len(registry.documents([ACTIVE]))
                summary.clauses = sum(row.clauses for row in registry.documents([ACTIVE]).values())
                summary.seconds = time.perf_counter() - started
                return summary
            self._embed_missing(registry, [c for p in parsed for c in p.clauses], summary, progress)

            def change() -> None:
                for item in parsed:
                    old = known.get(item.doc.doc_id)
                    state = old.state if old is not None and old.state == WITHDRAWN else ACTIVE
                    self._store_document(registry, item, state)
                for doc_id in gone + dropped:
                    registry.delete_document(doc_id)

            self._publish(registry, client, change, full, summary, progress)
        summary.seconds = time.perf_counter() - started
        return summary

    def withdraw(self, doc_id: str) -> IndexSummary:
        """Keep the document (and its vectors) but stop retrieving it."""
        return self._set_state(doc_id, ACTIVE, WITHDRAWN)

    def restore(self, doc_id: str, progress: Progress | None = None) -> IndexSummary:
        """Retrieve a withdrawn document again; a removed one is indexed again from its file."""
        with closing(Registry(self.index_dir)) as registry:
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
        with index_lock(self.index_dir), closing(Registry(self.index_dir)) as registry:
            client = chroma_client(self.index_dir, self.chroma_url)
            recover(self.index_dir, registry, client)
            row = self._document(registry, doc_id)
            if row.state == REMOVED:
                raise AssistantError(f"document {doc_id!r} is already removed", "`docs restore` brings it back")

            def change() -> None:
                registry.delete_document(doc_id)
                row.state, row.clauses = REMOVED, 0
                registry.put_document(row)

            summary.removed.append(doc_id)
            self._publish(registry, client, change, False, summary, None)
        summary.seconds = time.perf_counter() - started
        return summary

    def documents(self) -> list[DocumentRow]:
        with closing(Registry(self.index_dir)) as registry:
            return list(registry.documents().values())

    def clauses(self, doc_id: str) -> tuple[DocumentRow, list[Clause]]:
        """A document and its clauses as parsed (the preview editors check before publishing)."""
        with closing(Registry(self.index_dir)) as registry:
            row = self._document(registry, doc_id)
            return row, [record_to_clause(c.record) for c in registry.clauses([doc_id])]

    # steps
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
        with index_lock(self.index_dir), closing(Registry(self.index_dir)) as registry:
            client = chroma_client(self.index_dir, self.chroma_url)
            recover(self.index_dir, registry, client)
            row = self._document(registry, doc_id)
            if row.state != expected:
                raise AssistantError(f"document {doc_id!r} is {row.state}, not {expected}")
            summary.updated.append(doc_id)
            self._publish(registry, client, lambda: registry.set_state(doc_id, new), False, summary, None)
        summary.seconds = time.perf_counter() - started
        return summary

    def _scan(self, files: list[tuple[Path, Path]], scope: list[Path], known: dict[str, DocumentRow], full: bool,
              summary: IndexSummary) -> tuple[list[_Parsed], list[str]]:
        """Load the files that are new or changed; find the documents in `scope` whose files are gone."""
        seen: dict[str, Path] = {}
        parsed: list[_Parsed] = []
        for file, root in files:
            doc_id = doc_id_for(file, root)
            if doc_id in seen:
                summary.errors.append(str(CorpusError(str(file), f"same document id {doc_id!r} as {seen[doc_id]}",
                                                      "rename one of the files")))
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
                doc = load_document(file, root, max_bytes=self.max_file_bytes)
                clauses = parse_clauses(doc, max_chars=self.max_chars)
                if not clauses:
                    raise CorpusError(str(file), "no clauses found in the text")
            except CorpusError as e:
                log.warning("%s", e)
                summary.errors.append(str(e) + ("; the indexed version stays" if old and old.state != REMOVED else ""))
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
            if 0 < file.stat().st_size <= self.max_file_bytes:
                return hashlib.sha256(file.read_bytes()).hexdigest()
        except OSError:
            pass
        return ""  # the loader reports why

    def _drop_duplicates(self, parsed: list[_Parsed], known: dict[str, DocumentRow], gone: set[str],
                         summary: IndexSummary) -> list[_Parsed]:
        """A document whose text is already indexed under another id is refused (a rename is not a duplicate)."""
        changing = {p.doc.doc_id for p in parsed}
        owners = {row.text_hash: row.path for doc_id, row in known.items()
                  if row.state != REMOVED and doc_id not in gone and doc_id not in changing}
        kept = []
        for item in parsed:
            other = owners.get(item.text_hash)
            if other is not None:
                summary.errors.append(str(CorpusError(str(item.file), f"same text as {other}, already indexed",
                                                      "keep one of the two files")))
                continue
            owners[item.text_hash] = str(item.file)
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
                doc = load_document(Path(row.path), Path(row.root), max_bytes=self.max_file_bytes)
                more.append(_Parsed(doc, Path(row.path), Path(row.root), self._file_hash(Path(row.path)),
                                    parse_clauses(doc, max_chars=self.max_chars)))
            except CorpusError as e:
                summary.errors.append(f"{e}; not in the rebuilt index")
                dropped.append(doc_id)
        return more, dropped

    def _embed_missing(self, registry: Registry, clauses: list[Clause], summary: IndexSummary,
                       progress: Progress | None) -> None:
        """Embed the passages the cache lacks, shortest first (little padding), storing each batch at once."""
        passages = {_hash(p): p for p in (passage_text(c) for c in clauses)}
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
                                  _hash(passage), registry.term_ids(tokenize(passage)), clause_keys(clause)))
        registry.put_clauses(doc.doc_id, rows)
        registry.put_document(DocumentRow(
            doc.doc_id, str(item.root.resolve()), str(item.file.resolve()), item.file_hash, item.text_hash,
            doc.content_hash, doc.metadata(), state, len(rows), time.strftime("%Y-%m-%dT%H:%M:%S"), 0))

    def _publish(self, registry: Registry, client: Any, change: Callable[[], None], full: bool,
                 summary: IndexSummary, progress: Progress | None) -> None:
        """Apply `change` to the registry and make the result the active generation — all of it or none."""
        previous, current_collection = registry.committed_generation()
        generation = registry.next_generation()
        collection = (collection_name(self.prefix, self.fingerprint, self.chunking, generation) if full
                      else current_collection)
        registry.begin_generation(generation, collection, time.strftime("%Y-%m-%dT%H:%M:%S"))
        store = ClauseStore(client, collection, generation=generation)
        try:
            with registry.transaction():
                change()
                desired = self._desired(registry)
                current = {} if full else registry.visible_records()
                wanted = {d.clause_id: d.record_hash for d in desired}
                to_add = [d for d in desired if current.get(d.clause_id, ("", ""))[1] != d.record_hash]
                to_remove = [rid for cid, (rid, h) in current.items() if wanted.get(cid) != h]
                if not to_add and not to_remove and not full:
                    summary.generation = previous
                    summary.documents, summary.clauses = self._counts(registry, desired)
                    registry.drop_generation(generation)
                    registry.db.execute("UPDATE documents SET generation = ? WHERE generation = 0", (previous,))
                    return
                vectors = self._vectors(registry, [d.row for d in to_add], summary)
                store.add([d.record for d in to_add], [d.row.passage for d in to_add],
                          [vectors[d.row.passage_hash] for d in to_add], generation,
                          (lambda done, total: progress("storing", done, total)) if progress else None)
                store.mark_removed(to_remove, generation)
                ids = {cid: rid for cid, (rid, h) in current.items() if wanted.get(cid) == h}
                ids.update((d.clause_id, record_id(d.clause_id, generation)) for d in to_add)
                self._write_generation(registry, generation, desired, ids)
                if full:
                    registry.clear_records()
                else:
                    registry.remove_records(to_remove, generation)
                registry.add_records((record_id(d.clause_id, generation), d.clause_id, d.row.doc_id, d.record_hash,
                                      generation) for d in to_add)
                summary.documents, summary.clauses = self._counts(registry, desired)
                manifest = Manifest(generation, collection, self.model, self.fingerprint, self.chunking,
                                    summary.documents, summary.clauses, time.strftime("%Y-%m-%dT%H:%M:%S"))
                registry.set_meta("fingerprint", self.fingerprint)
                registry.set_meta("chunking", self.chunking)
                registry.activate_generation(generation, {
                    "manifest": manifest.__dict__, "added": summary.added, "updated": summary.updated,
                    "removed": summary.removed, "records_added": len(to_add), "records_removed": len(to_remove)})
                registry.db.execute("UPDATE documents SET generation = ? WHERE generation = 0", (generation,))
        except BaseException:
            self._undo(registry, client, generation, previous, collection, full)
            raise
        manifest.write(self.index_dir)
        summary.generation, summary.switched = generation, True
        summary.records_added, summary.records_removed = len(to_add), len(to_remove)
        clean_up(self.index_dir, registry, client, previous, self.fingerprint)

    def _undo(self, registry: Registry, client: Any, generation: int, previous: int, collection: str,
              full: bool) -> None:
        """A run that failed (rather than being killed) cleans up at once; `recover` does it otherwise."""
        try:
            if registry.committed_generation()[0] == generation:
                return  # committed: only the manifest switch is missing, and `recover` completes it
            if full:
                drop_collection(client, collection)
            else:
                ClauseStore(client, collection).roll_back(previous)
            registry.drop_generation(generation)
            shutil.rmtree(generation_dir(self.index_dir, generation), ignore_errors=True)
        except Exception as e:  # the next run's recovery finishes the job
            log.warning("could not clean up generation %s: %s", generation, e)

    def _desired(self, registry: Registry) -> list[_Desired]:
        """The records readers should see: every clause of every active document, with its links."""
        docs = registry.documents([ACTIVE])
        rows = registry.active_clauses()
        replaced = replacement_links({d: row.metadata for d, row in docs.items()})
        interpretations = [d for d, row in docs.items() if row.metadata.get("kind") == "interpretation"]
        refers: dict[str, list[str]] = {}
        if interpretations:
            vectors = registry.cached_vectors(self.fingerprint, (r.passage_hash for r in rows))
            refers = interpretation_links({d: row.metadata for d, row in docs.items()}, rows, vectors)
        desired = []
        for row in rows:
            record = dict(row.record)
            record.update(replaced.get(row.doc_id, {}))
            record["refers_to"] = json.dumps(refers.get(row.clause_id, []), ensure_ascii=False)
            digest = _hash(json.dumps(record, ensure_ascii=False, sort_keys=True) + row.passage_hash)
            desired.append(_Desired(row, record, digest))
        return desired

    def _vectors(self, registry: Registry, rows: list[ClauseRow], summary: IndexSummary) -> dict[str, np.ndarray]:
        vectors = registry.cached_vectors(self.fingerprint, (r.passage_hash for r in rows))
        missing = {r.passage_hash: r.passage for r in rows if r.passage_hash not in vectors}
        if missing:  # only when the cache was cleared behind the registry's back
            embedded = self.embedder.embed_documents(list(missing.values()))
            fresh = {h: np.asarray(v, dtype=np.float32) for h, v in zip(missing, embedded, strict=True)}
            vectors.update(fresh)
            summary.embedded += len(fresh)
        return vectors

    def _write_generation(self, registry: Registry, generation: int, desired: list[_Desired],
                          records: dict[str, str]) -> None:
        """The generation's BM25 index and exact 文号/条号 keys, beside the vector store."""
        folder = generation_dir(self.index_dir, generation)
        ids = [d.clause_id for d in desired]
        LexicalIndex.from_terms(ids, [d.row.terms for d in desired], registry.vocabulary()).save(folder / "lexical")
        keys: dict[str, list[str]] = {}
        for d in desired:
            for key in d.row.keys:
                keys.setdefault(key, []).append(d.clause_id)
        (folder / "exact.json").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
        (folder / "records.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")

    @staticmethod
    def _counts(registry: Registry, desired: list[_Desired]) -> tuple[int, int]:
        return len(registry.documents([ACTIVE])), len(desired)


@dataclass
class _Desired:
    row: ClauseRow
    record: dict[str, Any]
    record_hash: str

    @property
    def clause_id(self) -> str:
        return self.row.clause_id


def clause_keys(clause: Clause) -> list[str]:
    return exact_keys(clause.text, clause.doc_number, clause.label)


def build_index(paths: Iterable[Path], index_dir: Path, embedder: Embedder, **options: Any) -> IndexSummary:
    """Sync `index_dir` with the files under `paths` using an embedder that is already loaded."""
    progress = options.pop("progress", None)
    rebuild = options.pop("rebuild", False)
    indexer = Indexer(index_dir, lambda: embedder, fingerprint=embedder.fingerprint, model=embedder.name, **options)
    return indexer.sync(paths, rebuild=rebuild, progress=progress)
