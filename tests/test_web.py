"""The server: /healthz and the staff chat over real HTTP (uvicorn on loopback), and `serve` on first start."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.answer.records import Answer, Citation
from assistant.channels.web import sources_html
from assistant.ingest.records import Clause
from tests.conftest import BIKES
from tests.gradio_api import ask, call, login, upload
from tests.serve import get_json, own_corpus, serving, serving_app

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def server(assistant) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app on a loopback port, served by uvicorn in a thread."""
    from assistant.server import create_app

    with serving_app(create_app(assistant.settings, assistant)) as base:
        yield base


def test_healthz_reports_the_generation_being_served(server: str):
    status, health = get_json(f"{server}/healthz")
    assert status == 200 and health["status"] == "ok"
    assert health["documents"] == 2 and health["clauses"] == 37 and health["generation"] >= 1


def test_a_staff_question_gets_a_cited_answer_and_its_sources(server: str):
    history, cleared, sources, scores, *_ = ask(server, "政务热线电话太多打不通，政府会整合吗？")
    assert cleared == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    reply = history[1]["content"][0]["text"] if isinstance(history[1]["content"], list) else history[1]["content"]
    assert "[1]" in reply and "7、（四）" in reply
    assert 'data-clause="7、（四）"' in sources and "<mark>" in sources and "现行有效" in sources
    assert "<th>语义相似度</th>" in scores and "<th>关键词</th>" in scores and "<th>融合</th>" in scores
    assert scores.count("<tr>") >= 3 and "<td>[1]</td>" in scores  # the cited candidates are marked


def test_each_conversation_keeps_its_own_history(server: str):
    first = ask(server, "政务公开考核分值是多少？")[0]
    other = ask(server, "政府网站要怎么集约化建设？")[0]
    follow_up = ask(server, "医保报销比例是多少？", first)[0]
    assert len(other) == 2 and len(follow_up) == 4
    assert follow_up[:2] == first[:2]


def test_a_follow_up_is_read_with_its_own_conversation_and_staff_see_how(server: str):
    first = ask(server, "政务公开考核分值是多少？")[0]
    other = ask(server, "政府网站要怎么集约化建设？")[0]
    sources = ask(server, "那市里呢？", first)[2]
    assert "按上文理解为：政务公开考核分值是多少？ 那市里呢？" in sources and "8、（二）" in sources
    assert "按上文理解为：政府网站要怎么集约化建设？ 那市里呢？" in ask(server, "那市里呢？", other)[2]
    assert "按上文理解为" not in ask(server, "政务公开考核分值是多少？")[2]


def test_sources_mark_a_clause_no_longer_in_force():
    clause = Clause("old#1", "old", ("第二条",), "第二条", "", "公共图书馆每周开放不少于五十六小时。", 1,
                    metadata={"title": "示例办法", "status": "已废止"})
    answer = Answer("问", "答", refused=False,
                    citations=[Citation(1, clause, 0.9, sentences=["公共图书馆每周开放不少于五十六小时。"])])
    html = sources_html(answer)
    assert "pa-not-in-force" in html and "已废止" in html and "<mark>公共图书馆" in html


def test_serve_indexes_the_demo_corpus_on_first_start(tmp_path: Path):
    with serving({"POLICY_ASSISTANT_INDEX_DIR": str(tmp_path / "index")}) as (base, server):
        status, health = get_json(f"{base}/healthz")
        assert status == 200 and health["documents"] == 2
    assert "(first start)" in server.stderr_text and f"http://localhost:{base.rsplit(':', 1)[1]}/" in server.stderr_text




@pytest.fixture(scope="module")
def editors_server(tmp_path_factory, embedder) -> Iterator[tuple[str, Path]]:  # type: ignore[no-untyped-def]
    """A server with an editor account, over its own corpus and index (publishing changes them)."""
    from assistant.config import Settings
    from assistant.server import create_app
    from assistant.service import Assistant
    from tests.conftest import SEED

    root = tmp_path_factory.mktemp("editors")
    corpus, _ = own_corpus(root, embedder, SEED)
    settings = Settings(index_dir=root / "index", corpus_dir=corpus, state_dir=root / "state",
                        web={"editor_username": "editor", "editor_password": "s3cret-pass"})
    with serving_app(create_app(settings, Assistant(settings, embedder=embedder))) as base:
        yield base, corpus


def test_anonymous_users_cannot_reach_the_editors_functions(editors_server):
    base, corpus = editors_server
    before = sorted(p.name for p in corpus.iterdir())
    for path in ("/editors/config", "/editors/gradio_api/info"):
        status, _ = get_json(base + path)
        assert status == 401, path
    request = urllib.request.Request(f"{base}/editors/gradio_api/call/publish", method="POST",
                                     data=json.dumps({"data": [[], *[""] * 8, False]}).encode(),
                                     headers={"Content-Type": "application/json"})
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=30)
    assert refused.value.code == 401
    assert login(base, "wrong")[0] == 400
    assert sorted(p.name for p in corpus.iterdir()) == before


