"""Vectors, rankings and citations do not depend on how passages were batched, ordered or published: a fresh
machine answers as the one an index was built on."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.conftest import CORPUS, EVAL, SEED

pytestmark = pytest.mark.slow


def _passages() -> list[str]:
    from assistant.index.build import passage_text
    from assistant.ingest.clauses import parse_clauses
    from assistant.ingest.loaders import load_corpus

    return [passage_text(c) for doc in load_corpus([CORPUS]).documents for c in parse_clauses(doc)]


def test_a_passage_gets_the_same_vector_whatever_it_is_embedded_with(embedder: Any):
    passages = _passages()
    together = np.asarray(embedder.embed_documents(passages))
    reversed_ = np.asarray(embedder.embed_documents(passages[::-1]))[::-1]
    rng = random.Random(7)
    order = list(range(len(passages)))
    rng.shuffle(order)
    shuffled = np.zeros_like(together)
    start = 0
    while start < len(order):  # batches of 1 to 9 passages, each with unrelated long ones beside it
        size = rng.randint(1, 9)
        batch = order[start:start + size]
        vectors = embedder.embed_documents([passages[i] for i in batch] + ["政务公开" * rng.randint(20, 120)])
        for i, vector in zip(batch, vectors, strict=False):
            shuffled[i] = vector
        start += size
    assert np.abs(together - reversed_).max() <= 1e-6
    assert np.abs(together - shuffled).max() <= 1e-6


def _decisions(index_dir: Path, embedder: Any, questions: list[str]) -> list[tuple[Any, ...]]:
    from assistant.config import Settings
    from assistant.service import Assistant

    assistant = Assistant(Settings(index_dir=index_dir), embedder=embedder)
    decided = []
    for question in questions:
        answer, retrieval = assistant.ask_traced(question)
        top = tuple(c.clause.clause_id for c in retrieval.candidates[:5])
        decided.append((question, answer.refused, top, tuple(c.clause.label for c in answer.citations)))
    return decided


def test_retrieval_decisions_do_not_change_with_how_the_corpus_was_published(tmp_path: Path, embedder: Any):
    from assistant.index.build import build_index

    questions = [json.loads(line)["question"] for line in (EVAL / "seed_dev.jsonl").read_text("utf-8").splitlines()
                 if line.strip()] + ["政务公开考核分值是多少？"]
    build_index([CORPUS], tmp_path / "at-once", embedder)
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    one_by_one = tmp_path / "one-by-one"
    for source in [SEED, *sorted(p for p in CORPUS.glob("*.md") if p != SEED)]:  # each document its own batch
        shutil.copy(source, corpus / source.name)
        build_index([corpus], one_by_one, embedder)
    first = _decisions(tmp_path / "at-once", embedder, questions)
    assert first == _decisions(one_by_one, embedder, questions)
    by_question = {q: labels for q, _, _, labels in first}
    assert by_question["政务公开考核分值是多少？"] == ("问答5", "8、（二）")  # the interpretation, then its clause


def test_an_index_with_batched_int8_vectors_is_served_until_the_next_index_rebuilds_it(tmp_path: Path,
                                                                                        embedder: Any):
    """After an upgrade, questions are answered from an index whose int8 vectors were embedded in batches (questions
    are embedded as before); the next `index` rebuilds it with vectors made one passage at a time."""
    from assistant.config import Settings
    from assistant.index.build import build_index
    from assistant.index.registry import Registry
    from assistant.service import Assistant

    index = tmp_path / "index"
    build_index([CORPUS], index, embedder)
    legacy = embedder.query_fingerprints[1]
    manifest = json.loads((index / "manifest.json").read_text(encoding="utf-8"))
    (index / "manifest.json").write_text(json.dumps({**manifest, "fingerprint": legacy}), encoding="utf-8")
    registry = Registry(index)
    registry.set_meta("fingerprint", legacy)
    registry.close()
    answer = Assistant(Settings(index_dir=index), embedder=embedder).ask("政务公开考核分值是多少？")
    assert not answer.refused and answer.citations
    summary = build_index([CORPUS], index, embedder)
    assert summary.switched and summary.documents == 2
    assert json.loads((index / "manifest.json").read_text(encoding="utf-8"))["fingerprint"] == embedder.fingerprint
