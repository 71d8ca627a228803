"""Answer text as the staff chat's Markdown bubbles show it: clause text stays text (no HTML, images or links of its
own), except the links an editor wrote in a Markdown document."""

from __future__ import annotations

import html
import re
from typing import Any

# [text](http(s)://…): neither part holds a bracket, so each character is read by one try at most (linear)
_LINK = re.compile(r"\[([^\[\]\n]{1,200})\]\((https?://[^\s()<>\[\]\\]{1,500})\)")
# what a Markdown renderer (Gradio's: marked, GFM, KaTeX for $$…$$, mermaid for fenced code) turns into more than
# text: links and images (the ']' of '](' and of a '[name]:' definition), code and diagrams (` ~), formulas ($),
# and the starts of bare-URL and e-mail autolinks (the ':' of '://', the '.' of 'www.', '@'); each is
# backslash-escaped, which shows it as written (a citation's [1] stays as it is)
_ACTIVE = re.compile(r"[\\`~$@]|\](?=[(:])|(?<=[A-Za-z]):(?=//)|(?<=www)\.", re.IGNORECASE)
_MARKDOWN_SOURCES = (".md", ".markdown")


def as_text(text: str) -> str:
    """`text` escaped for a Markdown bubble: shown as written, nothing in it rendered as HTML, image or link."""
    escaped = html.escape(text, quote=False)  # < > & : no tag or entity of the text's own
    return _ACTIVE.sub(lambda m: "\\" + m.group(0), escaped)


def editors_links(citations: list[Any]) -> set[str]:
    """The Markdown links (`[text](http…)`) in cited clauses of Markdown documents: the links an editor wrote."""
    return {m.group(0) for c in citations
            if str(c.clause.metadata.get("source", "")).lower().endswith(_MARKDOWN_SOURCES)
            for m in _LINK.finditer(c.clause.text)}


def bubble(text: str, allowed_links: set[str] = frozenset()) -> str:  # type: ignore[assignment]
    """An answer's text for a Markdown bubble: all of it as text (`as_text`) except the links in `allowed_links`,
    which stay links."""
    if not allowed_links:
        return as_text(text)
    parts, done = [], 0
    for match in _LINK.finditer(text):
        if match.group(0) in allowed_links:
            parts += [as_text(text[done:match.start()]), f"[{as_text(match.group(1))}]({match.group(2)})"]
            done = match.end()
    return "".join([*parts, as_text(text[done:])])
