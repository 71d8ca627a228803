"""Links across documents, worked out over the whole active corpus each time it changes.

- An interpretation clause points at the clauses of the policy it explains.
- A document no longer in force points at the document that replaces it.
- 文号 and 第X条 keys let a question that names them match exactly.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np

from assistant.index.registry import ClauseRow
from assistant.ingest.normalize import normalize
from assistant.ingest.records import PolicyDocument

log = logging.getLogger(__name__)

# An interpretation clause with no explicit reference explains the policy clause it is most similar to,
# when that similarity is at least this (cosine, e5 passages).
LINK_SIMILARITY = 0.86
_DOC_NUMBER = re.compile(r"[\u4e00-\u9fff]{1,12}〔(?:19|20)\d{2}〕\d{1,4}号")
_ARTICLE = re.compile(r"第[〇零一二三四五六七八九十百千两\d]+条(?:之[一二三四五六七八九十\d]+)?")


def find_doc_numbers(text: str) -> list[str]:
    return _DOC_NUMBER.findall(normalize(text))


def find_articles(text: str) -> list[str]:
    return _ARTICLE.findall(normalize(text))


def exact_keys(text: str, doc_number: str, label: str) -> list[str]:
    """文号 and 第X条 that identify a clause or that it cites."""
    found = set(find_doc_numbers(text))
    if doc_number:
        found.add(normalize(doc_number))
    match = _ARTICLE.match(normalize(label))
    if match:
        found.add(match.group(0))
    return sorted(found)


def _key(text: str) -> str:
    return normalize(text).strip().strip("《》")


def _document(metadata: Mapping[str, str]) -> PolicyDocument:
    fields = set(PolicyDocument.__dataclass_fields__) - {"text", "extra"}
    values: dict[str, Any] = {k: v for k, v in metadata.items() if k in fields}
    return PolicyDocument(text="", **values)


def replacement_links(documents: Mapping[str, Mapping[str, str]]) -> dict[str, dict[str, str]]:
    """doc id → the record fields naming its replacement, for each document no longer in force that has one:
    the one its `replaced_by` names, one that says it `replaces` it, else the newest document in force with
    the same title (a later version of the same law)."""
    docs = [_document(meta) for meta in documents.values()]
    by_key: dict[str, PolicyDocument] = {}
    for doc in sorted(docs, key=lambda d: (d.in_force(), d.publish_date)):  # in force, newest wins
        for key in (doc.doc_id, doc.title, doc.doc_number):
            if key:
                by_key[_key(key)] = doc
    replacement: dict[str, PolicyDocument] = {}
    unresolved: dict[str, str] = {}
    for doc in docs:
        if doc.replaced_by:
            target = by_key.get(_key(doc.replaced_by))
            if target is not None and target is not doc:
                replacement[doc.doc_id] = target
            else:
                unresolved[doc.doc_id] = doc.replaced_by.strip("《》")
        old = by_key.get(_key(doc.replaces)) if doc.replaces else None
        if old is not None and old is not doc:
            replacement.setdefault(old.doc_id, doc)
    for doc in docs:
        newer = by_key.get(_key(doc.title))
        if (doc.doc_id not in replacement and not doc.in_force() and newer is not None and newer is not doc
                and newer.in_force() and newer.publish_date >= doc.publish_date):
            replacement[doc.doc_id] = newer
    links = {doc_id: {"replaced_by": new.doc_id, "replaced_by_title": new.title,
                      "replaced_by_date": new.publish_date} for doc_id, new in replacement.items()}
    for doc_id, title in unresolved.items():
        links.setdefault(doc_id, {"replaced_by_title": title})
    return links


def interpreted(documents: Mapping[str, Mapping[str, str]]) -> dict[str, str]:
    """Interpretation doc id → the id of the document it explains (when that is in the corpus)."""
    by_key: dict[str, str] = {}
    for doc_id, meta in documents.items():
        if meta.get("kind") != "interpretation":
            for key in (meta.get("doc_number", ""), meta.get("title", ""), doc_id):
                if key:
                    by_key[_key(key)] = doc_id
    targets = {}
    for doc_id, meta in documents.items():
        interprets = meta.get("interprets", "")
        if meta.get("kind") != "interpretation" or not interprets:
            continue
        target = by_key.get(_key(interprets))
        if target is None:
            log.warning("%s interprets %r, which is not in the corpus", meta.get("source", doc_id), interprets)
        else:
            targets[doc_id] = target
    return targets


def interpretation_links(targets: Mapping[str, str], clauses: Iterable[ClauseRow],
                         vectors: Mapping[str, np.ndarray],
                         similarity: float = LINK_SIMILARITY) -> dict[str, list[str]]:
    """Interpretation clause id → the ids of the policy clauses it explains: those it names by label,
    else the most similar one if at least `similarity` (the model's own: the tuned model's cosines sit lower).
    `targets` is what `interpreted` returns; `clauses` must hold the clauses of both sides."""
    by_doc: dict[str, list[ClauseRow]] = {}
    for row in clauses:
        by_doc.setdefault(row.doc_id, []).append(row)
    links: dict[str, list[str]] = {}
    for doc_id, target in targets.items():
        candidates = [t for t in by_doc.get(target, []) if t.passage_hash in vectors]
        if not candidates:
            continue
        matrix = np.asarray([vectors[t.passage_hash] for t in candidates])
        for row in by_doc.get(doc_id, []):
            text = normalize(str(row.record.get("text", "")))
            named = [t.clause_id for t in candidates if t.record.get("label") and
                     normalize(str(t.record["label"])) in text]
            if not named and row.passage_hash in vectors:
                sims = matrix @ vectors[row.passage_hash]
                best = int(np.argmax(sims))
                named = [candidates[best].clause_id] if sims[best] >= similarity else []
            if named:
                links[row.clause_id] = named
    return links
