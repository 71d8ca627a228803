"""Build an index generation from a corpus and switch to it atomically once complete."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from assistant.errors import CorpusError, IndexNotBuiltError
from assistant.index.embedder import ClauseEmbedder
from assistant.index.lexical import LexicalIndex
from assistant.index.store import ClauseStore, chroma_client
from assistant.ingest.clauses import CHUNKING_VERSION, parse_clauses
from assistant.ingest.loaders import load_corpus
from assistant.ingest.normalize import normalize
from assistant.ingest.records import Clause, PolicyDocument

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
# An interpretation clause with no explicit reference explains the policy clause it is most similar to,
# when that similarity is at least this (cosine, e5 passages).
LINK_SIMILARITY = 0.86
_DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,12}〔(?:19|20)\d{2}〕\d{1,4}号")
_ARTICLE = re.compile(r"第[〇零一二三四五六七八九十百千两\d]+条(?:之[一二三四五六七八九十\d]+)?")

Progress = Callable[[int, int], None]


@dataclass
class BuildSummary:
    """What one `index` run did."""

    documents: int = 0
    clauses: int = 0
    seconds: float = 0.0
    generation: str = ""
    errors: list[str] = field(default_factory=list)
    per_document: list[dict[str, object]] = field(default_factory=list)


@dataclass
class Manifest:
    """The active generation of an index directory."""

    generation: str
    collection: str
    model: str
    fingerprint: str
    chunking_version: str
    documents: list[dict[str, object]]
    clauses: int
    built_at: str

    @classmethod
    def read(cls, index_dir: Path) -> Manifest:
        path = index_dir / MANIFEST
        if not path.exists():
            raise IndexNotBuiltError(str(index_dir))
        return cls(**json.loads(path.read_text(encoding="utf-8")))

    def write(self, index_dir: Path) -> None:
        tmp = index_dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, index_dir / MANIFEST)


def passage_text(clause: Clause) -> str:
    """What is embedded and BM25-indexed for a clause: its title and headings give it context."""
    return normalize(" ".join(part for part in (clause.title, clause.heading, clause.text) if part))


def build_index(
    paths: Iterable[Path],
    index_dir: Path,
    embedder: ClauseEmbedder,
    *,
    chroma_url: str = "",
    max_chars: int = 400,
    max_file_bytes: int = 20_000_000,
    progress: Progress | None = None,
) -> BuildSummary:
    """Index every readable file under `paths` into a new generation, then make it the active one."""
    started = time.perf_counter()
    loaded = load_corpus(paths, max_bytes=max_file_bytes)
    summary = BuildSummary(errors=[str(e) for e in loaded.errors])
    documents = _unique(loaded.documents, summary)
    clauses: list[Clause] = []
    for doc in documents:
        parsed = parse_clauses(doc, max_chars=max_chars)
        clauses.extend(parsed)
        summary.per_document.append({
            "doc_id": doc.doc_id, "title": doc.title, "doc_number": doc.doc_number,
            "status": doc.status, "kind": doc.kind, "clauses": len(parsed), "source": doc.source,
        })
    summary.documents, summary.clauses = len(documents), len(clauses)
    if not clauses:
        raise CorpusError(", ".join(str(p) for p in paths), "no clauses found in any file",
                          "check the paths; supported files: .md .txt .html .docx .pdf")

    index_dir.mkdir(parents=True, exist_ok=True)
    generation = time.strftime("%Y%m%d%H%M%S") + "-" + uuid.uuid4().hex[:8]
    collection = f"clauses-{embedder.fingerprint}-c{CHUNKING_VERSION}-{generation}"
    client = chroma_client(index_dir, chroma_url)
    store = ClauseStore(client, collection, embedder)
    passages = [passage_text(c) for c in clauses]
    vectors = _embed(embedder, passages, progress)
    _link_interpretations(documents, clauses, vectors)
    _link_replacements(documents, clauses)
    try:
        store.add(clauses, passages, vectors)
        gen_dir = index_dir / "generations" / generation
        LexicalIndex.build([c.clause_id for c in clauses], passages).save(gen_dir / "lexical")
        (gen_dir / "exact.json").write_text(json.dumps(_exact_keys(clauses), ensure_ascii=False),
                                            encoding="utf-8")
    except BaseException:
        shutil.rmtree(index_dir / "generations" / generation, ignore_errors=True)
        store.drop()
        raise
    previous = _read_optional(index_dir)
    Manifest(generation, collection, embedder.name, embedder.fingerprint, CHUNKING_VERSION,
             summary.per_document, len(clauses), time.strftime("%Y-%m-%dT%H:%M:%S")).write(index_dir)
    if previous is not None and previous.generation != generation:
        _retire(client, index_dir, previous)
    summary.generation = generation
    summary.seconds = time.perf_counter() - started
    return summary


def _unique(documents: list[PolicyDocument], summary: BuildSummary) -> list[PolicyDocument]:
    seen: dict[str, PolicyDocument] = {}
    for doc in documents:
        if doc.doc_id in seen:
            summary.errors.append(str(CorpusError(
                doc.source, f"same document id {doc.doc_id!r} as {seen[doc.doc_id].source}",
                "rename one of the files")))
            continue
        seen[doc.doc_id] = doc
    return list(seen.values())


def _embed(embedder: ClauseEmbedder, passages: list[str], progress: Progress | None) -> list[list[float]]:
    """Embed in batches of similar length (little padding), returning vectors in the passages' order."""
    order = sorted(range(len(passages)), key=lambda i: len(passages[i]))
    vectors: list[list[float]] = [[] for _ in passages]
    step = max(embedder.batch_size, 1)
    for start in range(0, len(order), step):
        batch = order[start:start + step]
        for i, vector in zip(batch, embedder.embed_documents([passages[i] for i in batch]), strict=True):
            vectors[i] = vector
        if progress:
            progress(min(start + step, len(order)), len(order))
    return vectors


