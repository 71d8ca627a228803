"""A clause's sentences as an answer may quote them: whole sentences (a list stays in the sentence that leads
into it), without the clause's own number, and with its heading told apart from its content."""

from __future__ import annotations

import re
from dataclasses import dataclass

from assistant.ingest.clauses import cut_run
from assistant.ingest.tables import is_table_row

_PIECE = re.compile(r"[^。！？!?]+[。！？!?]*")
_LEADING_MARKER = re.compile(
    r"^\s*(?:[（(][一二三四五六七八九十\d]{1,3}[)）]|[一二三四五六七八九十]{1,3}、|\d{1,2}[、.．](?!\d)"
    r"|第[〇零一二三四五六七八九十百千两\d]+(?:-\d+)?\s*[条條](?:之[一二三四五六七八九十\d]+)?\s*|[答]\s*[:：])\s*"
)
_OUTLINE = re.compile(r"^\s*(?:[（(][一二三四五六七八九十\d]{1,3}[)）]|[一二三四五六七八九十]{1,3}、"
                      r"|\d{1,2}[、.．](?!\d))")
_QUESTION_LINE = re.compile(r"^\s*[问問]\s*[\d一二三四五六七八九十]*\s*[:：]")
_CONTINUES = "：:；;，,、"  # a line ending so goes on in the next one (a lead-in and its list items)
HEADING_CHARS = 40
# A run this long with no sentence end is quoted in pieces: an answer quotes a sentence whole, and a clause
# indexed before clauses were bounded may hold a run of tens of thousands of characters.
MAX_SENTENCE_CHARS = 500


@dataclass
class Sentence:
    text: str  # as the source wrote it, without the clause's leading number
    heading: bool = False  # the item's own title (推进政府网站集约化建设。): context, not an answer
    row: bool = False  # a table row


def sentence_units(text: str) -> list[Sentence]:
    """The clause's sentences in order. A sentence runs to 。！？ across lines that end in ：；，、, so a list
    item is never cut out of the sentence it belongs to; a table row is one unit; an interpretation's question
    line is left out."""
    units: list[Sentence] = []
    pending = ""
    outline = bool(_OUTLINE.match(text))

    def flush() -> None:
        nonlocal pending
        if pending.strip(" ，,、"):
            units.append(Sentence(pending.strip()))
        pending = ""

    for line in (line.strip() for line in text.split("\n")):
        if not line:
            continue
        if _QUESTION_LINE.match(line) or is_table_row(line):
            flush()
            if not _QUESTION_LINE.match(line):
                units.append(Sentence(line, row=True))
            continue
        if not pending:
            line = strip_marker(line)
        for found in _PIECE.findall(line):
            for piece in cut_run(found, MAX_SENTENCE_CHARS):
                pending += piece
                if piece[-1] in "。！？!?" or len(pending) >= MAX_SENTENCE_CHARS:
                    flush()
        if pending and pending[-1] not in _CONTINUES:
            flush()  # a line without closing punctuation stands alone
    flush()
    if outline and units and _is_heading(units[0].text):
        units[0].heading = True
    return units


def strip_marker(line: str) -> str:
    """The line without its leading number (（一）, 1., 第五条, 答：)."""
    return _LEADING_MARKER.sub("", line, count=1)


def split_sentences(text: str) -> list[str]:
    """The texts of `sentence_units`."""
    return [unit.text for unit in sentence_units(text)]


def _is_heading(sentence: str) -> bool:
    """An outline item's first sentence is its title when it is short and has no clause of its own."""
    return len(sentence) <= HEADING_CHARS and not re.search(r"[，,；;：:]", sentence)


def heading_of(units: list[Sentence]) -> str:
    """The clause's heading without its closing punctuation; '' when it has none."""
    return units[0].text.rstrip("。！？!?") if units and units[0].heading else ""
