"""The embedding model: sentence-transformers behind LangChain's `Embeddings` interface."""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from pathlib import Path
from typing import Any

import numpy as np
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
        self.query_path = "encode"  # how single texts are embedded; see `enable_direct_queries`
        self._traced: Any = None
        self.workers = min(4, os.cpu_count() or 1)
        self._tokenizing = threading.Lock()  # a fast tokenizer is not safe to call from two threads at once
        self.judge: dict[str, float] | None = None  # relevance-judge weights fitted for this model's scores
        self.refusal: dict[str, float] | None = None  # …and the weights that decide a refusal from the head
        self.confidence: dict[str, float] | None = None  # …and those of the confidence that the first clause answers

    @property
    def fingerprint(self) -> str:
        """Identifies the vectors this embedder makes: model, prompts and precision."""
        return model_fingerprint(self.name, self.query_prefix, self.passage_prefix, self.quantized)

    @property
    def query_fingerprints(self) -> tuple[str, ...]:
        """Fingerprints of indexes this embedder's questions can be answered from: its own, and for int8 the
        indexes embedded in batches before passages were embedded alone (questions are embedded alike)."""
        if not self.quantized:
            return (self.fingerprint,)
        return self.fingerprint, _digest(f"{self.name}|{self.query_prefix}|{self.passage_prefix}|int8")

    def embed_documents(self, texts: list[str]) -> list[list[float]]:
        """Passage vectors. A quantised model quantises its activations over everything in one call, so a
        passage embedded in a batch gets a vector that depends on its batch-mates (a median cosine of 0.993 to
        the same passage alone): with int8, each passage is embedded on its own, as questions are, so that the
        same corpus gives the same vectors however it is batched, ordered, published or rebuilt. The work is
        spread over a few threads, which makes it about as fast as batching."""
        if not self.quantized:  # fp32: a padded batch gives each passage its own vector (to ~1e-7)
            return self._encode(texts, self.passage_prefix)
        if len(texts) <= 1 or self.workers <= 1:
            return [self._embed_alone(t) for t in texts]
        from concurrent.futures import ThreadPoolExecutor

        with ThreadPoolExecutor(self.workers, thread_name_prefix="embed") as pool:
            return list(pool.map(self._embed_alone, texts))

    def _embed_alone(self, text: str) -> list[float]:
        if self.query_path != "encode":
            return self._forward(self.passage_prefix + text)
        return self._encode([text], self.passage_prefix)[0]

    def embed_query(self, text: str) -> list[float]:
        if self.query_path != "encode":
            return self._forward(self.query_prefix + text)
        return self._encode([text], self.query_prefix)[0]

    def enable_direct_queries(self) -> str:
        """Embed single questions without `encode`'s per-call set-up, and with the transformer traced by TorchScript
        (no Python per layer): a question then takes about 8 ms instead of 17 ms. Each faster path is used only
        when it gives the same vectors as `encode` for probe questions of several lengths; returns the path
        chosen ("traced", "modules" or "encode")."""
        probes = ["要多久？", "政府信息公开申请应当在多少个工作日内答复？",
                  "依申请公开政府信息的办理期限、收费标准和答复形式分别是什么，" * 8]
        expected = [self._encode([p], self.query_prefix)[0] for p in probes]
        for path in ("traced", "modules"):
            try:
                self._traced = self._trace(probes[1]) if path == "traced" else None
                self.query_path = path
                if all(np.allclose(self._forward(self.query_prefix + p), v, atol=1e-5)
                       for p, v in zip(probes, expected, strict=True)):
                    return path
                log.debug("query embedding path %s differs from encode", path)
            except Exception as e:  # a model that cannot run this way keeps using the next path
                log.debug("query embedding path %s unavailable: %s", path, e)
        self._traced, self.query_path = None, "encode"
        return self.query_path

    def _prepare(self, text: str) -> dict[str, Any]:
        prepare = getattr(self.model, "preprocess", None) or self.model.tokenize
        with self._tokenizing:
            return dict(prepare([text]))

    def _trace(self, probe: str) -> Any:
        import warnings

        import torch

        first = self.model[0]
        transformer = getattr(first, "auto_model", None) or first.model

        class TokenEmbeddings(torch.nn.Module):
            def __init__(self) -> None:
                super().__init__()
                self.transformer = transformer

            def forward(self, input_ids: Any, attention_mask: Any) -> Any:
                return self.transformer(input_ids=input_ids, attention_mask=attention_mask, return_dict=False)[0]

        features = self._prepare(self.query_prefix + probe)
        with torch.inference_mode(), warnings.catch_warnings():
            warnings.simplefilter("ignore")  # tracer warnings about shape-dependent branches: checked by the probes
            return torch.jit.trace(TokenEmbeddings().eval(), (features["input_ids"], features["attention_mask"]),
                                   check_trace=False)

    def _forward(self, text: str) -> list[float]:
        import torch

        with torch.inference_mode():
            features = self._prepare(text)
            if self._traced is not None:
                features["token_embeddings"] = self._traced(features["input_ids"], features["attention_mask"])
                for module in list(self.model)[1:]:
                    features = module(features)
            else:
                features = self.model.forward(features)
            vector = features["sentence_embedding"][0]
        return [float(x) for x in vector.tolist()]

    def _encode(self, texts: list[str], prefix: str) -> list[list[float]]:
        if not texts:
            return []
        vectors = self.model.encode(
            list(texts), prompt=prefix or None, batch_size=self.batch_size,
            normalize_embeddings=True, show_progress_bar=False, convert_to_numpy=True,
        )
        return [list(map(float, v)) for v in vectors]


