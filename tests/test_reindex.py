"""Incremental reindexing and document management, with a real Chroma (embedded and server) and SQLite.

The embedder is a deterministic fake: these tests check what is embedded, stored and retrievable, not
ranking quality (tests/test_index.py does that with the real model).
"""

from __future__ import annotations

import shutil
import uuid
from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.index.build import Indexer, passage_text
from assistant.index.generations import IndexBusyError, Manifest, index_lock
from assistant.index.lexical import tokenize
from assistant.index.store import drop_collection
from assistant.ingest.limits import Limits
from assistant.retrieve import Retriever
from tests.fakes import CountingEmbedder

PARKING = """---
title: 示例市停车管理办法
doc_number: 示市政发〔2021〕7号
---
第一条　为了规范机动车停放秩序，制定本办法。

第二条　公共停车场白天收费标准为每小时五元，夜间免费。

第三条　占用消防通道停车的，由公安机关交通管理部门依法处罚。
"""

SORTING = """---
title: 示例市生活垃圾分类规定
---
第一条　生活垃圾分为可回收物、有害垃圾、厨余垃圾和其他垃圾。

第二条　单位和个人应当将生活垃圾分类投放到相应的收集容器。
"""

NOTICE = "关于开展夏季防汛检查的通知\n一、各区县要在六月底前完成防汛物资储备。\n二、汛期实行二十四小时值班制度。\n"


@pytest.fixture
def corpus(tmp_path: Path) -> Path:
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "parking.md").write_text(PARKING, encoding="utf-8")
    (folder / "sorting.md").write_text(SORTING, encoding="utf-8")
    (folder / "flood.txt").write_text(NOTICE, encoding="utf-8")
    return folder


class Editor:
    """An indexer over one index directory, and fresh readers of whatever generation is active."""

    def __init__(self, index_dir: Path, chroma_url: str, max_file_bytes: int = 20_000_000) -> None:
        self.index_dir = index_dir
        self.chroma_url = chroma_url
        self.embedder = CountingEmbedder()
        self.indexer = Indexer(index_dir, lambda: self.embedder, fingerprint=self.embedder.fingerprint,
                               model=self.embedder.name, chroma_url=chroma_url,
                               collection_prefix=f"t{uuid.uuid4().hex[:10]}",
                               limits=Limits(max_file_bytes=max_file_bytes))

    def reader(self) -> Retriever:
        settings = Settings(index_dir=self.index_dir, chroma_url=self.chroma_url)
        return Retriever(self.index_dir, self.embedder, settings)  # type: ignore[arg-type]


@pytest.fixture
def editor(tmp_path: Path, chroma_url: str):  # type: ignore[no-untyped-def]
    editor = Editor(tmp_path / "index", chroma_url)
    yield editor
    from assistant.index.registry import Registry
    from assistant.index.store import chroma_client

    client = chroma_client(editor.index_dir, chroma_url)
    for name in Registry(editor.index_dir).collections():
        drop_collection(client, name)


def texts_found(reader: Retriever, phrase: str) -> set[str]:
    """Texts of the clauses BM25 retrieves for the phrase that contain it."""
    hits = [cid for cid, _ in reader.lexical.search(tokenize(phrase), 50)]
    clauses = reader.store.get(reader.records[cid] for cid in hits)
    assert set(clauses) == set(hits)  # every BM25 hit is a visible record of the same generation
    return {c.text for c in clauses.values() if phrase in c.text}


def dense_texts(reader: Retriever, passages: list[str]) -> set[str]:
    """Texts of the nearest visible clause to each passage's own vector (the fake model: same text, same vector)."""
    found = set()
    for passage in passages:
        clause, cosine = reader.store.search(reader.embedder.embed_query(passage), k=1)[0]
        if cosine > 0.999:
            found.add(clause.text)
    return found


def passages_of(editor: Editor, doc_id: str) -> dict[str, str]:
    _, clauses = editor.indexer.clauses(doc_id)
    return {c.text: passage_text(c) for c in clauses}


def test_first_index_embeds_every_clause_and_a_no_op_reindex_embeds_nothing(editor: Editor, corpus: Path):
    first = editor.indexer.sync([corpus])
    assert sorted(first.added) == ["flood", "parking", "sorting"] and first.switched
    assert first.embedded == first.clauses == len(editor.embedder.embedded) == 7
    assert editor.reader().store.count() == 7
    again = editor.indexer.sync([corpus])
    assert not again.switched and again.embedded == 0 and again.unchanged == 3
    assert not (again.added or again.updated or again.removed)
    assert len(editor.embedder.embedded) == 7
    assert Manifest.read(editor.index_dir).generation == first.generation


