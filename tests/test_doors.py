"""The doors for other systems, against a real `policy-assistant serve` on loopback, through real clients: the JSON
API (httpx), the official `openai` SDK, the `mcp` SDK's client (streamable HTTP and stdio), and the LangChain
retriever in an LCEL chain."""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import BIKES, CORPUS, ROOT
from tests.serve import own_corpus, serving

pytestmark = pytest.mark.slow
ASK_KEY, PUBLISH_KEY, LIMITED_KEY = "pa-test-ask-key-0001", "pa-test-publish-key-0002", "pa-test-limited-key-0003"
QUESTION = "政务公开考核分值是多少？"

def sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


@dataclass
class Api:
    base: str
    env: dict[str, str]
    log: Path
    made_key: str  # made with `policy-assistant keys create` before the server started

    def client(self, key: str | None = ASK_KEY) -> httpx.Client:
        return httpx.Client(base_url=self.base, timeout=120,
                            headers={"Authorization": f"Bearer {key}"} if key else {})


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Api]:
    root = tmp_path_factory.mktemp("doors")
    _, env = own_corpus(root, embedder, CORPUS)
    keys = [{"name": "portal", "scope": "ask", "sha256": sha(ASK_KEY)},
            {"name": "cms", "scope": "publish", "sha256": sha(PUBLISH_KEY)},
            {"name": "tight", "scope": "ask", "sha256": sha(LIMITED_KEY), "rate_limit_per_minute": 3}]
    env["POLICY_ASSISTANT_API__KEYS"] = json.dumps(keys)
    made = subprocess.run([sys.executable, "-m", "assistant", "keys", "create", "--name", "hotline", "--scope", "ask"],
                          env={**os.environ, **env}, capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert made.returncode == 0, made.stderr
    (root / "work").mkdir()
    with serving(env, cwd=root / "work", log=root / "serve.log") as (base, _):
        yield Api(base, env, root / "serve.log", made.stdout.strip())


def ask(api: Api, question: str, key: str = ASK_KEY, **more: Any) -> dict[str, Any]:
    with api.client(key) as client:
        response = client.post("/api/v1/ask", json={"question": question, **more})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


def cited(answer: dict[str, Any]) -> list[str]:
    return [c["doc_id"] for c in answer["citations"]]


def test_the_apis_answer_is_the_same_object_as_ask_json(api: Api):
    answer = ask(api, QUESTION)
    assert answer["citations"] and not answer["refused"] and "4%" in answer["answer"]
    cli = subprocess.run([sys.executable, "-m", "assistant", "ask", "--json", QUESTION], env={**os.environ, **api.env},
                         capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert cli.returncode == 0, cli.stderr
    assert answer == json.loads(cli.stdout)


def test_a_streamed_answer_ends_with_the_same_answer(api: Api):
    with api.client() as client, client.stream("POST", "/api/v1/ask", json={"question": QUESTION, "stream": True}) \
            as response:
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        events = [(block.split("\n")[0].removeprefix("event: "), json.loads(block.split("data: ", 1)[1]))
                  for block in response.read().decode().strip().split("\n\n")]
    assert events[-1][0] == "answer" and events[-1][1] == ask(api, QUESTION)


def test_a_conversation_continues_by_its_id_and_by_history(api: Api):
    first = ask(api, "政府信息公开申请多久答复？", conversation_id="c-1")
    assert first["conversation_id"] == "c-1" and first["citations"]
    follow_up = ask(api, "那市里呢？", conversation_id="c-1")
    assert follow_up.get("standalone_question")  # read against the turn before
    assert ask(api, "那市里呢？", history=["政府信息公开申请多久答复？"]).get("standalone_question")
    assert not ask(api, "那市里呢？", key=PUBLISH_KEY, conversation_id="c-1").get("standalone_question")  # not its own


def test_search_returns_ranked_clauses_with_their_citations(api: Api):
    with api.client() as client:
        found = client.get("/api/v1/search", params={"q": "不见面审批", "k": 3}).json()
    assert found["relevant"] and len(found["clauses"]) == 3 and [c["rank"] for c in found["clauses"]] == [1, 2, 3]
    best = found["clauses"][0]
    assert best["clause"] == "5、（一）" and "不見面審批" in best["text"] and best["citation"].endswith("5、（一）")
    assert best["status"] == "现行有效" and {"dense", "bm25", "relevance"} <= set(best["scores"])


def test_a_documents_life_cycle_through_the_api(api: Api):
    question = "共享单车可以停在盲道上吗？"
    assert ask(api, question)["refused"]
    with api.client(PUBLISH_KEY) as client:
        published = client.put("/api/v1/documents/bikes", files={"file": ("bikes.md", BIKES.encode())},
                               data={"issuer": "示例市人民政府"})
        assert published.status_code == 200, published.text
        assert published.json()["summary"]["added"] == ["bikes"]
        assert published.json()["title"] == "示例市共享单车停放管理办法"
        answer = ask(api, question)
        assert "bikes" in cited(answer) and "盲道" in answer["answer"]
        assert client.put("/api/v1/documents/bikes", files={"file": ("bikes.md", BIKES.encode())}).status_code == 409
        shown = client.get("/api/v1/documents/bikes").json()
        assert shown["issuer"] == "示例市人民政府" and [c["clause"] for c in shown["clauses"]] == ["第一条", "第二条"]
        assert client.post("/api/v1/documents/bikes/withdraw").json()["state"] == "withdrawn"
        assert "bikes" not in cited(ask(api, question))
        assert client.post("/api/v1/documents/bikes/restore").json()["state"] == "active"
        changed = client.post("/api/v1/documents/bikes/status", json={"status": "已废止"}).json()
        assert changed["status"] == "已废止" and changed["summary"]["embedded"] == 0
        assert any("已废止" in w for w in ask(api, question)["warnings"])
        assert client.delete("/api/v1/documents/bikes").json()["state"] == "removed"
        listed = client.get("/api/v1/documents").json()["documents"]
        assert "bikes" not in [d["doc_id"] for d in listed] and len(listed) == 2
    assert "bikes" not in cited(ask(api, question))


def test_keys_401_without_403_for_the_wrong_scope_429_past_the_limit_and_never_logged(api: Api):
    for key in (None, "pa-not-a-key"):
        with api.client(key) as client:
            refused = client.post("/api/v1/ask", json={"question": QUESTION})
            assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_api_key"
            assert refused.headers["www-authenticate"] == "Bearer"
    with api.client(ASK_KEY) as client:
        forbidden = client.put("/api/v1/documents/x", files={"file": ("x.md", b"x")})
        assert forbidden.status_code == 403 and forbidden.json()["error"]["code"] == "insufficient_scope"
        assert client.post("/api/v1/documents/shandong-2018-zhengwu-gongkai/withdraw").status_code == 403
    with api.client(api.made_key) as client:  # made with `keys create`
        assert client.get("/api/v1/documents").status_code == 200
    with api.client(LIMITED_KEY) as client:
        codes = [client.get("/api/v1/search", params={"q": "政务公开"}) for _ in range(4)]
    assert [r.status_code for r in codes] == [200, 200, 200, 429]
    assert int(codes[-1].headers["retry-after"]) > 0
    log = api.log.read_text(encoding="utf-8")
    assert "'portal'" in log and "publish request" in log  # the refusal is logged, by the key's name
    for key in (ASK_KEY, PUBLISH_KEY, LIMITED_KEY, api.made_key, "pa-not-a-key"):
        assert key not in log


def test_hostile_input_gets_a_clean_4xx_and_the_server_keeps_answering(api: Api):
    with api.client(PUBLISH_KEY) as client:
        huge = client.post("/api/v1/ask", json={"question": "问" * 1_000_000})
        assert huge.status_code == 413 and "error" in huge.json()
        long = client.post("/api/v1/ask", json={"question": "问" * 600})
        assert long.status_code == 422 and long.json()["error"]["param"] == "question"
        typed = client.post("/api/v1/ask", content=json.dumps({"question": QUESTION}),
                            headers={"Content-Type": "text/plain"})
        assert typed.status_code == 415
        wrong = client.post("/api/v1/ask", json={"question": ["不是字符串"]})
        assert wrong.status_code == 422 and wrong.json()["error"]["param"] == "question"
        blank = client.post("/api/v1/ask", json={"question": "   "})
        assert blank.status_code == 422 and blank.json()["error"]["param"] == "question"
        no_file = client.put("/api/v1/documents/nothing", data={"title": "无文件"})
        assert no_file.status_code == 422 and no_file.json()["error"]["param"] == "file"
        before = client.get("/api/v1/documents").json()
        broken = client.put("/api/v1/documents/broken", files={"file": ("broken.docx", b"PK\x03\x04 not a zip")})
        assert broken.status_code == 422 and "broken.docx" in broken.json()["error"]["message"]
        unsupported = client.put("/api/v1/documents/notes", files={"file": ("notes.exe", b"MZ")})
        assert unsupported.status_code == 422 and unsupported.json()["error"]["param"] == "file"
        for doc_id in ("..%2F..%2Fetc%2Fpasswd", "%2E%2E", ".hidden"):
            assert client.get(f"/api/v1/documents/{doc_id}").status_code in (404, 422)
            assert client.put(f"/api/v1/documents/{doc_id}", files={"file": ("a.md", b"# a")}).status_code in (404, 422)
        assert client.get("/api/v1/documents/no-such-document").status_code == 404
        assert client.get("/api/v1/documents").json() == before
        assert not list(Path(api.env["POLICY_ASSISTANT_CORPUS_DIR"]).glob("broken*"))
    assert ask(api, QUESTION)["citations"]


def test_the_openai_client_gets_the_cited_answer_streaming_and_not(api: Api):
    from openai import NotFoundError, OpenAI

    client = OpenAI(base_url=f"{api.base}/v1", api_key=ASK_KEY)
    assert [m.id for m in client.models.list()] == ["policy-assistant"]
    completion = client.chat.completions.create(model="policy-assistant",
                                                messages=[{"role": "user", "content": QUESTION}])
    expected = ask(api, QUESTION)
    assert completion.choices[0].message.content == expected["answer"]
    assert completion.model_extra["citations"] == expected["citations"]
    stream = client.chat.completions.create(model="policy-assistant", stream=True,
                                            messages=[{"role": "system", "content": "你是政策助手"},
                                                      {"role": "user", "content": QUESTION}])
    chunks = list(stream)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == expected["answer"]
    assert chunks[-1].choices[0].finish_reason == "stop"
    assert chunks[-1].model_extra["citations"] == expected["citations"]
    follow_up = client.chat.completions.create(model="policy-assistant", messages=[
        {"role": "user", "content": "政府信息公开申请多久答复？"}, {"role": "assistant", "content": "……"},
        {"role": "user", "content": "那市里呢？"}])
    assert follow_up.model_extra["citations"]
    with pytest.raises(NotFoundError):
        client.chat.completions.create(model="gpt-4o", messages=[{"role": "user", "content": QUESTION}])


async def _mcp_session(client: Any) -> tuple[list[str], Any, Any]:
    async with client:
        tools = sorted(tool.name for tool in (await client.list_tools()).tools)
        asked = await client.call_tool("ask_policy", {"question": QUESTION})
        document = await client.call_tool("get_document", {"doc_id": "shandong-2018-zhengwu-gongkai"})
        return tools, asked, document


def test_the_mcp_client_over_http_with_a_key(api: Api):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {ASK_KEY}"}, timeout=120)
    tools, asked, document = asyncio.run(_mcp_session(Client(streamable_http_client(f"{api.base}/mcp",
                                                                                   http_client=http))))
    assert tools == ["ask_policy", "get_document", "search_clauses"]
    assert not asked.is_error and asked.structured_content == ask(api, QUESTION)
    assert document.structured_content["clauses"][0]["citation"].startswith("《")
    with httpx.Client() as client:  # no key: refused before the SDK sees it
        listed = client.post(f"{api.base}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
        assert listed.status_code == 401
        stream = client.get(f"{api.base}/mcp", headers={"Authorization": f"Bearer {ASK_KEY}"})
        assert stream.status_code == 405 and stream.headers["allow"] == "POST"  # stateless: nothing held open


def test_the_mcp_client_over_stdio(api: Api):
    from mcp import Client, StdioServerParameters

    server = StdioServerParameters(command=sys.executable, args=["-m", "assistant", "mcp"], cwd=str(ROOT),
                                   env={**os.environ, **api.env})

    async def search() -> Any:
        async with Client(server, read_timeout_seconds=300) as client:
            return await client.call_tool("search_clauses", {"query": "不见面审批", "k": 2})

    found = asyncio.run(search())
    assert not found.is_error and found.structured_content["clauses"][0]["clause"] == "5、（一）"


def test_the_langchain_retriever_in_an_lcel_chain(assistant: Any):
    from langchain_core.runnables import RunnableLambda

    from assistant.integrations.langchain import PolicyRetriever

    retriever = PolicyRetriever(assistant=assistant, k=3)
    chain = retriever | RunnableLambda(lambda docs: "\n".join(f"{d.metadata['citation']}：{d.page_content}"
                                                               for d in docs))
    context = chain.invoke("不见面审批是在哪条里提到的？")
    assert context.splitlines()[0].startswith("《") and "5、（一）：" in context.splitlines()[0]
    top = retriever.invoke("不见面审批")[0]
    assert top.metadata["label"] == "5、（一）" and top.metadata["status"] == "现行有效" and top.metadata["rank"] == 1
    assert PolicyRetriever(assistant=assistant, relevant_only=True).invoke("今年养老金涨多少？") == []


def test_a_configured_sites_page_may_call_the_api_with_its_key_and_no_other_site(assistant: Any):
    from fastapi.testclient import TestClient

    from assistant.server import create_app

    settings = assistant.settings.model_copy(update={"web": assistant.settings.web.model_copy(
        update={"allowed_origins": ["https://portal.example.gov.cn"]})})
    client = TestClient(create_app(settings, assistant))
    for origin, allowed in (("https://portal.example.gov.cn", True), ("https://evil.example", False)):
        preflight = client.options("/api/v1/search", headers={"Origin": origin, "Access-Control-Request-Method": "GET",
                                                              "Access-Control-Request-Headers": "authorization"})
        assert (preflight.headers.get("access-control-allow-origin") == origin) is allowed
        sent = client.post("/api/v1/ask", json={"question": QUESTION}, headers={"Origin": origin})
        assert sent.status_code == (401 if allowed else 403)  # the key is still needed; another site is refused
