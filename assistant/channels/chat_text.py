"""Answer text as the staff chat's Markdown bubbles show it: clause text stays text, with no HTML, images or links
of its own."""

from __future__ import annotations

import html
import re

# what a Markdown renderer (Gradio's: marked, GFM, KaTeX for $$…$$, mermaid for fenced code) turns into more than
# text: links and images (the ']' of '](' and of a '[name]:' definition), code and diagrams (` ~), formulas ($),
# and the starts of bare-URL and e-mail autolinks (the ':' of '://', the '.' of 'www.', '@'); each is
# backslash-escaped, which shows it as written (a citation's [1] stays as it is). A clause's own Markdown links
# are shown as text too: every published document is kept as Markdown, so the corpus cannot tell a link an editor
# wrote from a page's text that looks like one.
_ACTIVE = re.compile(r"[\\`~$@]|\](?=[(:])|(?<=[A-Za-z]):(?=//)|(?<=www)\.", re.IGNORECASE)


def as_text(text: str) -> str:
    """`text` escaped for a Markdown bubble: shown as written, nothing in it rendered as HTML, image or link."""
    escaped = html.escape(text, quote=False)  # < > & : no tag or entity of the text's own
    return _ACTIVE.sub(lambda m: "\\" + m.group(0), escaped)
