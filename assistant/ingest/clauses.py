"""Split a policy document into clauses along its own numbering (pure functions, no I/O)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.ingest.layout import tidy_title
from assistant.ingest.records import Clause, PolicyDocument
from assistant.ingest.tables import is_table_row

CHUNKING_VERSION = "1"
PREAMBLE = "前言"

_CN = "〇零一二三四五六七八九十百千两"
# (kind, pattern) in priority order; each pattern captures the marker (group "m") at the start of a line.
# Spaces inside a marker (第 1 條, 第 一 章 總則) and hyphenated articles (第 8-1 條), as Taiwan and Hong Kong
# print them.
_MARKERS: list[tuple[str, re.Pattern[str]]] = [
    ("bian", re.compile(rf"^(?P<m>第\s*[{_CN}\d]+\s*[编編])(?:\s+|$|(?=[\u4e00-\u9fff]))")),
    ("zhang", re.compile(rf"^(?P<m>第\s*[{_CN}\d]+\s*章)(?:\s+|$|(?=[\u4e00-\u9fff]))")),
    ("jie", re.compile(rf"^(?P<m>第\s*[{_CN}\d]+\s*[节節])(?:\s+|$|(?=[\u4e00-\u9fff]))")),
    ("tiao", re.compile(rf"^(?P<m>第\s*[{_CN}\d]+(?:-\d+)?\s*[条條](?:之[{_CN}\d]+)?)"
                        r"(?![的所中至、]|第[（(]|规定|規定)")),
    # an attachment starts with 附件 / 附件2 (/ 附件：) standing alone, or before its title; a line "附件：<title>"
    # lists the attachments in the body (GB/T 9704's 附件说明)
    ("fujian", re.compile(r"^(?P<m>附\s*件\s*[\d一二三四五六七八九十]*|附(?=\s*[:：]\s*$))"
                          r"(?:\s*[:：.．]?\s*$|\s+(?![:：]))")),
    ("qa", re.compile(r"^(?P<m>[问問])\s*[\d一二三四五六七八九十]*\s*[:：]")),
    ("cn_dun", re.compile(r"^(?P<m>[一二三四五六七八九十]{1,3}[、.．])")),
    ("num_dun", re.compile(r"^(?P<m>\d{1,2}[、])")),
    ("paren_cn", re.compile(r"^(?P<m>[（(][一二三四五六七八九十]{1,3}[)）])")),
    ("paren_num", re.compile(r"^(?P<m>[（(]\d{1,2}[)）])")),
    ("num_dot", re.compile(r"^(?P<m>\d{1,2}[.．])(?!\d)")),
    ("circled", re.compile(r"^(?P<m>[①②③④⑤⑥⑦⑧⑨⑩])")),
]
# The decimal outline of 预案 and 方案: 1 总则 / 1.1 编制目的 / 1.2.1 …; used only in a document that has it.
_DECIMAL = re.compile(r"^(?P<m>\d{1,2}(?:[.．]\d{1,2}){0,3})"
                      r"(?:[.．](?=[\u4e00-\u9fff])|[.．]?[\s　]+(?=[^\s\d.．、|]))")
# Text extracted from a PDF may run a heading into the next one: "1．总  则 1.1  编制目的".
_RUN_ON = re.compile(r"(?<=\S)[ 　]+(?=\d{1,2}(?:[.．]\d{1,2}){0,3}(?:[.．](?=[\u4e00-\u9fff])|[ 　]{2,})\S)")
# A Markdown heading that is a bare Chinese numeral (## 三, ## 三 总体要求) numbers its section like 三、.
_BARE_NUMERAL = re.compile(r"^(?P<m>[一二三四五六七八九十]{1,3})(?:\s+|$)")
_DOTTED = re.compile(r"^\d{1,2}[.．]\d{1,2}[\s　]+\S")
_ANSWER = re.compile(r"^[答]\s*[:：]")
# "附件：1. …" lists the attachments in the body; the short numbered lines after it continue the list
# notes numbered after 注： (注：1、… / 2、… / 3、…): the first note is numbered like the others
_NOTE_START = re.compile(r"^注\s*[:：]\s*(?=\d{1,2}[、.．])")
_ATTACHMENT_LIST = re.compile(r"^附\s*件\s*[:：]\s*\S")
_LIST_ITEM = re.compile(r"^\d{1,2}\s*[.．、]\s*[^。；]{2,40}$")
_MD_HEADING = re.compile(r"^(#{1,6})\s+(.*)$")
_ARTICLE_LEVELS = ("bian", "zhang", "jie")
_ITEM_KINDS = ("cn_dun", "num_dun", "paren_cn", "paren_num", "num_dot", "circled")
_SENTENCE_END = re.compile(r"(?<=[。！？；!?;])")


@dataclass
class _Node:
    kind: str
    marker: str
    line: str
    level: int
    body: list[str] = field(default_factory=list)
    children: int = 0


def canonical_marker(kind: str, marker: str) -> str:
    """The marker as a person cites it: (四) → （四）, 附 件1 → 附件1."""
    marker = re.sub(r"\s+", "", marker)
    if kind in ("paren_cn", "paren_num"):
        return "（" + marker[1:-1] + "）"
    if kind == "cn_dun":
        return marker[:-1] + "、"
    if kind == "num_dot":
        return marker[:-1] + "."
    if kind in ("jie", "tiao"):
        return marker.replace("節", "节").replace("條", "条")
    if kind == "fujian" and marker == "附":
        return "附件"  # 附： heads an attachment as 附件 does
    return marker


def classify_line(line: str, decimal: bool = False) -> tuple[str, str] | None:
    """(kind, marker) if the line starts a numbered unit of policy structure; with `decimal`, decimal outline
    numbers (1, 1.1, 1.2.1) are units too, of kinds dec1, dec2 …"""
    if decimal and (match := _DECIMAL.match(line)):
        marker = match.group("m").replace("．", ".")
        return f"dec{marker.count('.') + 1}", marker
    for kind, pattern in _MARKERS:
        match = pattern.match(line)
        if match:
            return kind, match.group("m")
    return None


def _split_run_on(line: str) -> list[str]:
    """A line holding several decimal headings is split before each one that follows a short heading."""
    parts: list[str] = []
    rest = line
    while (match := _RUN_ON.search(rest)) and len(rest[:match.start()]) <= 20 and _DECIMAL.match(rest):
        parts.append(rest[:match.start()].strip())
        rest = rest[match.end():]
    return [*parts, rest]


def uses_decimal_outline(lines: list[str]) -> bool:
    """A document numbered 1 / 1.1 / 1.2.1 has several dotted headings."""
    return sum(1 for line in lines if _DOTTED.match(line)) >= 2


def parse_clauses(doc: PolicyDocument, max_chars: int = 400) -> list[Clause]:
    """Split `doc` into clauses: one per numbered leaf unit, plus the preamble; long ones into paragraphs."""
    lines = [line.strip() for line in doc.text.split("\n")]
    lines = _drop_title_line(lines, doc)
    decimal = uses_decimal_outline(lines)
    if decimal:
        lines = [part for line in lines for part in _split_run_on(line)]
    stack: list[_Node] = []
    units: list[tuple[list[_Node], _Node]] = []
    preamble = _Node("preamble", PREAMBLE, "", 0)
    current: _Node = preamble
    units.append(([], preamble))
    listing = False
    for line in lines:
        if not line:
            if current.body and current.body[-1] != "":
                current.body.append("")
            continue
        heading = _MD_HEADING.match(line)
        if heading:
            hashes, text = heading.groups()
            found = classify_line(text, decimal)
            if not found and (bare := _BARE_NUMERAL.match(text)):
                found = ("cn_dun", bare.group("m") + "、")
            kind, marker = found if found else (f"h{len(hashes)}", "")
            line = text
        elif _ANSWER.match(line) and current.kind == "qa":
            current.body.append(line)
            continue
        elif is_table_row(line):
            current.body.append(line)  # a table's rows carry numbers of their own (一、医疗质量): content
            continue
        else:
            found = classify_line(_NOTE_START.sub("", line), decimal)
            if listing and _LIST_ITEM.match(line):
                found = None
            listing = bool(_ATTACHMENT_LIST.match(line)) or (listing and bool(_LIST_ITEM.match(line)))
            if not found:
                current.body.append(line)
                continue
            kind, marker = found
            if kind in _ITEM_KINDS and any(n.kind == "tiao" for n in stack):
                current.body.append(line)  # items (项) of an article stay in the article
                continue
        level = _level_of(stack, kind)
        del stack[level:]
        if stack:
            stack[-1].children += 1
        node = _Node(kind, marker, line, level)
        stack.append(node)
        units.append((list(stack[:-1]), node))
        current = node
    return _to_clauses(doc, units, max_chars)


def _drop_title_line(lines: list[str], doc: PolicyDocument) -> list[str]:
    titles = {doc.title.strip(), doc.extra.get("headline", "").strip()} - {""}
    for i, line in enumerate(lines):
        if not line:
            continue
        if line.lstrip("#").strip() in titles or tidy_title(line.lstrip("#").strip()) in titles:
            return lines[:i] + lines[i + 1:]
        break
    return lines


def _level_of(stack: list[_Node], kind: str) -> int:
    """Where a new unit of `kind` goes: beside an open unit of the same kind, else below the innermost."""
    if kind == "fujian":
        return 0  # an attachment stands beside the main text, not inside its last item
    for i, node in enumerate(stack):
        if node.kind == kind:
            return i
    if kind.startswith("h"):
        depth = int(kind[1:])
        for i, node in enumerate(stack):
            if node.kind.startswith("h") and int(node.kind[1:]) >= depth:
                return i
    if kind in _ARTICLE_LEVELS:
        order = _ARTICLE_LEVELS.index(kind)
        for i, node in enumerate(stack):
            if node.kind in _ARTICLE_LEVELS and _ARTICLE_LEVELS.index(node.kind) > order:
                return i
            if node.kind == "tiao":
                return i
    if kind == "tiao":
        for i, node in enumerate(stack):
            if node.kind not in _ARTICLE_LEVELS and not node.kind.startswith("h"):
                return i
    return len(stack)


def _label(ancestors: list[_Node], node: _Node) -> tuple[str, tuple[str, ...]]:
    chain = [n for n in ancestors + [node] if n.marker]
    markers = [canonical_marker(n.kind, n.marker) for n in chain]
    kinds = [n.kind for n in chain]
    if "tiao" in kinds:
        start = kinds.index("tiao")
    else:
        start = next((i for i, k in enumerate(kinds) if k not in _ARTICLE_LEVELS), 0)
    if node.kind == "qa":
        return "", tuple(markers)
    # a decimal number already names its parents (1.2.1 is in 1.2): only the deepest one is cited
    cited = [m for i, m in enumerate(markers[start:], start)
             if not (kinds[i].startswith("dec") and i + 1 < len(kinds) and kinds[i + 1].startswith("dec"))]
    return "".join(cited) or PREAMBLE, tuple(markers)


def _to_clauses(doc: PolicyDocument, units: list[tuple[list[_Node], _Node]], max_chars: int) -> list[Clause]:
    meta = doc.metadata()
    clauses: list[Clause] = []
    seen: dict[str, int] = {}
    qa_number = 0
    for ancestors, node in units:
        body = "\n".join(node.body).strip()
        text = "\n".join(part for part in (node.line, body) if part).strip()
        if not text:
            continue
        if node.children and not body and len(node.line) <= 60:
            continue  # a heading whose content is in its children
        label, markers = _label(ancestors, node)
        if node.kind == "qa":
            qa_number += 1
            label = f"问答{qa_number}"
            markers = markers[:-1] + (label,)
        key = "/".join(markers) or PREAMBLE
        if key in seen:
            seen[key] += 1
            key = f"{key}~{seen[key]}"
        else:
            seen[key] = 1
        path = tuple(a.line for a in ancestors) + ((label,) if node.kind == "qa" else (node.marker or label,))
        heading = " / ".join(a.line for a in ancestors)
        if node.kind == "qa" or (node.children and node.line):
            heading = " / ".join(x for x in (heading, node.line) if x)
        pieces = split_long(text, max_chars)
        for i, piece in enumerate(pieces, 1):
            suffix = f"第{i}段" if len(pieces) > 1 else ""
            clauses.append(Clause(
                clause_id=f"{doc.doc_id}#{key}" + (f"#p{i}" if suffix else ""),
                doc_id=doc.doc_id,
                path=path,
                label=label + suffix,
                heading=heading,
                text=piece,
                order=len(clauses),
                metadata=dict(meta),
            ))
    return clauses


def split_long(text: str, max_chars: int) -> list[str]:
    """Split text over `max_chars` at paragraph, then sentence ends, and a sentence longer than that at a comma
    (`cut_run`); pieces stay in order, nothing is lost, none is longer than `max_chars`."""
    if len(text) <= max_chars:
        return [text]
    units: list[str] = []
    for paragraph in text.split("\n"):
        if not paragraph.strip():
            continue
        if len(paragraph) <= max_chars:
            units.append(paragraph)
        else:
            units.extend(part for sentence in _SENTENCE_END.split(paragraph) if sentence
                         for part in cut_run(sentence, max_chars))
    pieces: list[str] = []
    current = ""
    for unit in units:
        joiner = "\n" if current and not current.endswith(tuple("。！？；!?;")) else ""
        if current and len(current) + len(unit) > max_chars:
            pieces.append(current)
            current = unit
        else:
            current = current + (joiner if current else "") + unit if current else unit
    if current:
        pieces.append(current)
    return pieces


_SOFT_BREAKS = "，,、；;：: \u3000）)"


def cut_run(text: str, limit: int) -> list[str]:
    """`text` in pieces of at most `limit` characters, each ending at the last comma (or other soft break) of its
    second half, or at `limit` when it has none: a run with no sentence end is bounded before anything reads it
    (a run of 48,000 characters is no sentence that a person quotes). Text within the limit is one piece."""
    if len(text) <= limit:
        return [text]
    pieces: list[str] = []
    start = 0
    while len(text) - start > limit:
        window = text[start:start + limit]
        end = max(window.rfind(mark) for mark in _SOFT_BREAKS) + 1
        end = end if end > limit // 2 else limit
        pieces.append(window[:end])
        start += end
    pieces.append(text[start:])
    return pieces
