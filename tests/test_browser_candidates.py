"""The staff chat's candidates in a real browser (Debian's headless Chromium, zh-CN): an answer that offers
candidates shows them as buttons and in the sources panel, marked as candidates; a button answers from its clause."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.serve import serving_app
from tests.test_browser import ANSWERED, ARTIFACTS, browser  # noqa: F401 (Chromium through Playwright)
from tests.test_outcome import heating  # noqa: F401 (the demo corpus and the heating notice, indexed)

pytestmark = pytest.mark.slow
VAGUE = "农村清洁取暖补贴每户一个采暖季最多补多少钱？"


@pytest.fixture(scope="module")
def heating_server(heating) -> Iterator[str]:  # type: ignore[no-untyped-def]  # noqa: F811
    from assistant.server import create_app

    with serving_app(create_app(heating.settings, heating)) as base:
        yield base


def test_candidate_buttons_answer_from_the_clause_chosen(browser, heating_server: str):  # noqa: F811
    context = browser.new_context(locale="zh-CN", viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(heating_server, wait_until="load")
    box = page.locator("#question textarea")
    box.wait_for(timeout=60_000)
    box.fill(VAGUE)
    page.locator("#send").click()
    page.wait_for_function(ANSWERED, arg=[VAGUE, 1], timeout=60_000)
    second = page.locator("#pick-2")
    second.wait_for(state="visible", timeout=30_000)
    assert "二、（" in second.inner_text() and page.locator("#pick-1").is_visible()
    sources = page.locator("#sources")
    sources.get_by_text("（候选）").first.wait_for(timeout=30_000)
    assert "没有条款明确回答" in sources.inner_text()
    label = second.inner_text().rsplit(" ", 1)[1]  # 「查看 2. 《…》（文号） 二、（二）」
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "candidates.png"), full_page=True)
    second.click()
    page.wait_for_function(ANSWERED, arg=["2", 2], timeout=60_000)
    page.locator(f"#sources [data-clause='{label}']").wait_for(timeout=30_000)
    answer = page.locator("#chat .message-row.bot-row").last.inner_text()
    assert ("900元" in answer) != ("1000元" in answer)  # that clause's figure only
    page.locator("#pick-2").wait_for(state="hidden", timeout=30_000)  # a sure answer offers nothing to pick
    context.close()
