"""Clause vectors in a Chroma collection, through langchain-chroma (embedded client by default)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from assistant.index.embedder import ClauseEmbedder
from assistant.ingest.records import Clause

log = logging.getLogger(__name__)

_METADATA_KEYS = ("doc_id", "title", "doc_number", "issuer", "publish_date", "effective_date",
                  "expiry_date", "status", "kind", "interprets", "replaced_by", "replaced_by_title",
                  "replaced_by_date", "source")


def chroma_client(index_dir: Path, url: str = "") -> Any:
    """An embedded `PersistentClient` under the index directory, or an `HttpClient` for a server URL."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings

    settings = ChromaSettings(anonymized_telemetry=False)
    if url:
        from urllib.parse import urlparse

        parsed = urlparse(url)
        return chromadb.HttpClient(host=parsed.hostname or "localhost", port=parsed.port or 8000,
                                   ssl=parsed.scheme == "https", settings=settings)
    index_dir.mkdir(parents=True, exist_ok=True)
    return chromadb.PersistentClient(path=str(index_dir / "chroma"), settings=settings)


def clause_to_record(clause: Clause) -> dict[str, str | int]:
    """Flat Chroma metadata for a clause (Chroma takes only scalars)."""
    record: dict[str, str | int] = {key: clause.metadata.get(key, "") for key in _METADATA_KEYS}
    record.update({
        "clause_id": clause.clause_id,
        "label": clause.label,
        "heading": clause.heading,
        "path": json.dumps(list(clause.path), ensure_ascii=False),
        "order": clause.order,
        "text": clause.text,
        "refers_to": json.dumps(list(clause.refers_to), ensure_ascii=False),
    })
    return record


def record_to_clause(record: dict[str, Any]) -> Clause:
    return Clause(
        clause_id=str(record["clause_id"]),
        doc_id=str(record["doc_id"]),
        path=tuple(json.loads(str(record.get("path") or "[]"))),
        label=str(record.get("label", "")),
        heading=str(record.get("heading", "")),
        text=str(record.get("text", "")),
        order=int(record.get("order", 0)),
        metadata={key: str(record.get(key, "")) for key in _METADATA_KEYS},
        refers_to=tuple(json.loads(str(record.get("refers_to") or "[]"))),
    )


class ClauseStore:
    """One generation's Chroma collection of clauses."""

    def __init__(self, client: Any, collection: str, embedder: ClauseEmbedder) -> None:
        from langchain_chroma import Chroma

        self.client = client
        self.collection = collection
        self.embedder = embedder
        self.vectors = Chroma(
            collection_name=collection,
            embedding_function=embedder,
            client=client,
            collection_configuration={"hnsw": {"space": "cosine"}},
        )

    def add(self, clauses: list[Clause], passages: list[str], vectors: list[list[float]]) -> None:
        """Store clauses under their ids with the passages that were embedded and their vectors."""
        collection = self.client.get_collection(self.collection)
        step = max(1, min(1000, int(self.client.get_max_batch_size())))
        for start in range(0, len(clauses), step):
            end = start + step
            collection.upsert(
                ids=[c.clause_id for c in clauses[start:end]],
                embeddings=vectors[start:end],
                documents=passages[start:end],
                metadatas=[clause_to_record(c) for c in clauses[start:end]],
            )

    def search(self, query_vector: list[float], k: int) -> list[tuple[Clause, float]]:
        """The k nearest clauses with their cosine similarity."""
        hits = self.vectors.similarity_search_by_vector_with_relevance_scores(query_vector, k=k)
        return [(record_to_clause(doc.metadata), 1.0 - float(distance)) for doc, distance in hits]

    def get(self, ids: Iterable[str]) -> dict[str, Clause]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        found = self.vectors.get(ids=ids, include=["metadatas"])
        return {cid: record_to_clause(meta) for cid, meta in zip(found["ids"], found["metadatas"], strict=True)}

    def get_with_vectors(self, ids: Iterable[str]) -> dict[str, tuple[Clause, list[float]]]:
        ids = list(dict.fromkeys(ids))
        if not ids:
            return {}
        found = self.client.get_collection(self.collection).get(ids=ids, include=["metadatas", "embeddings"])
        return {cid: (record_to_clause(meta), list(vector)) for cid, meta, vector
                in zip(found["ids"], found["metadatas"], found["embeddings"], strict=True)}

    def count(self) -> int:
        return int(self.client.get_collection(self.collection).count())

    def drop(self) -> None:
        self.client.delete_collection(self.collection)
