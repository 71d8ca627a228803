"""Publishing a generation: registry changes, store records, BM25 and exact keys — all of it or none.

Every change goes the same way. Inside one SQLite transaction the registry's documents and clauses
are changed; the records readers should see are worked out from the active documents (with their
cross-document links); those that differ from the visible ones are added to the vector store under
the new generation (vectors from the embedding cache) and the old ones are marked removed; the
generation's BM25 and exact-key files are written; the transaction commits; the manifest switches.
Readers of the previous generation see none of it until the switch.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from assistant.index.generations import Manifest, clean_up, collection_name, generation_dir
from assistant.index.lexical import LexicalIndex
from assistant.index.links import LINK_SIMILARITY, interpretation_links, interpreted, replacement_links
from assistant.index.registry import ACTIVE, ClauseRow, DocumentRow, Registry
from assistant.index.store import ClauseStore, drop_collection, record_id

log = logging.getLogger(__name__)

# (phase, done, total): "reading" and "registering" count documents, "embedding" and "storing" clauses.
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


@dataclass
class _Desired:
    row: ClauseRow
    record: dict[str, Any]
    record_hash: str

    @property
    def clause_id(self) -> str:
        return self.row.clause_id


def digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def link_similarity(model: str) -> float:
    """The cosine above which an interpretation explains its most similar clause, for the model's vectors."""
    if "+tuned-" not in model:
        return LINK_SIMILARITY
    from assistant.index import tuned_model

    return float(tuned_model.meta().get("link_similarity", LINK_SIMILARITY))


@dataclass
class Publisher:
    """Publishes generations of one index directory."""

    index_dir: Path
    embedder: Callable[[], Embedder]
    fingerprint: str
    chunking: str
    model: str
    prefix: str
    chroma_url: str = ""

    def publish(self, registry: Registry, client: Any, change: Callable[[], None], full: bool,
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
                documents = registry.documents()
                active = {d: row for d, row in documents.items() if row.state == ACTIVE}
                current = {} if full else registry.visible_records()
                expanded, signatures = self._expand(registry, active, full)
                wanted = {d.clause_id: d.record_hash for d in expanded}
                to_add = [d for d in expanded if current.get(d.clause_id, ("", "", ""))[1] != d.record_hash]
                to_remove = [rid for cid, (rid, h, doc) in current.items()
                             if doc not in active or (doc in signatures and wanted.get(cid) != h)]
                for doc_id, row in documents.items():  # documents without visible records: none to keep
                    if doc_id not in active and row.records_sig:
                        registry.set_records_sig(doc_id, "")
                for doc_id, signature in signatures.items():
                    registry.set_records_sig(doc_id, signature)
                rows = registry.index_rows()
                summary.documents, summary.clauses = len(active), len(rows)
                if not to_add and not to_remove and not full:
                    summary.generation = previous
                    registry.drop_generation(generation)
                    registry.db.execute("UPDATE documents SET generation = ? WHERE generation = 0", (previous,))
                    return
                vectors = self._vectors(registry, [d.row for d in to_add], summary)
                store.add([d.record for d in to_add], [d.row.passage for d in to_add],
                          [vectors[d.row.passage_hash] for d in to_add], generation,
                          (lambda done, total: progress("storing", done, total)) if progress else None)
                store.mark_removed(to_remove, generation)
                retired = set(to_remove)
                ids = {cid: rid for cid, (rid, _, _) in current.items() if rid not in retired}
                ids.update((d.clause_id, record_id(d.clause_id, generation)) for d in to_add)
                self._write_generation(registry, generation, rows, ids)
                if full:
                    registry.clear_records()
                else:
                    registry.remove_records(to_remove, generation)
                registry.add_records((record_id(d.clause_id, generation), d.clause_id, d.row.doc_id, d.record_hash,
                                      generation) for d in to_add)
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
        clean_up(self.index_dir, registry, client, previous, self.fingerprint, embedded=not self.chroma_url)

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

    def _expand(self, registry: Registry, active: dict[str, DocumentRow],
                full: bool) -> tuple[list[_Desired], dict[str, str]]:
        """The records readers should see for each active document whose records must be (re)made: its
        clauses with their cross-document links. A document whose content and links are what its visible
        records were made from keeps those records. Returns the records and each expanded document's
        signature."""
        metadata = {d: row.metadata for d, row in active.items()}
        replaced = replacement_links(metadata)
        targets = interpreted(metadata)
        refers: dict[str, list[str]] = {}
        by_doc: dict[str, list[str]] = {}
        if targets:
            linked = registry.clauses(set(targets) | set(targets.values()))
            vectors = registry.cached_vectors(self.fingerprint, (r.passage_hash for r in linked))
            refers = interpretation_links(targets, linked, vectors, link_similarity(self.model))
            for clause in (c for c in linked if c.clause_id in refers):
                named = ",".join(refers[clause.clause_id])
                by_doc.setdefault(clause.doc_id, []).append(f"{clause.clause_id}>{named}")
        signatures = {}
        for doc_id, row in active.items():
            signature = digest("\x1f".join([row.content_hash, json.dumps(replaced.get(doc_id, {}), sort_keys=True),
                                             *sorted(by_doc.get(doc_id, []))]))
            if full or signature != row.records_sig:
                signatures[doc_id] = signature
        expanded = []
        for clause in registry.clauses(signatures):
            record = dict(clause.record)
            record.update(replaced.get(clause.doc_id, {}))
            record["refers_to"] = json.dumps(refers.get(clause.clause_id, []), ensure_ascii=False)
            record_hash = digest(json.dumps(record, ensure_ascii=False, sort_keys=True) + clause.passage_hash)
            expanded.append(_Desired(clause, record, record_hash))
        return expanded, signatures

    def _vectors(self, registry: Registry, rows: list[ClauseRow], summary: IndexSummary) -> dict[str, np.ndarray]:
        vectors = registry.cached_vectors(self.fingerprint, (r.passage_hash for r in rows))
        missing = {r.passage_hash: r.passage for r in rows if r.passage_hash not in vectors}
        if missing:  # only when the cache was cleared behind the registry's back
            embedded = self.embedder().embed_documents(list(missing.values()))
            fresh = {h: np.asarray(v, dtype=np.float32) for h, v in zip(missing, embedded, strict=True)}
            vectors.update(fresh)
            summary.embedded += len(fresh)
        return vectors

    def _write_generation(self, registry: Registry, generation: int,
                          rows: list[tuple[str, np.ndarray, list[str]]], records: dict[str, str]) -> None:
        """The generation's BM25 index, exact 文号/条号 keys and record ids, beside the vector store."""
        folder = generation_dir(self.index_dir, generation)
        ids = [clause_id for clause_id, _, _ in rows]
        LexicalIndex.from_terms(ids, [terms for _, terms, _ in rows], registry.vocabulary()).save(folder / "lexical")
        keys: dict[str, list[str]] = {}
        for clause_id, _, clause_keys in rows:
            for key in clause_keys:
                keys.setdefault(key, []).append(clause_id)
        (folder / "exact.json").write_text(json.dumps(keys, ensure_ascii=False), encoding="utf-8")
        (folder / "records.json").write_text(json.dumps(records, ensure_ascii=False), encoding="utf-8")
