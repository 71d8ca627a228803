"""Logins, exports, rendering and retention against hostile clients and hostile documents, over HTTP against a
real `policy-assistant serve` where the attack comes over HTTP: each test failed before its fix."""

from __future__ import annotations

import csv
import io
import json
import re
import shutil
import sqlite3
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import CORPUS
from tests.serve import own_corpus, serving
from tests.wechat_platform import Platform, text_xml

pytestmark = pytest.mark.slow
PASSWORD = "s3cret-pass"
TOKEN = "wechat-token"
HOSTILE = Path(__file__).parent / "data" / "hostile"
PROXY = "127.0.0.2"  # the one trusted proxy of the test server
MARKDOWN_LINK = "[市政府门户网站](https://www.example.gov.cn/parking)"  # in a Markdown document's clause


@dataclass
class Site:
    base: str
    root: Path


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory, embedder: Any) -> Iterator[Site]:
    """`serve` over the demo corpus and the hostile documents (tests/data/hostile), with an editor account, a
    WeChat token (plaintext mode) and one trusted proxy."""
    root = tmp_path_factory.mktemp("access")
    source = root / "source"
    shutil.copytree(CORPUS, source)
    for path in HOSTILE.iterdir():
        shutil.copy(path, source / path.name)
    _, env = own_corpus(root, embedder, source)
    env = {**env, "POLICY_ASSISTANT_WEB__EDITOR_USERNAME": "editor", "POLICY_ASSISTANT_WEB__EDITOR_PASSWORD": PASSWORD,
           "POLICY_ASSISTANT_WECHAT__TOKEN": TOKEN, "POLICY_ASSISTANT_WEB__TRUSTED_PROXIES": json.dumps([PROXY]),
           "GRADIO_TEMP_DIR": str(root / "gradio")}
    (root / "work").mkdir()
    with serving(env, cwd=root / "work") as (base, _):
        yield Site(base, root)


def client(address: str = "127.0.0.1") -> httpx.Client:
    """A client whose connections come from `address` (another loopback address is another client)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=120)


def call(http: httpx.Client, base: str, endpoint: str, data: list[Any]) -> tuple[str, Any]:
    """A Gradio endpoint called as its JavaScript client does: ('complete' | 'error' | 'http N', data)."""
    started = http.post(f"{base}/gradio_api/call/{endpoint}", json={"data": data})
    if started.status_code != 200:
        return f"http {started.status_code}", started.text
    stream = http.get(f"{base}/gradio_api/call/{endpoint}/{started.json()['event_id']}").text
    for event in ("complete", "error"):
        if f"event: {event}" in stream:
            return event, json.loads(stream.split(f"event: {event}", 1)[1].split("data:", 1)[1].strip().splitlines()[0])
    raise AssertionError(stream)


def in_session(http: httpx.Client, base: str, api_name: str, data: list[Any], session: str) -> tuple[str, Any]:
    """One event of a browser session (the session's state kept between its events), as the page sends it."""
    config = http.get(f"{base}/config").json()
    fn_index = next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)
    joined = http.post(f"{base}/gradio_api/queue/join", json={"data": data, "fn_index": fn_index,
                                                              "session_hash": session, "event_data": None})
    assert joined.status_code == 200, joined.text
    with http.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed" and message.get("event_id") == joined.json()["event_id"]:
                return ("complete" if message["success"] else "error"), message["output"].get("data")
    raise AssertionError("no result")


def login(site: Site, password: str, address: str = "127.0.0.1", username: str = "editor",
          forwarded_for: str = "") -> int:
    headers = {"X-Forwarded-For": forwarded_for} if forwarded_for else {}
    with client(address) as http:
        return http.post(f"{site.base}/editors/login", data={"username": username, "password": password},
                         headers=headers).status_code


def bubble(chat: list[dict[str, Any]]) -> str:
    content = chat[-1]["content"]
    return "".join(p["text"] for p in content) if isinstance(content, list) else str(content)


# 26.7 ---------------------------------------------------------------------------------------------------------------
def test_formulas_in_anonymous_questions_and_comments_are_neutralised_in_the_feedback_csv(site: Site):
    http, session = client(), uuid.uuid4().hex[:11]
    event, _ = in_session(http, site.base, "ask", ['=HYPERLINK("http://127.0.0.1:9/x","政务公开考核分值是多少")',
                                                   [], None], session)
    assert event == "complete"
    comments = ["=1+1", "+SUM(1,1)", "-2+3", "@SUM(1,1)", "没帮助，=不算公式"]
    for comment in comments:
        assert in_session(http, site.base, "rate_down", [comment, None], session)[0] == "complete"
    editor = client()
    assert editor.post(f"{site.base}/editors/login", data={"username": "editor", "password": PASSWORD}
                       ).status_code == 200
    event, data = call(editor, f"{site.base}/editors", "export_feedback", [])
    assert event == "complete"
    exported = editor.get(data[0]["url"]).content.decode("utf-8-sig")
    rows = [r for r in csv.DictReader(io.StringIO(exported)) if "HYPERLINK" in r["question"]]
    assert [r["comment"] for r in rows] == ["'=1+1", "'+SUM(1,1)", "'-2+3", "'@SUM(1,1)", "没帮助，=不算公式"]
    assert {r["question"] for r in rows} == {"'=HYPERLINK(\"http://127.0.0.1:9/x\",\"政务公开考核分值是多少\")"}