def test_a_revised_document_replaces_its_clauses_in_dense_and_bm25_results(editor: Editor, corpus: Path):
    editor.indexer.sync([corpus])
    old_passages = passages_of(editor, "parking")
    before = editor.reader()
    (corpus / "parking.md").write_text(
        PARKING.replace("每小时五元", "每小时八元").split("第三条")[0], encoding="utf-8")  # 第三条 dropped
    summary = editor.indexer.sync([corpus])
    assert summary.updated == ["parking"] and summary.unchanged == 2
    assert summary.embedded == 1  # only the revised clause; the others' passages are unchanged
    assert (summary.records_added, summary.records_removed) == (1, 2)

    after = editor.reader()
    old_second = "第二条　公共停车场白天收费标准为每小时五元，夜间免费。"
    old_third = "第三条　占用消防通道停车的，由公安机关交通管理部门依法处罚。"
    assert texts_found(after, "每小时五元") == set()
    assert texts_found(after, "消防通道") == set()
    assert texts_found(after, "每小时八元")
    gone = [p for t, p in old_passages.items() if t in (old_second, old_third)]
    assert len(gone) == 2 and dense_texts(after, gone) == set()
    assert after.store.count() == 6
    assert [c.label for c in editor.indexer.clauses("parking")[1]] == ["第一条", "第二条"]
    # a reader that opened the previous generation still sees all of it, unmixed
    assert texts_found(before, "每小时五元")
    revised = passage_text(editor.indexer.clauses("parking")[1][1])
    assert not any("每小时八元" in t for t in dense_texts(before, [revised]))
    assert before.store.count() == 7


def test_a_deleted_file_takes_its_clauses_out_of_every_index(editor: Editor, corpus: Path):
    editor.indexer.sync([corpus])
    passages = list(passages_of(editor, "sorting").values())
    (corpus / "sorting.md").unlink()
    summary = editor.indexer.sync([corpus])
    assert summary.removed == ["sorting"] and summary.embedded == 0
    reader = editor.reader()
    assert texts_found(reader, "分类投放") == set()
    assert dense_texts(reader, passages) == set()
    assert "sorting" not in {d.doc_id for d in editor.indexer.documents()}
    assert reader.store.count() == 5


def test_indexing_one_file_leaves_the_other_documents_alone(editor: Editor, corpus: Path, tmp_path: Path):
    editor.indexer.sync([corpus])
    extra = tmp_path / "extra"
    extra.mkdir()
    (extra / "heat.txt").write_text("关于防暑降温的通知\n一、高温天气户外作业应当调整作息时间。\n", encoding="utf-8")
    summary = editor.indexer.sync([extra / "heat.txt"])
    assert summary.added == ["heat"] and not summary.removed
    assert {d.doc_id for d in editor.indexer.documents()} == {"flood", "parking", "sorting", "heat"}


def test_a_status_change_takes_effect_without_embedding(editor: Editor, corpus: Path):
    (corpus / "parking-2025.md").write_text(
        PARKING.replace("示例市停车管理办法", "示例市停车管理条例").replace("〔2021〕7号", "〔2025〕2号")
        .replace("每小时五元", "每小时六元"), encoding="utf-8")
    editor.indexer.sync([corpus])
    embedded = len(editor.embedder.embedded)
    (corpus / "parking.md").write_text(
        PARKING.replace("doc_number:", "status: 已废止\nreplaced_by: 示例市停车管理条例\ndoc_number:"),
        encoding="utf-8")
    summary = editor.indexer.sync([corpus])
    assert summary.updated == ["parking"] and summary.embedded == 0
    assert len(editor.embedder.embedded) == embedded
    reader = editor.reader()
    cid = next(cid for cid, _ in reader.lexical.search(tokenize("每小时五元"), 5))
    clause = reader.store.get([reader.records[cid]])[cid]
    assert clause.status == "已废止" and not clause.in_force()
    assert clause.metadata["replaced_by"] == "parking-2025"
    assert clause.metadata["replaced_by_title"] == "示例市停车管理条例"


