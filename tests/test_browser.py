"""The staff chat in a real browser: Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.test_web import editors_server, server  # noqa: F401 (the apps on loopback ports)
from tests.tools import require

pytestmark = pytest.mark.slow
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"
# English once left in our own strings: document states and buttons, score headers, eval keys
ENGLISH = ["active", "withdrawn", "withdraw", "restore", "remove", "dense", "fused", "relevance", "cited",
           "refusal_accuracy", "false_refusal_rate", "questions"]
PARKS = """---
title: 示例市城市公园管理办法
---
第一条　为加强城市公园管理，制定本办法。

第二条　城市公园每日六时开园，二十二时闭园。
"""


# The chat holds `replies` answers, the last one after `question`, no draft is streaming, and no output is still
# pending (Gradio shows its status tracker, "processing | …", in a component that waits for its value).
ANSWERED = """([question, replies]) => {
    const chat = document.querySelector('#chat')?.innerText ?? '';
    const at = chat.lastIndexOf(question);
    const bots = document.querySelectorAll('#chat .message-row.bot-row').length;
    return at >= 0 && chat.slice(at + question.length).trim().length > 0 && !chat.includes('▌')
        && bots >= replies
        && !document.querySelector('#sources .progress-text, #sources .eta-bar, #chat .progress-text');
}"""


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    chromium = require("chromium")  # Debian's /usr/bin/chromium
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=FLAGS)
        yield browser
        browser.close()


def test_a_staff_user_asks_and_sees_the_cited_clause_in_the_sources_panel(browser, server: str):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server, wait_until="load")
    page.locator("#question textarea").wait_for(timeout=60_000)
    page.locator("#question textarea").fill("政务热线电话太多打不通，政府会整合吗？")
    page.locator("#send").click()
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('[1]')", timeout=60_000)
    assert "[1]" in page.locator("#chat").inner_text()
    sources = page.locator("#sources")
    sources.locator("[data-clause='7、（四）']").wait_for(timeout=30_000)
    assert "7、（四）" in sources.inner_text() and "现行有效" in sources.inner_text()
    assert sources.locator("mark").count() >= 1  # the sentences the answer used are highlighted
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "chat.png"), full_page=True)
    page.close()


def test_a_three_turn_conversation_in_the_browser_keeps_the_topic_and_refuses_a_switch_out(
        browser, server: str):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server, wait_until="load")
    box = page.locator("#question textarea")
    box.wait_for(timeout=60_000)

    def say(question: str, replies: int) -> str:
        """Ask, and return the sources panel once it shows this question's answer (the panel is updated with the
        chat, but a browser may paint the chat first: the previous answer's panel must not be read)."""
        box.fill(question)
        page.locator("#send").click()
        page.wait_for_function(ANSWERED, arg=[question, replies], timeout=60_000)
        return page.locator("#sources").inner_text()

    first = say("政务热线电话太多打不通，政府会整合吗？", 1)
    assert "7、（四）" in first
    deadline = say("最晚啥时候要弄好？", 2)
    assert "7、（四）" in deadline and "按上文理解为" in deadline  # read with the turn before, and staff see how
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('年底前')", timeout=30_000)
    say("那明年房价会涨吗？", 3)
    page.wait_for_function("document.querySelector('#chat')?.innerText.includes('12345')", timeout=30_000)
    last = page.locator("#chat").inner_text().rsplit("那明年房价会涨吗？", 1)[1]
    assert "12345" in last and "[1]" not in last  # refused, nothing cited from the earlier topic
    page.close()


def _upload(page, file: Path) -> None:  # type: ignore[no-untyped-def]
    """Choose the file in the upload box and wait until the page shows it (again if the first choice was lost
    while the page was still wiring up its upload box)."""
    from playwright.sync_api import TimeoutError as PlaywrightTimeout

    for attempt in range(3):
        page.locator("#upload input[type=file]").set_input_files(str(file))
        try:
            page.locator("#upload").get_by_text(file.name).first.wait_for(timeout=40_000)
            return
        except PlaywrightTimeout:
            if attempt == 2:
                raise


def english_left(text: str) -> list[str]:
    """Our own UI strings that were once English and must not come back (Gradio's own follow the browser)."""
    return [word for word in ENGLISH if re.search(rf"\b{word}\b", text)]


