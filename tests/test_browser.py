"""The staff chat in a real browser: Debian's headless Chromium driven by Playwright."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.test_web import server  # noqa: F401 (the app on a loopback port)

pytestmark = pytest.mark.slow
CHROMIUM = "/usr/bin/chromium"
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="module")
def browser():  # type: ignore[no-untyped-def]
    if not Path(CHROMIUM).exists():
        why = f"{CHROMIUM} is missing: install Debian's chromium (`apt-get install chromium`; .ci/run does)"
        if os.environ.get("POLICY_ASSISTANT_TEST_REQUIRE_BROWSER"):
            pytest.fail(why)
        pytest.skip(why)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=FLAGS)
        yield browser
        browser.close()


def test_a_staff_user_asks_and_sees_the_cited_clause_in_the_sources_panel(browser, server: str):  # noqa: F811
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    page.goto(server, wait_until="networkidle")
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