def test_withdraw_and_restore_switch_retrieval_without_embedding(editor: Editor, corpus: Path):
    editor.indexer.sync([corpus])
    embedded = len(editor.embedder.embedded)
    editor.indexer.withdraw("flood")
    assert texts_found(editor.reader(), "防汛物资") == set()
    assert {d.doc_id: d.state for d in editor.indexer.documents()}["flood"] == "withdrawn"
    assert editor.indexer.sync([corpus]).embedded == 0  # reindexing keeps it withdrawn
    assert texts_found(editor.reader(), "防汛物资") == set()
    editor.indexer.restore("flood")
    assert texts_found(editor.reader(), "防汛物资")
    assert len(editor.embedder.embedded) == embedded
    with pytest.raises(AssistantError, match="is active, not withdrawn"):
        editor.indexer.restore("flood")


def test_a_removed_document_stays_out_until_restored_or_its_file_changes(editor: Editor, corpus: Path):
    editor.indexer.sync([corpus])
    editor.indexer.remove("sorting")
    assert texts_found(editor.reader(), "垃圾分类") == set()
    summary = editor.indexer.sync([corpus])
    assert summary.skipped == ["sorting"] and not summary.added
    assert texts_found(editor.reader(), "垃圾分类") == set()
    editor.indexer.restore("sorting")
    assert texts_found(editor.reader(), "分类投放")
    editor.indexer.remove("sorting")
    (corpus / "sorting.md").write_text(SORTING + "\n第三条　本规定自公布之日起施行。\n", encoding="utf-8")
    assert editor.indexer.sync([corpus]).added == ["sorting"]
    with pytest.raises(AssistantError, match="no document 'nope'"):
        editor.indexer.withdraw("nope")


def test_bad_files_are_reported_by_name_and_nothing_indexed_is_lost(tmp_path: Path, corpus: Path, chroma_url: str):
    editor = Editor(tmp_path / "index", chroma_url, max_file_bytes=2000)
    editor.indexer.sync([corpus])
    (corpus / "flood.txt").write_bytes(b"\x00\x01binary" * 40)  # an indexed file goes bad
    bad = {
        "empty.md": b"",
        "binary.txt": b"\x00\x01\x02\x03" * 50,
        "corrupt.pdf": b"%PDF-1.4\n garbage",
        "broken.docx": b"PK\x03\x04 not really a zip",
        "strange.txt": bytes(range(128, 256)) * 3,
        "huge.txt": ("一、" + "很长的内容。" * 400).encode("utf-8"),
        "frontmatter.md": "---\ntitle: [unclosed\n---\n第一条　正文。\n".encode(),
        "parking-copy.md": PARKING.encode("utf-8"),
    }
    for name, data in bad.items():
        (corpus / name).write_bytes(data)
    (corpus / "heat.txt").write_text("关于防暑降温的通知\n一、高温天气户外作业应当调整作息时间。\n", encoding="utf-8")
    summary = editor.indexer.sync([corpus])
    assert summary.added == ["heat"]
    reasons = {"empty.md": "empty file", "binary.txt": "binary content", "corrupt.pdf": "PDF",
               "broken.docx": "DOCX", "strange.txt": "unknown text encoding", "huge.txt": "limit",
               "frontmatter.md": "malformed front matter", "parking-copy.md": "same text as",
               "flood.txt": "indexed version stays"}
    for name, reason in reasons.items():
        assert any(name in e and reason in e for e in summary.errors), (name, summary.errors)
    assert len(summary.errors) == len(reasons)
    reader = editor.reader()
    assert texts_found(reader, "防汛物资")  # the old flood.txt still answers
    assert {d.doc_id for d in editor.indexer.documents()} == {"flood", "parking", "sorting", "heat"}


def test_a_second_writer_is_turned_away_with_a_clear_message(editor: Editor, corpus: Path):
    editor.indexer.sync([corpus])
    with index_lock(editor.index_dir), pytest.raises(IndexBusyError, match=r"being updated by pid \d+"):
        editor.indexer.sync([corpus])
    with index_lock(editor.index_dir), pytest.raises(IndexBusyError):
        editor.indexer.withdraw("flood")
    assert editor.indexer.sync([corpus]).unchanged == 3  # the lock goes with its holder


def test_a_wrong_path_changes_nothing(editor: Editor, corpus: Path, tmp_path: Path):
    from assistant.errors import CorpusError

    editor.indexer.sync([corpus])
    generation = Manifest.read(editor.index_dir).generation
    empty = tmp_path / "empty"
    empty.mkdir()
    for paths in ([tmp_path / "nowhere"], [empty]):
        with pytest.raises(CorpusError):
            editor.indexer.sync(paths)
    assert Manifest.read(editor.index_dir).generation == generation
    assert len(editor.indexer.documents()) == 3


