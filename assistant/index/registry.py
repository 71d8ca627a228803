"""The document registry: SQLite beside the index, holding what is indexed and the embedding cache.

Tables
- `documents`: one row per document (its file, hashes, metadata, state, clause count, generation);
  a removed document stays as a `removed` row so that `index` does not add its unchanged file back.
- `clauses`: each document's clauses as last parsed, with the passage that is embedded, its BM25 terms
  and its exact 文号/条号 keys (tab-separated), for active and withdrawn documents alike.
- `records`: the clause records in the vector store, with the generation that added and removed each.
- `vectors`: passage vectors per embedding model, so that nothing is embedded twice.
- `terms`: the BM25 vocabulary (append-only ids).
- `generations`: each index generation; `building` while a run writes it, `active` once committed.
- `versions`: every version of every document's file that was indexed, with its bytes, so that a replaced
  version can be restored (`docs history`, `docs revert`).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REGISTRY = "registry.sqlite3"
# `removed` of a record that is still visible: larger than any generation.
NEVER = 2**31 - 1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS documents (
    doc_id TEXT PRIMARY KEY, root TEXT NOT NULL, path TEXT NOT NULL, file_hash TEXT NOT NULL,
    text_hash TEXT NOT NULL, content_hash TEXT NOT NULL, metadata TEXT NOT NULL,
    state TEXT NOT NULL, clauses INTEGER NOT NULL, indexed_at TEXT NOT NULL, generation INTEGER NOT NULL,
    records_sig TEXT NOT NULL DEFAULT '');
CREATE TABLE IF NOT EXISTS clauses (
    clause_id TEXT PRIMARY KEY, doc_id TEXT NOT NULL, ord INTEGER NOT NULL, record TEXT NOT NULL,
    passage TEXT NOT NULL, passage_hash TEXT NOT NULL, terms BLOB NOT NULL, keys TEXT NOT NULL);
CREATE INDEX IF NOT EXISTS clauses_doc ON clauses (doc_id, ord);
CREATE TABLE IF NOT EXISTS records (
    record_id TEXT PRIMARY KEY, clause_id TEXT NOT NULL, doc_id TEXT NOT NULL, record_hash TEXT NOT NULL,
    added INTEGER NOT NULL, removed INTEGER NOT NULL);
CREATE INDEX IF NOT EXISTS records_removed ON records (removed);
CREATE TABLE IF NOT EXISTS vectors (
    fingerprint TEXT NOT NULL, passage_hash TEXT NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (fingerprint, passage_hash));
CREATE TABLE IF NOT EXISTS terms (term TEXT PRIMARY KEY, id INTEGER NOT NULL UNIQUE);
CREATE TABLE IF NOT EXISTS generations (
    id INTEGER PRIMARY KEY, collection TEXT NOT NULL, state TEXT NOT NULL, created_at TEXT NOT NULL,
    summary TEXT NOT NULL DEFAULT '{}');
"""
_VERSIONS = """
CREATE TABLE IF NOT EXISTS versions (
    doc_id TEXT NOT NULL, version INTEGER NOT NULL, saved_at TEXT NOT NULL, file TEXT NOT NULL,
    file_hash TEXT NOT NULL, title TEXT NOT NULL, clauses INTEGER NOT NULL, content BLOB NOT NULL,
    PRIMARY KEY (doc_id, version));
"""

ACTIVE, WITHDRAWN, REMOVED = "active", "withdrawn", "removed"
# how the states are named to editors (the web page and the CLI)
STATE_NAMES = {ACTIVE: "检索中", WITHDRAWN: "已暂停检索", REMOVED: "已删除"}


@dataclass
class DocumentRow:
    """A document as the registry knows it."""

    doc_id: str
    root: str
    path: str
    file_hash: str
    text_hash: str
    content_hash: str
    metadata: dict[str, str]
    state: str
    clauses: int
    indexed_at: str
    generation: int
    # what the document's visible records were made from ('' when it has none): unchanged, they are kept
    records_sig: str = ""

    @property
    def title(self) -> str:
        return self.metadata.get("title", "")


@dataclass
class VersionRow:
    """One indexed version of a document's file."""

    doc_id: str
    version: int
    saved_at: str
    file: str
    file_hash: str
    title: str
    clauses: int


