"""HTML → lines that follow the page's block structure (paragraphs, headings, list items, table rows), and the
metadata a government portal prints above a document (标题, 发文字号, 发文机关, 成文日期 …)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.ingest.tables import table_row

_BLOCKS = {"p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl",
           "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "blockquote", "pre", "center", "form", "header",
           "footer", "aside", "figure", "figcaption", "caption", "address", "hr", "td", "th"}
_DROP = {"script", "style", "nav", "header", "footer", "noscript", "iframe", "form", "select", "button", "template",
         "svg"}
_SPACES = re.compile(r"[ \t\r\n\xa0]+")
# a line break in the source between two Chinese characters is layout, not a space (<span>（</span>\n<span>二)
# (one [\r\n], not [\r\n]+ before \s*: the two would share a run of line breaks, quadratic in its length)
_CJK_BREAK = re.compile(r"(?<=[^\x00-\x7f])[ \t]*[\r\n]\s*(?=[^\x00-\x7f])")
_LAYOUT_CELL_CHARS = 300


def html_lines(html: str) -> tuple[list[str], str]:
    """(lines of text, the page's <h1> or <title>). Inline elements join into their block's line; a table row is
    one line (as `tables.table_row` writes it); <br> breaks a line.

    The page is read as a stream of tags by libxml2's HTML parser (lxml), never built into a tree: time and
    memory grow with the page's length only, however deep its elements nest."""
    from lxml import etree

    page = _Page()
    parser = etree.HTMLParser(target=page, recover=True, no_network=True, remove_comments=True, remove_pis=True)
    parser.feed(html)
    parser.close()
    page.flush()
    title = _clean(page.h1) if page.h1 is not None else ""
    return without_second_copy(page.lines), title or _clean(page.title)


def without_second_copy(lines: list[str]) -> list[str]:
    """A page that carries its text twice (a desktop and a mobile version) keeps the first copy: a run of lines
    that all stood before, three of them long ones, goes. A sentence that recurs alone is content."""
    seen: set[str] = set()
    repeated = []
    for line in lines:
        repeated.append(line in seen)
        seen.add(line)
    kept: list[str] = []
    i = 0
    while i < len(lines):
        j = i
        while j < len(lines) and repeated[j]:
            j += 1
        if j - i and sum(len(line) >= 20 for line in lines[i:j]) >= 3:
            i = j
            continue
        kept.extend(lines[i:max(j, i + 1)])
        i = max(j, i + 1)
    return kept


@dataclass
class _Strings:
    """An element's text as `get_text(" ")` gives it: its text nodes joined by a space (a node that the parser
    hands over in several pieces is one string)."""

    parts: list[str] = field(default_factory=list)
    pieces: list[str] = field(default_factory=list)  # the node being read
    length: int = 0  # characters other than the spaces around each piece

    def add(self, text: str) -> None:
        self.pieces.append(text)
        self.length += len(text.strip())

    def close(self) -> None:
        if self.pieces:
            self.parts.append("".join(self.pieces))
            self.pieces.clear()

    def text(self) -> str:
        self.close()
        return " ".join(self.parts)


@dataclass
class _Lines:
    """Lines of text and the line being read: a block element starts and ends a line."""

    lines: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)

    def take(self, kind: str, value: str) -> None:
        if kind == "data":
            self.current.append(value)
        elif value in _BLOCKS or (kind == "start" and value == "br"):
            self.flush()

    def flush(self) -> None:
        text = _clean("".join(self.current))
        if text:
            self.lines.append(text)
        self.current.clear()


@dataclass
class _Row:
    """A <tr> read so far, both ways it may turn out: a row of data (its cells' texts) or a row that lays out a
    page (its cells are blocks: the lines they make)."""

    cells: list[str] = field(default_factory=list)
    cell: _Strings | None = None  # the cell being read
    blocks: _Lines = field(default_factory=_Lines)
    depth: int = 0  # elements open inside the row

    def end_cell(self) -> None:
        if self.cell is not None:
            self.cells.append(_clean(self.cell.text()))
            self.cell = None


class _Page:
    """The lxml parser target: lines of text, as the tags and text arrive."""

    def __init__(self) -> None:
        self.text = _Lines()
        self.dropping = 0  # elements open inside a dropped one (script, nav …)
        self.titling = 0  # elements open inside <title>
        self.title_strings = _Strings()
        self.heading = 0  # elements open inside the first <h1>
        self.h1_strings: _Strings | None = None
        self.row: _Row | None = None

    @property
    def lines(self) -> list[str]:
        return self.text.lines

    # what lxml calls ---------------------------------------------------------------------------------------------
    def start(self, tag: str, attrib: object) -> None:
        tag = tag.lower() if isinstance(tag, str) else ""
        if self.dropping or tag in _DROP:
            self.dropping += 1
            return
        if self.titling or tag == "title":
            self.titling += 1
            self.title_strings.close()
            return
        if self.heading:
            self.heading += 1
        elif tag == "h1" and self.h1_strings is None:
            self.heading, self.h1_strings = 1, _Strings()
        if self.h1_strings is not None:
            self.h1_strings.close()
        self._event("start", tag)

    def end(self, tag: str) -> None:
        tag = tag.lower() if isinstance(tag, str) else ""
        if self.dropping:
            self.dropping -= 1
            return
        if self.titling:
            self.titling -= 1
            self.title_strings.close()
            return
        if self.heading:
            self.heading -= 1
        if self.h1_strings is not None:
            self.h1_strings.close()
        self._event("end", tag)

    def data(self, text: str) -> None:
        if self.dropping:
            return
        if self.titling:
            self.title_strings.add(text)
            return
        if self.heading and self.h1_strings is not None:
            self.h1_strings.add(text)
        self._event("data", text)

    def close(self) -> None:
        return None

    @property
    def h1(self) -> str | None:
        return self.h1_strings.text() if self.h1_strings is not None else None

    @property
    def title(self) -> str:
        return self.title_strings.text()

    def flush(self) -> None:
        self.text.flush()

    # the page's structure ----------------------------------------------------------------------------------------
    def _event(self, kind: str, value: str) -> None:
        row = self.row
        if row is None:
            self.text.take(kind, value)
            if kind == "start" and value == "tr":
                self.row = _Row()  # a data row or a layout row: told when a nested table or a long cell shows
            return
        if kind == "end" and row.depth == 0:  # the row's own </tr>: a row of data
            self.row = None
            row.end_cell()
            line = table_row(row.cells)
            if line:
                self.text.lines.append(line)
            return
        row.blocks.take(kind, value)
        if row.cell is not None:
            if kind == "data":
                row.cell.add(value)
            else:
                row.cell.close()
        if kind == "start":
            if row.depth == 0 and value in ("td", "th"):
                row.end_cell()
                row.cell = _Strings()
            row.depth += 1
        elif kind == "end":
            row.depth -= 1
            if row.depth == 0:
                row.end_cell()
        if (kind == "start" and value == "table") or (row.cell is not None and row.cell.length > _LAYOUT_CELL_CHARS):
            self._as_layout(row)

    def _as_layout(self, row: _Row) -> None:
        """A row of a table used for page layout (a cell holds a table of its own, or a whole text; a data cell
        holds a value or a sentence or two): its cells are blocks, and the lines they made so far stand."""
        self.row = None
        self.text.lines.extend(row.blocks.lines)
        self.text.current = row.blocks.current


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _CJK_BREAK.sub("", text)).strip()
