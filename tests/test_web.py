"""The server: /healthz and the staff chat over real HTTP (uvicorn on loopback), and `serve` on first start."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from assistant.answer.records import Answer, Citation
from assistant.channels.web import sources_html
from assistant.ingest.records import Clause

pytestmark = pytest.mark.slow


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _get(url: str, timeout: float = 30) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@pytest.fixture(scope="module")
def server(assistant) -> Iterator[str]:  # type: ignore[no-untyped-def]
    """The app on a loopback port, served by uvicorn in a thread."""
    import uvicorn

    from assistant.server import create_app

    port = _free_port()
    config = uvicorn.Config(create_app(assistant.settings, assistant), host="127.0.0.1", port=port,
                            log_level="warning")
    uv = uvicorn.Server(config)
    thread = threading.Thread(target=uv.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not uv.started:
        assert time.monotonic() < deadline, "the server did not start"
        time.sleep(0.1)
    yield f"http://127.0.0.1:{port}"
    uv.should_exit = True
    thread.join(timeout=30)


def ask(base: str, question: str, history: list | None = None) -> list:  # type: ignore[type-arg]
    """Call the chat through Gradio's HTTP API, as the browser's client does."""
    body = json.dumps({"data": [question, history or []]}).encode()
    request = urllib.request.Request(f"{base}/gradio_api/call/ask", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/ask/{event_id}", timeout=60) as response:
        stream = response.read().decode()
    assert "event: complete" in stream, stream
    data = stream.split("event: complete", 1)[1].split("data:", 1)[1].strip().splitlines()[0]
    return list(json.loads(data))


def test_healthz_reports_the_generation_being_served(server: str):
    status, health = _get(f"{server}/healthz")
    assert status == 200 and health["status"] == "ok"
    assert health["documents"] == 2 and health["clauses"] == 37 and health["generation"] >= 1


def test_a_staff_question_gets_a_cited_answer_and_its_sources(server: str):
    history, cleared, sources, scores = ask(server, "政务热线电话太多打不通，政府会整合吗？")
    assert cleared == ""
    assert [m["role"] for m in history] == ["user", "assistant"]
    reply = history[1]["content"][0]["text"] if isinstance(history[1]["content"], list) else history[1]["content"]
    assert "[1]" in reply and "7、（四）" in reply
    assert 'data-clause="7、（四）"' in sources and "<mark>" in sources and "现行有效" in sources
    assert "<th>dense</th>" in scores and "<th>BM25</th>" in scores and "<th>fused</th>" in scores
    assert scores.count("<tr>") >= 3 and "<td>[1]</td>" in scores  # the cited candidates are marked


def test_each_conversation_keeps_its_own_history(server: str):
    first = ask(server, "政务公开考核分值是多少？")[0]
    other = ask(server, "政府网站要怎么集约化建设？")[0]
    follow_up = ask(server, "医保报销比例是多少？", first)[0]
    assert len(other) == 2 and len(follow_up) == 4
    assert follow_up[:2] == first[:2]


def test_sources_mark_a_clause_no_longer_in_force():
    clause = Clause("old#1", "old", ("第二条",), "第二条", "", "公共图书馆每周开放不少于五十六小时。", 1,
                    metadata={"title": "示例办法", "status": "已废止"})
    answer = Answer("问", "答", refused=False,
                    citations=[Citation(1, clause, 0.9, sentences=["公共图书馆每周开放不少于五十六小时。"])])
    html = sources_html(answer)
    assert "pa-not-in-force" in html and "已废止" in html and "<mark>公共图书馆" in html


def test_serve_indexes_the_demo_corpus_on_first_start(tmp_path: Path):
    port = _free_port()
    env = {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(tmp_path / "index")}
    server = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", str(port)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 300
        while True:
            assert server.poll() is None, server.communicate()
            try:
                status, health = _get(f"http://127.0.0.1:{port}/healthz", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(1)
        assert status == 200 and health["documents"] == 2
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
    assert "(first start)" in stderr and f"http://localhost:{port}/" in stderr
