"""The doors for other systems when no clause clearly answers, against a real `serve` through real clients: the
JSON API's `choice` with a conversation, the openai SDK's next user message 「2」, and MCP's structured outcome."""

from __future__ import annotations

import asyncio
import hashlib
import json
import shutil
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS
from tests.serve import own_corpus, serving
from tests.test_outcome import HEATING

pytestmark = pytest.mark.slow
KEY = "pa-test-candidates-key-0001"
VAGUE = "农村清洁取暖补贴每户一个采暖季最多补多少钱？"


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[str]:
    root = tmp_path_factory.mktemp("doors-candidates")
    source = root / "source"
    shutil.copytree(CORPUS, source)
    (source / "heating.md").write_text(HEATING, encoding="utf-8")
    _, env = own_corpus(root, embedder, source)
    env["POLICY_ASSISTANT_API__KEYS"] = json.dumps(
        [{"name": "portal", "scope": "ask", "sha256": hashlib.sha256(KEY.encode()).hexdigest()}])
    (root / "work").mkdir()
    with serving(env, cwd=root / "work", log=root / "serve.log") as (url, _):
        yield url


def _post(base: str, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{base}/api/v1/ask", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=120)


def test_the_api_offers_candidates_and_answers_the_choice_within_the_conversation(base: str):
    offered = _post(base, {"question": VAGUE, "conversation_id": "citizen-7"}).json()
    assert offered["outcome"] == "candidates" and offered["citations"] == [] and not offered["refused"]
    assert 0 <= offered["confidence"] < 1 and len(offered["candidates"]) >= 2
    second = offered["candidates"][1]
    assert second["n"] == 2 and second["reference"].startswith("《") and second["gist"] and second["clause_id"]
    picked = _post(base, {"choice": 2, "conversation_id": "citizen-7"}).json()
    assert picked["outcome"] == "answered" and picked["chosen"] == 2
    assert picked["citations"][0]["clause_id"] == second["clause_id"]
    nothing = _post(base, {"choice": 2, "conversation_id": "citizen-8"})  # this conversation was offered nothing
    assert nothing.status_code == 409 and nothing.json()["error"]["param"] == "choice"
    missing = _post(base, {"conversation_id": "citizen-7"})
    assert missing.status_code == 422 and missing.json()["error"]["param"] == "question"


def test_the_openai_client_picks_a_candidate_with_its_next_message(base: str):
    from openai import OpenAI

    client = OpenAI(base_url=f"{base}/v1", api_key=KEY)
    first = client.chat.completions.create(model="policy-assistant", messages=[{"role": "user", "content": VAGUE}])
    extra = first.model_extra
    assert extra["outcome"] == "candidates" and "回复序号" in (first.choices[0].message.content or "")
    chosen = client.chat.completions.create(model="policy-assistant", messages=[
        {"role": "user", "content": VAGUE}, {"role": "assistant", "content": first.choices[0].message.content},
        {"role": "user", "content": "2"}])
    assert chosen.model_extra["outcome"] == "answered" and chosen.model_extra["chosen"] == 2
    assert chosen.model_extra["citations"][0]["clause_id"] == extra["candidates"][1]["clause_id"]


def test_mcp_returns_the_outcome_and_candidates_as_structured_data(base: str):
    import httpx2
    from mcp import Client
    from mcp.client.streamable_http import streamable_http_client

    async def ask() -> Any:
        http = httpx2.AsyncClient(headers={"Authorization": f"Bearer {KEY}"}, timeout=120)
        async with Client(streamable_http_client(f"{base}/mcp", http_client=http)) as client:
            return await client.call_tool("ask_policy", {"question": VAGUE})

    result = asyncio.run(ask())
    assert not result.is_error and result.structured_content["outcome"] == "candidates"
    assert {"二、（一）", "二、（二）"} <= {c["clause"] for c in result.structured_content["candidates"]}