def model_fingerprint(name: str, query_prefix: str, passage_prefix: str, quantized: bool) -> str:
    # int8 vectors are made one passage at a time ("alone"); vectors cached from batched runs are not reused
    return _digest(f"{name}|{query_prefix}|{passage_prefix}" + ("|int8-alone" if quantized else ""))


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def fingerprint_for(settings: IndexSettings) -> str:
    """The fingerprint of the configured model, known without loading it."""
    return model_fingerprint(model_label(settings), settings.query_prefix, settings.passage_prefix,
                             settings.quantize)


def uses_tuned(settings: IndexSettings) -> bool:
    from assistant.index import tuned_model

    return settings.model == DEFAULT_MODEL and settings.tuned and tuned_model.available()


def model_label(settings: IndexSettings) -> str:
    """The model's name as indexes record it: the bundled default with its tuning names the shipped weights, so
    vectors of the tuned and the plain model are never mixed."""
    if not uses_tuned(settings):
        return settings.model
    from assistant.index import tuned_model

    return f"{settings.model}+tuned-{tuned_model.adapter_id()}"


def resolve_model_path(settings: IndexSettings) -> str:
    """The bundled default becomes a folder under the cache directory (with the shipped tuning merged in, unless
    it is turned off); anything else is passed through."""
    if settings.model != DEFAULT_MODEL:
        return settings.model
    from assistant.index import tuned_model
    from assistant.index.bundled_model import FORMAT_VERSION, MODEL_NAME, materialize

    try:
        base = materialize(Path(settings.cache_dir) / f"{MODEL_NAME}-v{FORMAT_VERSION}")
        if not uses_tuned(settings):
            return str(base)
        target = Path(settings.cache_dir) / f"{MODEL_NAME}-v{FORMAT_VERSION}-tuned-{tuned_model.adapter_id()}"
        return str(tuned_model.materialize_tuned(base, target))
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
    embedder = ClauseEmbedder(model, model_label(settings), settings.query_prefix, settings.passage_prefix,
                              settings.batch_size, quantized=settings.quantize)
    if uses_tuned(settings):
        from assistant.index import tuned_model

        embedder.judge = tuned_model.meta().get("judge")
        embedder.refusal = tuned_model.meta().get("refusal")
        embedder.confidence = tuned_model.meta().get("confidence")
    embedder.enable_direct_queries()
    return embedder


def quantize(model: Any) -> Any:
    """Dynamic int8 quantisation of the linear layers (weights int8, activations quantised per call)."""
    import warnings

    import torch

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # eager-mode quantisation is marked for migration to torchao
        return torch.ao.quantization.quantize_dynamic(model, {torch.nn.Linear}, dtype=torch.qint8)
