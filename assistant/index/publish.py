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
from assistant.index.links import interpretation_links, replacement_links
from assistant.index.registry import ACTIVE, ClauseRow, Registry
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
    changes: list[dict[str, object]] = field(default_factory=list)  # per added/updated document


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


@dataclass
class Publisher:
    """Publishes generations of one index directory."""

    index_dir: Path
    embedder: Callable[[], Embedder]
    fingerprint: str
    chunking: str
    model: str
    prefix: str

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
            record_hash = digest(json.dumps(record, ensure_ascii=False, sort_keys=True) + row.passage_hash)
            desired.append(_Desired(row, record, record_hash))
        return desired

    def _vectors(self, registry: Registry, rows: list[ClauseRow], summary: IndexSummary) -> dict[str, np.ndarray]:
        vectors = registry.cached_vectors(self.fingerprint, (r.passage_hash for r in rows))
        missing = {r.passage_hash: r.passage for r in rows if r.passage_hash not in vectors}
        if missing:  # only when the cache was cleared behind the registry's back
            embedded = self.embedder().embed_documents(list(missing.values()))
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