def test_tab_and_carriage_return_starts_are_neutralised_too(tmp_path: Path):
    from assistant.feedback import FeedbackStore

    store = FeedbackStore(tmp_path / "feedback.sqlite3")
    for comment in ("x", "y"):
        store.add("down", comment, {"question": "\t=1+1" if comment == "x" else "\r=1+1", "answer": "-1"})
    rows = list(csv.DictReader(io.StringIO(store.to_csv().lstrip("\ufeff"))))
    assert [(r["question"], r["answer"]) for r in rows] == [("'\t=1+1", "'-1"), ("'\r=1+1", "'-1")]


# 26.8 ---------------------------------------------------------------------------------------------------------------
def test_wrong_passwords_from_other_clients_do_not_lock_the_editor_out(site: Site):
    attackers = ["127.0.0.3", "127.0.0.4", "127.0.0.5", "127.0.0.6"]
    statuses: dict[str, list[int]] = {}

    def guess(address: str) -> None:  # five wrong passwords each: the per-client limit
        statuses[address] = [login(site, f"wrong{i}", address) for i in range(5)]

    threads = [threading.Thread(target=guess, args=(a,)) for a in attackers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert all(s == [400] * 5 for s in statuses.values())  # 20 failures for the account
    assert login(site, PASSWORD, "127.0.0.7") == 200  # the editor, from a client that has not failed
    assert login(site, PASSWORD, "127.0.0.3") == 429  # a client that failed its five is still refused
    assert login(site, "wrong", "127.0.0.8") == 400  # a new client's wrong password is checked and counted…
    assert login(site, PASSWORD, "127.0.0.8") == 429  # …and then the account's limit holds for it


# 26.9 ---------------------------------------------------------------------------------------------------------------
def test_x_forwarded_for_names_the_client_only_from_a_configured_proxy(site: Site):
    spoofed = [login(site, "x", "127.0.0.1", "nobody", f"198.51.100.{i}") for i in range(1, 7)]
    assert spoofed[:5] == [400] * 5 and spoofed[5] == 429  # one client, whatever it claims to forward for
    forwarded = [login(site, "x", PROXY, "somebody", f"203.0.113.{i}") for i in range(1, 7)]
    assert forwarded == [400] * 6  # the proxy's clients are counted one by one
    one = [login(site, "x", PROXY, "anybody", "203.0.113.77") for _ in range(6)]
    assert one[:5] == [400] * 5 and one[5] == 429


def test_trusted_proxies_must_be_addresses_or_networks():
    from assistant.channels.guard import forwarding
    from assistant.errors import AssistantError

    assert forwarding([]) == {"proxy_headers": False}
    assert forwarding(["127.0.0.1", "10.0.0.0/8"]) == {"proxy_headers": True,
                                                        "forwarded_allow_ips": ["127.0.0.1", "10.0.0.0/8"]}
    with pytest.raises(AssistantError, match="TRUSTED_PROXIES.*proxy.example"):
        forwarding(["proxy.example"])


# 26.10 --------------------------------------------------------------------------------------------------------------
MARKUP_QUESTIONS = ["停车收费标准由谁制定？", "停车收费标准在什么网站公布？", "共享单车押金退还进度怎么查询？",
                    "共享单车押金退还的图片说明"]


def test_answer_bubbles_carry_a_clauses_markup_as_text(site: Site):
    """Links too: every published document is kept as Markdown, so a page's text that looks like a Markdown link
    cannot be told from one an editor wrote."""
    bubbles = [bubble(call(client(), site.base, "ask", [q, []])[1][0]) for q in MARKUP_QUESTIONS]
    assert any("pixel.gif" in b for b in bubbles) and any("phish.example" in b for b in bubbles)
    sent = "".join(bubbles)
    # Markdown that would render: a tag, a link or image target, a bare URL ('\' before a character shows it as is)
    assert not re.findall(r"<img|<a |(?<!\\)\]\(|(?<!\\)://|www(?!\\)\.", sent), sent
    assert "[市政府门户网站\\](https\\://www\\.example.gov.cn/parking)" in sent  # a Markdown link, shown as written


def test_answer_bubbles_render_no_image_and_no_foreign_link_in_a_browser(site: Site):
    from tests.test_browser import FLAGS
    from tests.tools import require

    chromium = require("chromium")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        hrefs: list[str | None] = []
        fetched: list[str] = []
        shown, images = "", 0
        try:
            for question in MARKUP_QUESTIONS:  # each in a chat of its own (not read as a follow-up)
                page = browser.new_page(viewport={"width": 1400, "height": 1000})
                page.on("request", lambda request: fetched.append(request.url))
                page.goto(site.base, wait_until="load")
                box = page.locator("#question textarea")
                box.wait_for(timeout=60_000)
                box.fill(question)
                page.locator("#send").click()
                page.wait_for_function("document.querySelector('#chat .bot-row')?.innerText.includes('依据')",
                                       timeout=60_000)
                answer = page.locator("#chat .bot-row")
                hrefs += [a.get_attribute("href") for a in answer.locator("a[href]").all()]
                images += answer.locator("img").count()
                shown += answer.inner_text()
                page.close()
        finally:
            browser.close()
    assert images == 0
    assert [h for h in hrefs if h and h.startswith("http")] == []
    assert '<img src="http://127.0.0.1:9/pixel.gif">' in shown and "http://phish.example/bare" in shown
    assert MARKDOWN_LINK in shown
    assert not [url for url in fetched if "127.0.0.1:9" in url or "phish" in url]


# 26.11 --------------------------------------------------------------------------------------------------------------
def test_a_clause_holding_a_cdata_end_gives_a_well_formed_wechat_reply(site: Site):
    platform = Platform(f"{site.base}/wechat", token=TOKEN)
    delivery = platform.deliver(text_xml(f"o{uuid.uuid4().hex[:12]}", "停车收费退费多久办结？",
                                         int(time.time() * 1000)))
    assert delivery.outcomes == ["replied"]
    assert "退费说明见]]>末尾的附表" in (delivery.reply or "")


# 26.12 --------------------------------------------------------------------------------------------------------------
def test_sqlite_history_past_its_ttl_is_pruned_for_every_user(tmp_path: Path):
    from assistant.channels.wechat.state import SQLiteState

    state = SQLiteState(tmp_path / "wechat.sqlite3")
    state.remember("gone", "一个再也不回来的用户的问题", keep=3, ttl_s=60)
    with sqlite3.connect(tmp_path / "wechat.sqlite3") as db:
        db.execute("UPDATE history SET at = at - 120")  # two minutes ago: past the TTL
    state.remember("other", "另一个用户的问题", keep=3, ttl_s=60)
    with sqlite3.connect(tmp_path / "wechat.sqlite3") as db:
        assert [r[0] for r in db.execute("SELECT openid FROM history")] == ["other"]


@pytest.mark.needs("redis-server")
def test_redis_history_expires_and_drops_turns_past_their_ttl(redis_url: str):
    from assistant.channels.wechat.redis_state import RedisState

    state = RedisState(redis_url, prefix=f"t{uuid.uuid4().hex[:8]}:")
    name = f"{state.p}history:u1"
    state.redis.rpush(name, f"{time.time() - 120:.3f} 两分钟前的问题", "升级前保存的问题")
    state.remember("u1", "现在的问题", keep=3, ttl_s=60)
    assert state.redis.lrange(name, 0, -1)[-1].endswith(" 现在的问题") and state.redis.llen(name) == 1
    assert 0 < state.redis.ttl(name) <= 60
    assert state.history("u1", 60) == ["现在的问题"]
    state.remember("u2", "很快过期的问题", keep=3, ttl_s=1)
    time.sleep(2.1)
    assert not state.redis.exists(f"{state.p}history:u2") and state.history("u2", 1) == []


# 26.13 --------------------------------------------------------------------------------------------------------------
def test_a_new_key_with_a_revoked_keys_name_does_not_continue_its_conversations(site: Site):
    from assistant.channels.keys import KeyStore

    keys = KeyStore(site.root / "state")

    def ask(key: str, question: str) -> dict[str, Any]:
        response = httpx.post(f"{site.base}/api/v1/ask", headers={"Authorization": f"Bearer {key}"}, timeout=120,
                              json={"question": question, "conversation_id": "shared-name"})
        assert response.status_code == 200, response.text
        return dict(response.json())

    first, _ = keys.create("portal", "ask")
    ask(first, "政务公开考核分值是多少？")
    assert ask(first, "那市里呢？").get("standalone_question")  # the key itself continues its conversation
    assert keys.revoke("portal")
    second, _ = keys.create("portal", "ask")
    assert "standalone_question" not in ask(second, "那市里呢？")
