"""Index building on a small corpus with the real model: generations, interpretation links, validity, 条号."""

from pathlib import Path

import pytest

from assistant.config import Settings
from assistant.index.build import build_index
from assistant.index.generations import Manifest
from assistant.service import Assistant

pytestmark = pytest.mark.slow

REGULATION = """---
title: 示例市公共图书馆管理办法
doc_number: 示市政发〔2020〕3号
status: 已废止
---
第一条　为了规范公共图书馆的管理，制定本办法。

第二条　公共图书馆应当向读者免费开放，每周开放时间不少于五十六小时。

第二条之一　读者凭身份证可以免费办理借阅证，每次最多借阅五册图书。
"""

INTERPRETATION = """---
title: 示例市公共图书馆管理办法解读
kind: interpretation
interprets: 示市政发〔2020〕3号
---
问：办借书证要钱吗，一次能借几本？
答：读者拿身份证就能免费办理借阅证，每次最多可以借阅五册图书。
"""


@pytest.fixture(scope="module")
def small(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("small")
    corpus = root / "corpus"
    corpus.mkdir()
    (corpus / "library.md").write_text(REGULATION, encoding="utf-8")
    (corpus / "library-jiedu.md").write_text(INTERPRETATION, encoding="utf-8")
    index_dir = root / "index"
    build_index([corpus], index_dir, embedder)
    return Assistant(Settings(index_dir=index_dir), embedder=embedder), corpus, index_dir


def test_interpretation_without_a_label_is_linked_to_its_most_similar_clause(small):
    assistant, _, _ = small
    answer = assistant.ask("借书证怎么办理，一次能借几本书？")
    assert not answer.refused
    labels = [(c.clause.metadata["kind"], c.clause.label) for c in answer.citations]
    assert ("policy", "第二条之一") in labels, labels


def test_repealed_document_is_warned_about_at_the_top(small):
    assistant, _, _ = small
    answer = assistant.ask("图书馆每周开放多长时间？")
    assert not answer.refused
    assert answer.text.startswith("注意：《示例市公共图书馆管理办法》的状态为“已废止”")
    assert answer.citations[0].clause.status == "已废止"


def test_article_number_in_the_question_is_matched_exactly(small):
    assistant, _, _ = small
    top = assistant.retrieve("第二条之一是怎么规定的？").candidates[0]
    assert top.exact and top.clause.label == "第二条之一"


def test_rebuild_switches_to_a_new_collection_and_drops_the_old_one_a_switch_later(small, embedder):
    from assistant.index.store import chroma_client

    _, corpus, index_dir = small
    first = Manifest.read(index_dir)
    build_index([corpus], index_dir, embedder, rebuild=True)
    second = Manifest.read(index_dir)
    assert second.generation > first.generation and second.collection != first.collection
    names = {c.name for c in chroma_client(index_dir).list_collections()}
    assert {first.collection, second.collection} <= names  # readers of the first may still be answering
    build_index([corpus], index_dir, embedder, rebuild=True)
    third = Manifest.read(index_dir)
    names = {c.name for c in chroma_client(index_dir).list_collections()}
    assert first.collection not in names and {second.collection, third.collection} <= names
    assert not (index_dir / "generations" / str(first.generation)).exists()
    segments = [d for d in (index_dir / "chroma").iterdir() if d.is_dir() and len(d.name) == 36]
    assert len(segments) == 2  # the dropped collection's vectors are gone from disk too


def test_index_refuses_an_empty_corpus_and_keeps_the_old_index(small, embedder, tmp_path: Path):
    from assistant.errors import CorpusError

    _, _, index_dir = small
    before = Manifest.read(index_dir)
    with pytest.raises(CorpusError):
        build_index([tmp_path], index_dir, embedder)
    assert Manifest.read(index_dir).generation == before.generation


def test_an_answering_assistant_follows_an_editors_changes_made_by_another_process(tmp_path, embedder):
    import os
    import subprocess
    import sys

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "library.md").write_text(REGULATION, encoding="utf-8")
    index_dir = tmp_path / "index"
    build_index([corpus], index_dir, embedder)
    assistant = Assistant(Settings(index_dir=index_dir), embedder=embedder)
    question = "图书馆每周开放多长时间？"
    first = assistant.ask(question)
    assert "五十六小时" in first.text and first.text.startswith("注意：")

    def cli(*args: str) -> None:
        env = {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(index_dir)}
        done = subprocess.run([sys.executable, "-m", "assistant", *args], capture_output=True, text=True, env=env,
                              timeout=600)
        assert done.returncode == 0, done.stderr

    # the editor revises the article and puts the regulation back in force, in another process
    (corpus / "library.md").write_text(
        REGULATION.replace("status: 已废止", "status: 现行有效").replace("五十六小时", "六十小时"), encoding="utf-8")
    cli("index", str(corpus))
    answer, retrieval = assistant.ask_traced(question)
    assert "六十小时" in answer.text and not answer.text.startswith("注意：")
    assert not any("五十六小时" in c.clause.text for c in retrieval.candidates)  # the old text is never retrieved
    cli("docs", "withdraw", "library")
    answer, retrieval = assistant.ask_traced(question)
    assert answer.refused and not retrieval.candidates
