"""A table row as one line of text: its cells in order between pipes, as Markdown writes a row
(`| 序号 | 改革举措 | 指导部门 |`). Every loader writes rows this way, so the parser can tell a table's rows
(which may carry numbers of their own: 一、医疗质量, 1.门诊人次数) from the document's numbered units."""

from __future__ import annotations

import re

_ROW = re.compile(r"^\|(?P<cells>.*)\|$")
_RULE = re.compile(r"^\|(?:\s*:?-{3,}:?\s*\|)+$")  # a Markdown table's header rule: |---|:---:|


def table_row(cells: list[str]) -> str:
    """One line for a row, empty cells left out; "" for a row with no text. A cell merged over several columns
    is passed once (equal neighbours are data: | 规章 | 0 | 0 | 0 |)."""
    kept = [text for text in map(cell_text, cells) if text]
    return "| " + " | ".join(kept) + " |" if kept else ""


def cell_text(cell: str) -> str:
    """A cell's text on one line: a line wrapped inside the cell joins without a space between Chinese
    characters (以事前产权激励为 / 核心的 → 以事前产权激励为核心的), with one elsewhere."""
    parts = [part.strip() for part in cell.replace("|", "｜").splitlines() if part.strip()]
    text = ""
    for part in parts:
        joined = bool(text) and not (_wide(text[-1]) and _wide(part[0]))
        text += (" " if joined else "") + part
    return " ".join(text.split())


def row_cells(line: str) -> list[str] | None:
    """The cells of a table-row line; None for a line that is not one."""
    match = _ROW.match(line.strip())
    if not match or _RULE.match(line.strip()):
        return None
    return [cell.strip() for cell in match.group("cells").split("|")]


def is_table_row(line: str) -> bool:
    return row_cells(line) is not None or bool(_RULE.match(line.strip()))


def _wide(char: str) -> bool:
    return not char.isascii()
