"""A deterministic stand-in for the embedding model, for tests that check bookkeeping, not retrieval quality."""

from __future__ import annotations

import numpy as np
from langchain_core.embeddings import DeterministicFakeEmbedding


class CountingEmbedder:
    """Unit vectors derived from a hash of the text (the same text, the same vector); counts what it embeds."""

    name = "fake-hash-384"
    fingerprint = "fake384"
    batch_size = 16

    def __init__(self) -> None:
        self._fake = DeterministicFakeEmbedding(size=384)
        self.embedded: list[str] = []

    @property
    def query_fingerprints(self) -> tuple[str, ...]:
        return (self.fingerprint,)

    def _unit(self, text: str) -> list[float]:
        vector = np.asarray(self._fake.embed_query(text), dtype=np.float32)
        return list(map(float, vector / np.linalg.norm(vector)))

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        self.embedded.extend(texts)
        return [self._unit(t) for t in texts]

    def embed_query(self, text: str) -> list[float]:
        return self._unit(text)
