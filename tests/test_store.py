"""The vector-store contract, run against the embedded Chroma and against a `chroma run` server alike."""

from __future__ import annotations

import uuid
from pathlib import Path

import numpy as np
import pytest

from assistant.index.registry import NEVER
from assistant.index.store import ClauseStore, chroma_client, drop_collection, record_id, visible
from assistant.ingest.records import Clause


def _clause(n: int, text: str) -> Clause:
    return Clause(f"doc#{n}", "doc", (f"第{n}条",), f"第{n}条", "", text, n,
                  metadata={"doc_id": "doc", "title": "示例办法", "status": "现行有效"})


def _vector(seed: int) -> np.ndarray:
    v = np.random.default_rng(seed).normal(size=16).astype(np.float32)
    return v / np.linalg.norm(v)


@pytest.fixture
def store(chroma_url: str, tmp_path: Path):  # type: ignore[no-untyped-def]
    from assistant.index.store import clause_to_record

    client = chroma_client(tmp_path / "index", chroma_url)
    name = f"contract-{uuid.uuid4().hex[:12]}"
    store = ClauseStore(client, name, generation=1)
    clauses = [_clause(n, f"第{n}条的内容") for n in range(1, 6)]
    store.add([clause_to_record(c) for c in clauses], [c.text for c in clauses], [_vector(n) for n in range(1, 6)], 1)
    yield client, name
    drop_collection(client, name)


@pytest.fixture(params=["metadata", "record map"])
def reader(request):  # type: ignore[no-untyped-def]
    """Opens a reader of one generation. Readers filter by each record's generation marks, or, as the retriever
    does, by the generation's record map (clause id → record id); both must see the same."""
    def open_reader(client, name: str, generation: int) -> ClauseStore:  # type: ignore[no-untyped-def]
        if request.param == "metadata":
            return ClauseStore(client, name, generation=generation, create=False)
        everything = client.get_collection(name).get(include=["metadatas"])
        records = {str(meta["clause_id"]): rid for rid, meta
                   in zip(everything["ids"], everything["metadatas"], strict=True) if visible(meta, generation)}
        return ClauseStore(client, name, generation=generation, create=False, records=records)
    return open_reader


def test_search_returns_the_nearest_visible_clauses_with_cosine(store, reader):
    client, name = store
    hits = reader(client, name, 1).search(list(map(float, _vector(3))), k=2)
    assert hits[0][0].clause_id == "doc#3" and hits[0][1] == pytest.approx(1.0, abs=1e-4)
    assert hits[0][0].label == "第3条" and hits[0][0].metadata["title"] == "示例办法"
    assert len(hits) == 2


def test_records_of_a_later_generation_are_invisible_to_readers_of_an_earlier_one(store, reader):
    from assistant.index.store import clause_to_record

    client, name = store
    writer = ClauseStore(client, name, generation=2)
    revised = _clause(3, "第3条修改后的内容")
    writer.add([clause_to_record(revised)], [revised.text], [_vector(30)], 2)
    writer.mark_removed([record_id("doc#3", 1)], 2)
    old, new = reader(client, name, 1), reader(client, name, 2)
    assert old.search(list(map(float, _vector(3))), k=1)[0][0].text == "第3条的内容"
    assert all(c.text != "第3条修改后的内容" for c, _ in old.search(list(map(float, _vector(30))), k=5))
    assert new.search(list(map(float, _vector(30))), k=1)[0][0].text == "第3条修改后的内容"
    assert all(c.text != "第3条的内容" for c, _ in new.search(list(map(float, _vector(3))), k=5))
    assert old.count() == new.count() == 5
    assert set(new.get([record_id("doc#3", 1), record_id("doc#3", 2)])) == {"doc#3"}
    assert new.get([record_id("doc#3", 1)]) == {}


def test_search_looks_past_records_other_generations_hide(store, reader):
    from assistant.index.store import clause_to_record

    client, name = store
    writer = ClauseStore(client, name, generation=2)
    extra = [_clause(n, f"新增第{n}条") for n in range(10, 40)]
    near = [_vector(3) + 0.01 * _vector(n) for n in range(10, 40)]  # all nearer to the query than doc#1 … doc#5
    writer.add([clause_to_record(c) for c in extra], [c.text for c in extra], near, 2)
    hits = reader(client, name, 1).search(list(map(float, _vector(3))), k=3)
    assert len(hits) == 3 and {c.clause_id for c, _ in hits} <= {f"doc#{n}" for n in range(1, 6)}


def test_roll_back_undoes_an_unfinished_generation(store, reader):
    from assistant.index.store import clause_to_record

    client, name = store
    writer = ClauseStore(client, name, generation=2)
    new = _clause(9, "第9条")
    writer.add([clause_to_record(new)], [new.text], [_vector(9)], 2)
    writer.mark_removed([record_id("doc#1", 1)], 2)
    assert writer.roll_back(1) == 2
    reader = reader(client, name, 2)
    assert reader.count() == 5
    assert set(reader.get([record_id(f"doc#{n}", 1) for n in range(1, 6)])) == {f"doc#{n}" for n in range(1, 6)}
    raw = client.get_collection(name).get(ids=[record_id("doc#1", 1)])["metadatas"][0]
    assert raw["removed"] == NEVER and visible(raw, 7)


def test_vectors_come_back_with_their_clauses_and_deleted_records_are_gone(store, reader):
    client, name = store
    reader = reader(client, name, 1)
    got = reader.get_with_vectors([record_id("doc#2", 1)])
    assert np.allclose(got["doc#2"][1], _vector(2), atol=1e-5)
    ClauseStore(client, name).delete([record_id("doc#2", 1)])
    assert reader.get([record_id("doc#2", 1)]) == {}
    assert "doc#2" not in {c.clause_id for c, _ in reader.search(list(map(float, _vector(2))), k=5)}


def test_a_reader_of_a_missing_collection_is_told_so(chroma_url: str, tmp_path: Path):
    client = chroma_client(tmp_path / "index", chroma_url)
    with pytest.raises(Exception, match="(?i)not exist|not found"):
        ClauseStore(client, f"missing-{uuid.uuid4().hex[:8]}", create=False)