def test_an_editor_publishes_a_policy_that_then_answers(editors_server):
    base, corpus = editors_server
    status, editor = login(base, "s3cret-pass")
    assert status == 200
    bad = upload(base, editor, "empty.md", b"")
    event, message = call(f"{base}/editors", "publish", [[bad], *[""] * 8, False], editor)
    assert event == "error" and "empty.md" in json.dumps(message, ensure_ascii=False)
    assert not (corpus / "empty.md").exists()  # a bad upload changes nothing
    assert ask(base, "共享单车可以停在盲道上吗？")[0][1]["content"][0]["text"].startswith("抱歉")
    event, (result, documents, choices) = call(f"{base}/editors", "publish",
                                               [[upload(base, editor, "bikes.md", BIKES.encode())], *[""] * 8, False],
                                               editor)
    assert event == "complete" and "新增 1" in result and "示例市共享单车停放管理办法" in documents
    assert result.startswith("《示例市共享单车停放管理办法》已发布，现用于答复。")  # what happened, then the counts
    assert "bikes" in json.dumps(choices)  # the editor can now pick it from the list
    reply = ask(base, "共享单车可以停在盲道上吗？")[0][1]["content"][0]["text"]
    assert "盲道" in reply and "《示例市共享单车停放管理办法》（示市政发〔2025〕9号） 第二条" in reply
    event, (summary, _, _) = call(f"{base}/editors", "set_status", ["bikes", "已废止", ""], editor)
    assert event == "complete" and "嵌入 0 条" in summary  # a status change re-embeds nothing
    assert summary.startswith("《示例市共享单车停放管理办法》的状态已改为“已废止”")
    reply = ask(base, "共享单车可以停在盲道上吗？")[0][1]["content"][0]["text"]
    assert reply.startswith("注意：《示例市共享单车停放管理办法》的状态为“已废止”")
    questions = '{"question": "共享单车能停盲道吗？", "kind": "answerable", "expect": ["盲道"]}\n'
    event, metrics = call(f"{base}/editors", "evaluate", [upload(base, editor, "q.jsonl", questions.encode())],
                          editor)
    assert event == "complete" and "- 首位命中率：1.000" in metrics[0]
    assert "- 库外问题拒答率：—" in metrics[0]  # no out-of-corpus question in the file: no figure
    event, (summary, documents, _) = call(f"{base}/editors", "withdraw", ["bikes"], editor)
    assert event == "complete" and summary.startswith("《示例市共享单车停放管理办法》已暂停检索，不再用于答复。")
    assert "已暂停检索" in documents and "withdrawn" not in documents
    assert ask(base, "共享单车可以停在盲道上吗？")[0][1]["content"][0]["text"].startswith("抱歉")


def test_feedback_is_stored_with_its_answer_and_exported_as_csv(tmp_path: Path, assistant):  # type: ignore[no-untyped-def]
    from assistant.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    answer = assistant.ask("政务公开考核分值是多少？")
    store.add("down", "分值说得不清楚", answer.to_json())
    with pytest.raises(ValueError):
        store.add("meh", "", answer.to_json())
    csv_text = store.to_csv()
    assert csv_text.startswith("\ufeffid,created_at,rating,comment,question,answer,citations,refused")
    assert "分值说得不清楚" in csv_text and "政务公开考核分值是多少？" in csv_text and "8、（二）" in csv_text


def test_the_chat_can_be_put_behind_its_ownlogin(assistant, tmp_path: Path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from assistant.config import Settings
    from assistant.server import create_app

    settings = Settings(index_dir=assistant.settings.index_dir, state_dir=tmp_path,
                        web={"chat_username": "staff", "chat_password": "pw-1"})
    client = TestClient(create_app(settings, assistant))
    assert client.get("/config").status_code == 401
    assert client.get("/editors/config").status_code == 200  # no editor account: the page says it is off
    assert "编辑发布未开启" in json.dumps(client.get("/editors/config").json(), ensure_ascii=False)
    assert client.post("/login", data={"username": "staff", "password": "pw-1"}).status_code == 200
    assert client.get("/config").status_code == 200
    assert client.get("/healthz").json()["status"] == "ok"


def test_the_chat_links_to_the_editors_page_only_when_it_is_on_and_editors_needs_no_slash(assistant, tmp_path):  # type: ignore[no-untyped-def]
    from fastapi.testclient import TestClient

    from assistant.config import Settings
    from assistant.server import create_app

    def client(**web: str) -> TestClient:
        return TestClient(create_app(Settings(index_dir=assistant.settings.index_dir, state_dir=tmp_path, web=web),
                                     assistant))

    off = client()
    assert "编辑发布 →" not in json.dumps(off.get("/config").json(), ensure_ascii=False)
    on = client(editor_username="editor", editor_password="s3cret-pass")
    assert "编辑发布 →" in json.dumps(on.get("/config").json(), ensure_ascii=False)
    typed = on.get("/editors", follow_redirects=False)
    assert typed.status_code in (301, 307, 308) and typed.headers["location"].endswith("/editors/")
    assert "编辑登录" in on.get("/editors", follow_redirects=True).text  # the login form, not a 404