def test_a_renamed_file_is_not_a_duplicate_and_is_not_embedded_again(editor: Editor, corpus: Path):
    editor.indexer.sync([corpus])
    embedded = len(editor.embedder.embedded)
    shutil.move(corpus / "sorting.md", corpus / "garbage-sorting.md")
    summary = editor.indexer.sync([corpus])
    assert summary.added == ["garbage-sorting"] and summary.removed == ["sorting"] and not summary.errors
    assert len(editor.embedder.embedded) == embedded


@pytest.mark.parametrize("point", ["embedding", "storing", "marking", "lexical", "commit", "switch", "cleanup"])
def test_a_reindex_killed_at_any_point_leaves_the_old_state_answering_and_the_next_run_converges(
        editor: Editor, corpus: Path, point: str):
    import subprocess
    import sys

    from assistant.index.registry import NEVER, Registry
    from assistant.index.store import chroma_client
    from assistant.service import _forget_embedded_clients
    from tests.conftest import ROOT

    editor.indexer.sync([corpus])
    (corpus / "parking.md").write_text(PARKING.replace("每小时五元", "每小时八元"), encoding="utf-8")
    (corpus / "sorting.md").unlink()
    (corpus / "heat.txt").write_text("关于防暑降温的通知\n一、高温天气户外作业应当调整作息时间。\n", encoding="utf-8")
    killed = subprocess.run(
        [sys.executable, "-m", "tests.crash_index", str(editor.index_dir), str(corpus), point,
         editor.indexer.prefix, editor.chroma_url], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert killed.returncode == -9, killed.stderr

    def readers_see() -> tuple[int, dict[str, bool], int]:
        """The active generation, which of the phrases readers find, and how many clauses they see."""
        _forget_embedded_clients()
        reader = editor.reader()
        phrases = ("每小时五元", "每小时八元", "分类投放", "作息时间")
        found = {phrase: bool(texts_found(reader, phrase)) for phrase in phrases}
        return reader.manifest.generation, found, reader.store.count()

    before = (1, {"每小时五元": True, "每小时八元": False, "分类投放": True, "作息时间": False}, 7)
    after = (2, {"每小时五元": False, "每小时八元": True, "分类投放": False, "作息时间": True}, 6)
    assert readers_see() == (after if point == "cleanup" else before)

    # the editor takes the revision back before the next run: nothing the killed run wrote may surface
    (corpus / "parking.md").write_text(PARKING, encoding="utf-8")
    editor.indexer.sync([corpus])
    generation, found, count = readers_see()
    assert found == {"每小时五元": True, "每小时八元": False, "分类投放": False, "作息时间": True} and count == 6
    registry = Registry(editor.index_dir)
    assert registry.building_generations() == []
    collection = chroma_client(editor.index_dir, editor.chroma_url).get_collection(
        Manifest.read(editor.index_dir).collection)
    marks = collection.get(include=["metadatas"])["metadatas"]
    assert all(m["added"] <= generation and (m["removed"] == NEVER or m["removed"] == generation) for m in marks)
    embedded = len(editor.embedder.embedded)
    again = editor.indexer.sync([corpus])
    assert not again.switched and again.unchanged == 3 and len(editor.embedder.embedded) == embedded


def test_a_new_model_or_chunking_builds_a_new_collection_and_switches_only_when_complete(
        editor: Editor, corpus: Path):
    from assistant.errors import AssistantError as Refused

    editor.indexer.sync([corpus])
    first = Manifest.read(editor.index_dir)
    other = CountingEmbedder()
    other.fingerprint = "other384"  # another model: its vectors must never mix with the first's
    indexer = Indexer(editor.index_dir, lambda: other, fingerprint=other.fingerprint, model="other",
                      chroma_url=editor.chroma_url, collection_prefix=editor.indexer.prefix)
    summary = indexer.sync([corpus])
    second = Manifest.read(editor.index_dir)
    assert summary.switched and summary.embedded == 7 and second.collection != first.collection
    assert second.collection.split("-")[1] != first.collection.split("-")[1]  # the name hashes model + chunking
    with pytest.raises(Refused, match="built with model"):
        editor.reader()  # a reader with the first model is refused, not mixed
    chunked = Indexer(editor.index_dir, lambda: other, fingerprint=other.fingerprint, model="other",
                      chroma_url=editor.chroma_url, collection_prefix=editor.indexer.prefix, max_chars=60)
    third = chunked.sync([corpus])
    assert third.switched and Manifest.read(editor.index_dir).chunking != second.chunking
    assert chunked.sync([corpus]).switched is False  # and then it is the index's chunking