@dataclass
class ClauseRow:
    """A parsed clause as stored: its base vector-store record (without cross-document links)."""

    clause_id: str
    doc_id: str
    order: int
    record: dict[str, str | int]
    passage: str
    passage_hash: str
    terms: np.ndarray  # int32 term ids, one per token occurrence
    keys: list[str]


class Registry:
    """One SQLite connection to the registry of an index directory."""

    def __init__(self, index_dir: Path) -> None:
        index_dir.mkdir(parents=True, exist_ok=True)
        self.path = index_dir / REGISTRY
        self.db = sqlite3.connect(self.path, isolation_level=None, timeout=30)
        self.db.execute("PRAGMA synchronous=NORMAL")
        known = self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'generations'").fetchone()
        if not known:  # a new registry (creating tables would wait for a writer's lock; reading does not)
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.executescript(_SCHEMA + _VERSIONS)
        if not self.db.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'versions'").fetchone():
            self.db.execute(_VERSIONS)  # a registry from before document histories
        columns = {row[1] for row in self.db.execute("PRAGMA table_info(documents)")}
        if "records_sig" not in columns:  # a registry from before signatures: every document's records are redone
            self.db.execute("ALTER TABLE documents ADD COLUMN records_sig TEXT NOT NULL DEFAULT ''")
        self._vocab: dict[str, int] | None = None

    def close(self) -> None:
        self.db.close()

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """All writes inside commit together or not at all (a killed process leaves none of them)."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            self._vocab = None
            raise
        self.db.execute("COMMIT")

    # meta
    def get_meta(self, key: str, default: str = "") -> str:
        row = self.db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else default

    def set_meta(self, key: str, value: str) -> None:
        self.db.execute("INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)", (key, value))

    # documents
    def documents(self, states: Iterable[str] = (ACTIVE, WITHDRAWN, REMOVED)) -> dict[str, DocumentRow]:
        wanted = tuple(states)
        rows = self.db.execute(
            f"SELECT * FROM documents WHERE state IN ({','.join('?' * len(wanted))}) ORDER BY doc_id", wanted)
        return {row[0]: self._document(row) for row in rows}

    def document(self, doc_id: str) -> DocumentRow | None:
        row = self.db.execute("SELECT * FROM documents WHERE doc_id = ?", (doc_id,)).fetchone()
        return self._document(row) if row else None

    @staticmethod
    def _document(row: tuple[Any, ...]) -> DocumentRow:
        return DocumentRow(row[0], row[1], row[2], row[3], row[4], row[5], json.loads(row[6]), row[7], row[8],
                           row[9], row[10], row[11])

    def put_document(self, row: DocumentRow) -> None:
        self.db.execute(
            "INSERT OR REPLACE INTO documents VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (row.doc_id, row.root, row.path, row.file_hash, row.text_hash, row.content_hash,
             json.dumps(row.metadata, ensure_ascii=False), row.state, row.clauses, row.indexed_at,
             row.generation, row.records_sig))

    def set_records_sig(self, doc_id: str, sig: str) -> None:
        self.db.execute("UPDATE documents SET records_sig = ? WHERE doc_id = ?", (sig, doc_id))

    def set_state(self, doc_id: str, state: str) -> None:
        self.db.execute("UPDATE documents SET state = ? WHERE doc_id = ?", (state, doc_id))

    def delete_document(self, doc_id: str) -> None:
        self.db.execute("DELETE FROM documents WHERE doc_id = ?", (doc_id,))
        self.db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))

    # versions
    def add_version(self, doc_id: str, file: Path, file_hash: str, title: str, clauses: int, saved_at: str) -> None:
        """Keep the file as the document's newest version, unless that version has the same bytes."""
        newest = self.db.execute("SELECT version, file_hash FROM versions WHERE doc_id = ? ORDER BY version DESC "
                                 "LIMIT 1", (doc_id,)).fetchone()
        if newest is not None and newest[1] == file_hash:
            return
        self.db.execute("INSERT INTO versions VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                        (doc_id, (newest[0] if newest else 0) + 1, saved_at, file.name, file_hash, title, clauses,
                         file.read_bytes()))

    def versions(self, doc_id: str) -> list[VersionRow]:
        """The document's versions, oldest first (without their bytes)."""
        rows = self.db.execute("SELECT doc_id, version, saved_at, file, file_hash, title, clauses FROM versions "
                               "WHERE doc_id = ? ORDER BY version", (doc_id,))
        return [VersionRow(*row) for row in rows]

    def version_content(self, doc_id: str, version: int) -> tuple[VersionRow, bytes] | None:
        row = self.db.execute("SELECT doc_id, version, saved_at, file, file_hash, title, clauses, content "
                              "FROM versions WHERE doc_id = ? AND version = ?", (doc_id, version)).fetchone()
        return (VersionRow(*row[:7]), bytes(row[7])) if row else None

    # clauses
    def put_clauses(self, doc_id: str, clauses: list[ClauseRow]) -> None:
        self.db.execute("DELETE FROM clauses WHERE doc_id = ?", (doc_id,))
        self.db.executemany(
            "INSERT INTO clauses VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
            [(c.clause_id, c.doc_id, c.order, json.dumps(c.record, ensure_ascii=False), c.passage,
              c.passage_hash, c.terms.astype(np.int32).tobytes(), "\t".join(c.keys))
             for c in clauses])

    def clauses(self, doc_ids: Iterable[str]) -> list[ClauseRow]:
        """Clauses of the given documents, in document and clause order."""
        wanted = sorted(set(doc_ids))
        rows: list[tuple[Any, ...]] = []
        for start in range(0, len(wanted), 900):  # SQLite's limit on bound parameters
            chunk = wanted[start:start + 900]
            rows += self.db.execute(f"SELECT * FROM clauses WHERE doc_id IN ({','.join('?' * len(chunk))}) "
                                    "ORDER BY doc_id, ord", chunk).fetchall()
        return [self._clause(r) for r in rows]

    def index_rows(self) -> list[tuple[str, np.ndarray, list[str]]]:
        """(clause id, BM25 term ids, exact keys) of every clause of every active document, in order."""
        rows = self.db.execute("SELECT c.clause_id, c.terms, c.keys FROM clauses c JOIN documents d "
                               "ON d.doc_id = c.doc_id WHERE d.state = ? ORDER BY c.doc_id, c.ord", (ACTIVE,))
        return [(cid, np.frombuffer(terms, dtype=np.int32), keys.split("\t") if keys else [])
                for cid, terms, keys in rows]

    @staticmethod
    def _clause(r: tuple[Any, ...]) -> ClauseRow:
        return ClauseRow(r[0], r[1], r[2], json.loads(r[3]), r[4], r[5], np.frombuffer(r[6], dtype=np.int32),
                         r[7].split("\t") if r[7] else [])

    # records in the vector store
    def visible_records(self) -> dict[str, tuple[str, str, str]]:
        """clause id → (record id, record hash, doc id) of every record not yet removed."""
        rows = self.db.execute("SELECT clause_id, record_id, record_hash, doc_id FROM records WHERE removed = ?",
                               (NEVER,))
        return {clause_id: (record_id, record_hash, doc_id) for clause_id, record_id, record_hash, doc_id in rows}

    def add_records(self, rows: Iterable[tuple[str, str, str, str, int]]) -> None:
        """(record id, clause id, doc id, record hash, added)."""
        self.db.executemany("INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?)",
                            [(*row, NEVER) for row in rows])

    def remove_records(self, record_ids: Iterable[str], generation: int) -> None:
        self.db.executemany("UPDATE records SET removed = ? WHERE record_id = ?",
                            [(generation, rid) for rid in record_ids])

    def removed_records(self, up_to: int) -> list[str]:
        """Ids of the records removed at or before generation `up_to`."""
        return [r[0] for r in self.db.execute("SELECT record_id FROM records WHERE removed <= ?", (up_to,))]

    def forget_records(self, up_to: int) -> None:
        self.db.execute("DELETE FROM records WHERE removed <= ?", (up_to,))

    def clear_records(self) -> None:
        self.db.execute("DELETE FROM records")

    # embedding cache
    def cached_vectors(self, fingerprint: str, passage_hashes: Iterable[str]) -> dict[str, np.ndarray]:
        wanted = list(dict.fromkeys(passage_hashes))
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(wanted), 900):  # SQLite's limit on bound parameters
            chunk = wanted[start:start + 900]
            rows = self.db.execute(
                f"SELECT passage_hash, vector FROM vectors WHERE fingerprint = ? "
                f"AND passage_hash IN ({','.join('?' * len(chunk))})", (fingerprint, *chunk))
            found.update((h, np.frombuffer(v, dtype=np.float32)) for h, v in rows)
        return found

    def cache_vectors(self, fingerprint: str, vectors: dict[str, np.ndarray]) -> None:
        """Stored at once (own commit): embedding work survives a run that is killed later."""
        self.db.executemany("INSERT OR REPLACE INTO vectors VALUES (?, ?, ?)",
                            [(fingerprint, h, np.asarray(v, dtype=np.float32).tobytes())
                             for h, v in vectors.items()])

    def prune_vectors(self, fingerprint: str) -> int:
        """Drop cached vectors of other models and of passages no clause has any more."""
        cursor = self.db.execute(
            "DELETE FROM vectors WHERE fingerprint != ? OR passage_hash NOT IN (SELECT passage_hash FROM clauses)",
            (fingerprint,))
        return int(cursor.rowcount)

    # BM25 vocabulary
    def vocabulary(self) -> dict[str, int]:
        if self._vocab is None:
            self._vocab = dict(self.db.execute("SELECT term, id FROM terms"))
        return self._vocab

    def term_ids(self, tokens: list[str]) -> np.ndarray:
        """Ids of the tokens, adding new terms to the vocabulary (inside the caller's transaction)."""
        vocab = self.vocabulary()
        new = [t for t in dict.fromkeys(tokens) if t not in vocab]
        if new:
            start = len(vocab)
            rows = [(t, start + i) for i, t in enumerate(new)]
            self.db.executemany("INSERT INTO terms VALUES (?, ?)", rows)
            vocab.update(rows)
        return np.asarray([vocab[t] for t in tokens], dtype=np.int32)

    # generations
    def committed_generation(self) -> tuple[int, str]:
        """The newest committed generation and its collection; (0, '') before the first."""
        row = self.db.execute(
            "SELECT id, collection FROM generations WHERE state = 'active' ORDER BY id DESC LIMIT 1").fetchone()
        return (int(row[0]), str(row[1])) if row else (0, "")

    def begin_generation(self, generation: int, collection: str, created_at: str) -> None:
        """Record a generation as `building` (committed at once, so a killed run's leftovers can be found)."""
        self.db.execute("INSERT INTO generations (id, collection, state, created_at) VALUES (?, ?, 'building', ?)",
                        (generation, collection, created_at))

    def building_generations(self) -> list[tuple[int, str]]:
        return [(int(r[0]), str(r[1])) for r in
                self.db.execute("SELECT id, collection FROM generations WHERE state = 'building' ORDER BY id")]

    def activate_generation(self, generation: int, summary: dict[str, object]) -> None:
        self.db.execute("UPDATE generations SET state = 'active', summary = ? WHERE id = ?",
                        (json.dumps(summary, ensure_ascii=False), generation))

    def drop_generation(self, generation: int) -> None:
        self.db.execute("DELETE FROM generations WHERE id = ?", (generation,))

    def generation_summary(self, generation: int) -> dict[str, Any]:
        row = self.db.execute("SELECT summary FROM generations WHERE id = ?", (generation,)).fetchone()
        return dict(json.loads(row[0])) if row else {}

    def collection_of(self, generation: int) -> str:
        row = self.db.execute("SELECT collection FROM generations WHERE id = ?", (generation,)).fetchone()
        return str(row[0]) if row else ""

    def collections(self) -> list[str]:
        """Every collection the registry knows."""
        return [str(r[0]) for r in self.db.execute("SELECT DISTINCT collection FROM generations")]

    def forget_collection(self, collection: str) -> None:
        self.db.execute("DELETE FROM generations WHERE collection = ? AND state != 'building'", (collection,))

    def next_generation(self) -> int:
        row = self.db.execute("SELECT COALESCE(MAX(id), 0) FROM generations").fetchone()
        return int(row[0]) + 1
