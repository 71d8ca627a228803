"""The embedding model: sentence-transformers behind LangChain's `Embeddings` interface."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path
from typing import Any

from langchain_core.embeddings import Embeddings

from assistant.config import DEFAULT_MODEL, IndexSettings
from assistant.errors import ModelError

log = logging.getLogger(__name__)


class ClauseEmbedder(Embeddings):
    """Embeds clauses as passages and questions as queries, each with its model prompt."""

    def __init__(self, model: Any, name: str, query_prefix: str, passage_prefix: str, batch_size: int = 32,
                 quantized: bool = False):
        self.model = model
        self.name = name
        self.quantized = quantized
        self.query_prefix = query_prefix
        self.passage_prefix = passage_prefix
        self.batch_size = batch_size

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors this embedder makes: model, prompts and precision."""
        return model_fingerprint(self.name, self.query_prefix, self.passage_prefix, self.quantized)

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        return self._encode(texts, self.passage_prefix)

    def embed_query(self, text: str) -> list[float]:
        return self._encode([text], self.query_prefix)[0]

    def _encode(self, texts: list[str], prefix: str) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts), prompt=prefix or None, batch_size=self.batch_size,
            normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True,
        )
        return [list(map(float, v)) for v in vectors]


def model_fingerprint(name: str, query_prefix: str, passage_prefix: str, quantized: bool) -> str:
    key = f"{name}|{query_prefix}|{passage_prefix}" + ("|int8" if quantized else "")
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def fingerprint_for(settings: IndexSettings) -> str:
    """The fingerprint of the configured model, known without loading it."""
    return model_fingerprint(settings.model, settings.query_prefix, settings.passage_prefix, settings.quantize)


def resolve_model_path(settings: IndexSettings) -> str:
    """The bundled default becomes a folder under the cache directory; anything else is passed through."""
    if settings.model != DEFAULT_MODEL:
        return settings.model
    from assistant.index.bundled_model import FORMAT_VERSION, MODEL_NAME, materialize

    try:
        return str(materialize(Path(settings.cache_dir) / f"{MODEL_NAME}-v{FORMAT_VERSION}"))
    except OSError as e:
        raise ModelError(f"cannot prepare the bundled model in {settings.cache_dir}: {e}",
                         "set POLICY_ASSISTANT_INDEX__CACHE_DIR to a writable folder") from e


def load_embedder(settings: IndexSettings) -> ClauseEmbedder:
    """Load the configured sentence-transformers model on the CPU."""
    path = resolve_model_path(settings)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import transformers
    from sentence_transformers import SentenceTransformer

    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    try:
        model = SentenceTransformer(path, device="cpu")
    except (OSError, ValueError) as e:
        raise ModelError(f"cannot load embedding model {settings.model!r}: {e}",
                         "use a local sentence-transformers folder, or a hub id that is cached") from e
    if settings.quantize:
        model = quantize(model)
    log.info("embedding model %s loaded%s", settings.model, " (int8)" if settings.quantize else "")
    return ClauseEmbedder(model, settings.model, settings.query_prefix, settings.passage_prefix,
                          settings.batch_size, quantized=settings.quantize)


def quantize(model: Any) -> Any:
    """Dynamic int8 quantisation of the linear layers (weights int8, activations quantised per batch)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager-mode quantisation is marked for migration to torchao
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
