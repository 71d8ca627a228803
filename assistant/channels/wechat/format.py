"""Answers as a phone shows them in WeChat: plain text, compact citations, replies of at most N bytes."""

from __future__ import annotations

import re

from assistant.answer.display import render
from assistant.answer.records import Answer
from assistant.ingest.normalize import is_traditional

MORE = "\n（回复「继续」查看余下内容）"
_MARKDOWN = re.compile(r"\*\*|__|`|^#{1,6}\s*|^>\s?", re.MULTILINE)
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;\n])")


def phone_text(answer: Answer) -> str:
    """The answer first, then one line of compact citations: 依据：[1]《…》（文号） 7、（四）；[2]…"""
    text = answer.text
    if not answer.refused and answer.citations:
        main, _, sources = text.rpartition("\n\n")
        label = sources.split("\n", 1)[0]  # "依据：" in the user's script
        traditional = is_traditional(answer.question)  # the citations in the asker's script, as the body is
        refs = "；".join(render(f"[{c.n}]{c.reference()}", traditional) for c in answer.citations)
        text = f"{main}\n\n{label}{refs}" if main else text
    return _MARKDOWN.sub("", text).strip()


def split_reply(text: str, max_bytes: int) -> list[str]:
    """Parts of at most `max_bytes` UTF-8 bytes, cut after a sentence where possible; every part but the last
    ends with the hint to reply 「继续」 (counted in its size)."""
    if _size(text) <= max_bytes:
        return [text]
    budget = max_bytes - _size(MORE)
    parts: list[str] = []
    current = ""
    for piece in _pieces(text, budget):
        if current and _size(current + piece) > budget:
            parts.append(current)
            current = ""
        current += piece
    if current:
        parts.append(current)
    return [p.rstrip() + MORE for p in parts[:-1]] + [parts[-1].rstrip()]


def _pieces(text: str, budget: int) -> list[str]:
    """Sentences, and a sentence longer than the budget cut at character boundaries."""
    pieces: list[str] = []
    for sentence in _SENTENCE_END.split(text):
        while _size(sentence) > budget:
            cut = _prefix_within(sentence, budget)
            pieces.append(sentence[:cut])
            sentence = sentence[cut:]
        if sentence:
            pieces.append(sentence)
    return pieces


def _prefix_within(text: str, budget: int) -> int:
    """The longest prefix (in characters) of `text` that fits `budget` bytes."""
    used = 0
    for i, ch in enumerate(text):
        used += len(ch.encode("utf-8"))
        if used > budget:
            return max(1, i)
    return len(text)


def _size(text: str) -> int:
    return len(text.encode("utf-8"))
