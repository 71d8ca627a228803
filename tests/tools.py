"""The optional system tools some tests use, one helper each: a test that needs a tool calls its `require()` (or
carries `@pytest.mark.needs("tool")`), which gives the tool, or skips naming it and how to install it — and fails
instead where the tool's REQUIRE flag is set (CI sets every flag, so a missing tool there is a failure)."""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

FONT = "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc"  # a CJK font, to draw a Traditional scan and for screenshots


def _on_path(command: str) -> Callable[[], str]:
    return lambda: shutil.which(command) or ""


def _chroma() -> str:
    """`chroma run` comes with the chromadb package, next to this Python; or a server CI has started."""
    if os.environ.get("POLICY_ASSISTANT_TEST_CHROMA_URL"):
        return os.environ["POLICY_ASSISTANT_TEST_CHROMA_URL"]
    beside = Path(sys.executable).parent / "chroma"
    return str(beside) if beside.exists() else shutil.which("chroma") or ""


def _font() -> str:
    return FONT if Path(FONT).exists() else ""


def _redis() -> str:
    return os.environ.get("POLICY_ASSISTANT_TEST_REDIS_URL", "") or shutil.which("redis-server") or ""


@dataclass(frozen=True)
class Tool:
    """An optional tool: how to find it, the flag that makes its absence a failure, and how to install it."""

    name: str
    find: Callable[[], str]
    flag: str
    install: str
    skips: str  # what is skipped without it, for the README and the skip reason

    def require(self) -> str:
        """The tool's path or URL; else skip (or fail, where the flag is set) naming it and how to install it."""
        found = self.find()
        if found:
            return found
        why = f"{self.name} is not installed: {self.skips} skipped (install it: {self.install})"
        if os.environ.get(self.flag):
            pytest.fail(f"{why}; {self.flag} is set, so this is a failure")
        pytest.skip(why)


TOOLS = {tool.name: tool for tool in (
    Tool("tesseract", _on_path("tesseract"), "POLICY_ASSISTANT_TEST_REQUIRE_OCR",
         "apt-get install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra", "reading scanned PDFs is"),
    Tool("redis-server", _redis, "POLICY_ASSISTANT_TEST_REQUIRE_REDIS", "apt-get install redis-server",
         "WeChat and API state shared through Redis is"),
    Tool("chromium", _on_path("chromium"), "POLICY_ASSISTANT_TEST_REQUIRE_BROWSER",
         "apt-get install chromium fonts-wqy-zenhei", "the browser tests are"),
    Tool("font", _font, "POLICY_ASSISTANT_TEST_REQUIRE_FONT", "apt-get install fonts-wqy-zenhei",
         "drawing a Traditional Chinese scan is"),
    Tool("chroma", _chroma, "POLICY_ASSISTANT_TEST_REQUIRE_CHROMA", "pip install -e '.[test]' (chromadb's `chroma`)",
         "the store tests against a Chroma server are"),
)}


def require(name: str) -> str:
    """The named tool (`tesseract`, `redis-server`, `chromium`, `font`, `chroma`), or a skip naming it."""
    return TOOLS[name].require()
