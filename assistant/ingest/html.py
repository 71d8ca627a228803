"""HTML → lines that follow the page's block structure (paragraphs, headings, list items, table rows), and the
metadata a government portal prints above a document (标题, 发文字号, 发文机关, 成文日期 …)."""

from __future__ import annotations

import re
from typing import Any

from assistant.ingest.tables import table_row

_BLOCKS = {"p", "div", "section", "article", "main", "h1", "h2", "h3", "h4", "h5", "h6", "li", "ul", "ol", "dl",
           "dt", "dd", "table", "thead", "tbody", "tfoot", "tr", "blockquote", "pre", "center", "form", "header",
           "footer", "aside", "figure", "figcaption", "caption", "address", "hr"}
_DROP = ("script", "style", "nav", "header", "footer", "noscript", "iframe", "form", "select", "button", "template",
         "svg")
_SPACES = re.compile(r"[ \t\r\n\xa0]+")
# a line break in the source between two Chinese characters is layout, not a space (<span>（</span>\n<span>二)
_CJK_BREAK = re.compile(r"(?<=[^\x00-\x7f])[ \t]*[\r\n]+\s*(?=[^\x00-\x7f])")


def html_lines(html: str) -> tuple[list[str], str]:
    """(lines of text, the page's <h1> or <title>). Inline elements join into their block's line; a table row is
    one line (as `tables.table_row` writes it); <br> breaks a line."""
    from bs4 import BeautifulSoup, Comment

    soup = BeautifulSoup(html, "html.parser")
    for tag in soup(_DROP):
        tag.decompose()
    for comment in soup.find_all(string=lambda s: isinstance(s, Comment)):
        comment.extract()
    heading = soup.find("h1")
    title = _clean(heading.get_text(" ")) if heading else ""
    if not title and soup.title:
        title = _clean(soup.title.get_text(" "))
    if soup.title:
        soup.title.decompose()
    lines: list[str] = []
    current: list[str] = []
    _walk(soup, lines, current)  # not only <body>: a malformed page may leave its content after it
    _flush(lines, current)
    return without_second_copy(lines), title


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


def _walk(node: Any, lines: list[str], current: list[str]) -> None:
    from bs4 import NavigableString, Tag

    for child in node.children:
        if isinstance(child, NavigableString):
            current.append(str(child))
        elif isinstance(child, Tag):
            name = child.name.lower()
            if name == "br":
                _flush(lines, current)
            elif name == "tr" and not _layout_row(child):
                _flush(lines, current)
                row = table_row([_clean(cell.get_text(" ")) for cell in child.find_all(["td", "th"], recursive=False)])
                if row:
                    lines.append(row)
            elif name in ("tr", "td", "th"):  # a layout table (a page laid out in table cells): its cells are blocks
                _flush(lines, current)
                _walk(child, lines, current)
                _flush(lines, current)
            elif name in _BLOCKS:
                _flush(lines, current)
                _walk(child, lines, current)
                _flush(lines, current)
            else:
                _walk(child, lines, current)


def _layout_row(row: Any) -> bool:
    """A row of a table used for page layout: a cell holds a table of its own, or a whole text (a data cell
    holds a value or a sentence or two, even when Word wrapped it in <p>)."""
    return bool(row.find("table")) or any(len(cell.get_text(strip=True)) > 300
                                          for cell in row.find_all(["td", "th"], recursive=False))


def _flush(lines: list[str], current: list[str]) -> None:
    text = _clean("".join(current))
    if text:
        lines.append(text)
    current.clear()


def _clean(text: str) -> str:
    return _SPACES.sub(" ", _CJK_BREAK.sub("", text)).strip()