def test_an_editor_logs_in_uploads_and_publishes_and_the_chat_then_answers(browser, editors_server, tmp_path):  # noqa: F811
    base, _ = editors_server
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{base}/editors/", wait_until="load")
    assert page.locator("#publish").count() == 0  # nothing of the editors' page before the login
    page.locator("input[type=password]").wait_for(timeout=30_000)
    page.locator("#username").fill("editor")
    page.locator("#password").fill("not-the-password")
    page.locator("button[type=submit]").click()
    page.get_by_text("用户名或密码不正确").wait_for(timeout=30_000)
    assert page.locator("#username").input_value() == "editor"  # a failed login keeps the name typed
    page.locator("#password").fill("s3cret-pass")
    page.locator("button[type=submit]").click()
    page.locator("#publish").wait_for(timeout=60_000)
    policy = tmp_path / "parks.md"
    policy.write_text(PARKS, encoding="utf-8")
    _upload(page, policy)
    page.locator("#preview").click()
    page.locator("#preview-clauses").get_by_text("第二条").first.wait_for(timeout=120_000)
    page.wait_for_function("document.querySelector('#field-title textarea, #field-title input')?.value"
                           " === '示例市城市公园管理办法'", timeout=30_000)  # what was read fills the form
    page.locator("#publish").click()
    page.locator("#publish-result").get_by_text("新增 1").wait_for(timeout=180_000)
    assert "《示例市城市公园管理办法》已发布" in page.locator("#publish-result").inner_text()
    assert not english_left(page.locator("body").inner_text())
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "editors.png"), full_page=True)
    page.get_by_role("tab", name="文档管理").click()
    page.locator("#doc-id input").click()
    page.get_by_role("option", name=re.compile("示例市城市公园管理办法")).click()  # chosen from the list, not typed
    page.locator("#withdraw").click()
    page.locator("#managed").get_by_text("已暂停检索，不再用于答复").wait_for(timeout=60_000)
    documents = page.locator("#documents").inner_text()
    assert "已暂停检索" in documents and "无文号" in documents and not english_left(page.locator("body").inner_text())
    page.screenshot(path=str(ARTIFACTS / "editors-documents.png"), full_page=True)
    page.locator("#restore").click()
    page.locator("#managed").get_by_text("已恢复检索").wait_for(timeout=60_000)
    page.goto(base, wait_until="load")
    page.locator("#question textarea").wait_for(timeout=60_000)
    page.locator("#question textarea").fill("城市公园几点关门？")
    page.locator("#send").click()
    page.locator("#sources [data-clause='第二条']").wait_for(timeout=60_000)
    assert "示例市城市公园管理办法" in page.locator("#sources").inner_text()
    assert "编辑发布" in page.locator(".pa-header").first.inner_text()  # the editors' page is on: linked
    context.close()


def test_the_chat_speaks_chinese_its_examples_ask_and_clear_starts_afresh(browser, server: str):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(server, wait_until="load")
    page.locator("#question textarea").wait_for(timeout=60_000)
    assert "编辑发布" not in page.locator(".pa-header").first.inner_text()  # the editors' page is off here
    page.get_by_text("政务公开考核分值是多少？").first.click()  # an example question is asked at once
    page.wait_for_function(ANSWERED, arg=["政务公开考核分值是多少？", 1], timeout=60_000)
    page.locator("#sources [data-clause]").first.wait_for(timeout=30_000)
    page.locator("#thumbs-up").click()
    page.locator("#rated").get_by_text("已记录：有帮助").wait_for(timeout=30_000)
    page.get_by_text("为什么是这些条款").click()
    page.locator("#scores table").wait_for(timeout=30_000)
    assert not english_left(page.locator("body").inner_text())
    page.screenshot(path=str(ARTIFACTS / "chat-zh.png"), full_page=True)
    page.locator("#clear").click()
    page.wait_for_function("!document.querySelector('#sources [data-clause]') && "
                           "!document.querySelector('#chat .message-row')", timeout=30_000)
    assert "已记录" not in page.locator("#rated").inner_text() and page.locator("#scores table").count() == 0
    context.close()


def test_on_a_phone_the_header_and_its_link_stay_on_one_line(browser, editors_server):  # noqa: F811
    base, _ = editors_server
    context = browser.new_context(locale="zh-CN", viewport={"width": 375, "height": 740}, is_mobile=True)
    page = context.new_page()
    page.goto(base, wait_until="load")
    page.locator(".pa-header a").first.wait_for(timeout=60_000)
    header = page.locator(".pa-header h2").first
    header.wait_for(timeout=60_000)
    line = float(page.evaluate("parseFloat(getComputedStyle(document.querySelector('.pa-header h2')).lineHeight)"))
    assert header.bounding_box()["height"] < 1.6 * line
    context.close()


def test_an_anonymous_user_sees_only_the_login_on_the_editors_page(browser, editors_server):  # noqa: F811
    base, _ = editors_server
    page = browser.new_page()
    page.goto(f"{base}/editors/", wait_until="load")
    page.locator("input[type=password]").wait_for(timeout=30_000)
    assert page.locator("#publish").count() == 0 and page.locator("#upload").count() == 0
    page.close()