def _link_interpretations(documents: list[PolicyDocument], clauses: list[Clause],
                          vectors: list[list[float]]) -> None:
    """Point each interpretation clause at the clauses of the policy it explains."""
    by_key: dict[str, str] = {}
    for doc in documents:
        if doc.kind != "interpretation":
            for key in (doc.doc_number, doc.title, doc.doc_id):
                if key:
                    by_key[_key(key)] = doc.doc_id
    index_of = {c.clause_id: i for i, c in enumerate(clauses)}
    for doc in documents:
        if doc.kind != "interpretation" or not doc.interprets:
            continue
        target = by_key.get(_key(doc.interprets))
        if target is None:
            log.warning("%s interprets %r, which is not in the corpus", doc.source, doc.interprets)
            continue
        targets = [c for c in clauses if c.doc_id == target]
        matrix = np.asarray([vectors[index_of[c.clause_id]] for c in targets])
        for clause in (c for c in clauses if c.doc_id == doc.doc_id):
            text = normalize(clause.text)
            named = [t.clause_id for t in targets if t.label and normalize(t.label) in text]
            if not named:
                sims = matrix @ np.asarray(vectors[index_of[clause.clause_id]])
                best = int(np.argmax(sims))
                named = [targets[best].clause_id] if sims[best] >= LINK_SIMILARITY else []
            clause.refers_to = tuple(named)


def _link_replacements(documents: list[PolicyDocument], clauses: list[Clause]) -> None:
    """Tell each clause of a document that is no longer in force which document replaces it: the one its
    `replaced_by` names, one that says it `replaces` it, else the newest document in force with the same title."""
    by_key: dict[str, PolicyDocument] = {}
    for doc in sorted(documents, key=lambda d: (d.in_force(), d.publish_date)):  # in force, newest wins
        for key in (doc.doc_id, doc.title, doc.doc_number):
            if key:
                by_key[_key(key)] = doc
    replacement: dict[str, PolicyDocument] = {}
    unresolved: dict[str, str] = {}
    for doc in documents:
        if doc.replaced_by:
            target = by_key.get(_key(doc.replaced_by))
            if target is not None and target is not doc:
                replacement[doc.doc_id] = target
            else:
                unresolved[doc.doc_id] = doc.replaced_by.strip("《》")
        old = by_key.get(_key(doc.replaces)) if doc.replaces else None
        if old is not None and old is not doc:
            replacement.setdefault(old.doc_id, doc)
    for doc in documents:
        newer = by_key.get(_key(doc.title))
        if (doc.doc_id not in replacement and not doc.in_force() and newer is not None and newer is not doc
                and newer.in_force() and newer.publish_date >= doc.publish_date):
            replacement[doc.doc_id] = newer
    for clause in clauses:
        if clause.doc_id in replacement:
            new = replacement[clause.doc_id]
            clause.metadata.update(replaced_by=new.doc_id, replaced_by_title=new.title,
                                   replaced_by_date=new.publish_date)
        elif clause.doc_id in unresolved:
            clause.metadata["replaced_by_title"] = unresolved[clause.doc_id]


def _key(text: str) -> str:
    return normalize(text).strip().strip("《》")


def _exact_keys(clauses: list[Clause]) -> dict[str, list[str]]:
    """文号 and 第X条 → the clauses that carry or mention them, for exact matching in questions."""
    keys: dict[str, list[str]] = {}
    for clause in clauses:
        found = set(_DOC_NUMBER.findall(normalize(clause.text)))
        if clause.doc_number:
            found.add(normalize(clause.doc_number))
        match = _ARTICLE.match(clause.label)
        if match:
            found.add(match.group(0))
        for key in found:
            keys.setdefault(key, []).append(clause.clause_id)
    return keys


def _read_optional(index_dir: Path) -> Manifest | None:
    try:
        return Manifest.read(index_dir)
    except (IndexNotBuiltError, ValueError, TypeError):
        return None


def _retire(client: object, index_dir: Path, previous: Manifest) -> None:
    try:
        client.delete_collection(previous.collection)  # type: ignore[attr-defined]
    except Exception as e:  # an already-missing collection must not fail a finished build
        log.warning("could not delete old collection %s: %s", previous.collection, e)
    shutil.rmtree(index_dir / "generations" / previous.generation, ignore_errors=True)


def find_doc_numbers(text: str) -> list[str]:
    return _DOC_NUMBER.findall(normalize(text))


def find_articles(text: str) -> list[str]:
    return _ARTICLE.findall(normalize(text))
