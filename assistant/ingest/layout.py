"""The layout of a Chinese official document (GB/T 9704) and of a portal's document page, read from its
lines: the portal's metadata block, the 版头 (发文机关标志, 发文字号, 标题, 主送机关), page numbers, and the
sign-off (发文机关署名, 成文日期, （此件公开发布）, 抄送, 印发). What it finds becomes metadata; those lines
leave the body."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from assistant.ingest.normalize import normalize_doc_number
from assistant.ingest.tables import row_cells

# 文号: 国办发〔2018〕23号, 国令第706号, 中华人民共和国国务院令第706号, 主席令第七号, 公告2023年第5号, 2023年第5号公告
DOC_NUMBER = re.compile(
    r"(?:[\u4e00-\u9fff]{1,14}[〔\[［【(（﹝](?:19|20)\d{2}[〕\]］】)）﹝﹞]\s*第?\s*\d{1,4}\s*[号號])"
    r"|(?:(?:中华人民共和国|中華人民共和國)?[\u4e00-\u9fff]{0,12}(?:令|公告)\s*第\s*[\d〇零一二三四五六七八九十百千]{1,6}\s*[号號])"
    r"|(?:[\u4e00-\u9fff]{0,12}公告\s*(?:19|20)\d{2}\s*年\s*第\s*\d{1,4}\s*[号號])"
    r"|(?:(?:19|20)\d{2}\s*年\s*第\s*\d{1,4}\s*[号號]\s*公告)")
_PORTAL_KEYS = {
    "标题": "title", "標題": "title", "名称": "title", "名稱": "title",
    "发文字号": "doc_number", "發文字號": "doc_number", "文号": "doc_number", "文號": "doc_number",
    "发文机关": "issuer", "發文機關": "issuer", "发布机构": "issuer", "發布機構": "issuer", "制发机关": "issuer",
    "成文日期": "written", "发布日期": "published", "發布日期": "published", "公布日期": "published",
    "索引号": "index_number", "索引號": "index_number", "主题分类": "category", "主題分類": "category",
    "主题词": "keywords", "主題詞": "keywords", "有效性": "validity", "时效": "validity", "生成日期": "",
    "公文种类": "genre", "公文種類": "genre", "体裁分类": "", "组配分类": "", "信息来源": "", "来源": "",
    "浏览次数": "", "访问量": "", "作者": "", "公开方式": "", "公開方式": "",
    "修正日期": "published", "修訂日期": "published", "生效狀態": "validity", "生效状态": "validity",
    "法規類別": "category", "法规类别": "category", "廢止日期": "repealed", "施行日期": "effective",
}
_KEY = "|".join(sorted((re.escape(k) for k in _PORTAL_KEYS), key=len, reverse=True))
_KEY_SPACES = re.compile(r"^([\u4e00-\u9fff](?:[\s\u3000]*[\u4e00-\u9fff]){1,5})(?=\s*[:：])")
# a field "key：value", or a key standing alone in its table cell (the value is in the next cell)
_PORTAL_CELL = re.compile(rf"^\s*(?P<key>{_KEY})\s*(?:[:：]\s*(?P<value>.*)|$)")
# a law's 题注: 2019年10月22日中华人民共和国国务院令第722号公布 / 2020年1月1日施行
_PROMULGATION = re.compile(r"^[（(]?\s*(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日.{0,80}?"
                           r"(?:通过|通過|公布|施行|修正|修订|修訂|发布|發布)[^。]{0,40}[）)]?$")
_PAGE_NUMBER = re.compile(r"^[\s—–\-－―一_]*(?:第\s*)?\d{1,4}(?:\s*页)?"
                          r"(?:\s*[/／]\s*\d{1,4}|\s*共\s*\d{1,4}\s*页)?[\s—–\-－―一_]*$")
_DATE = re.compile(r"^\s*(?P<y>(?:19|20)\d{2}|[〇零一二三四五六七八九]{4})\s*年"
                   r"\s*(?P<m>[\d一二三四五六七八九十]{1,3})\s*月\s*(?P<d>[\d一二三四五六七八九十]{1,3})\s*日\s*$")
_PUBLICITY = re.compile(r"^[（(]\s*此件(?:公开发布|公開發布|主动公开|主動公開|不予公开|依申请公开)"
                        r"[^）)]*[）)]$")
_DISTRIBUTION = re.compile(r"^(?:抄送|抄報|抄报|印发|印發)[:：]"
                           r"|.*(?:19|20)\d{2}\s*年\s*\d{1,2}\s*月\s*\d{1,2}\s*日\s*印[发發]\s*$")
_FLAG = re.compile(r"^(?P<issuer>[\u4e00-\u9fff（）()、]{2,40}?)\s*文\s*件$")
# what a document calls itself at the end of its title (…的通知, …条例)
DOCUMENT_KINDS = ("通知", "意见", "意見", "办法", "辦法", "规定", "規定", "方案", "决定", "決定", "条例", "條例",
          "规划", "規劃", "细则", "細則", "公告", "通告", "批复", "批覆", "报告", "報告", "纲要", "綱要",
          "规则", "規則", "要点", "要點", "计划", "計畫", "計劃", "指引", "指南", "措施", "预案", "預案",
          "解读", "解讀", "问答", "問答", "法", "章程", "标准", "標準", "制度", "守则", "守則", "决议",
          "決議", "令", "函", "答记者问", "答記者問", "准则", "準則", "复函", "復函")
DOCUMENT_KIND = "|".join(sorted(DOCUMENT_KINDS, key=len, reverse=True))  # longest first, as a regex
_TITLE_END = re.compile(rf"(?:{DOCUMENT_KIND})(?:[（(][^）)]{{1,8}}[）)])?[”\"」』]?$")
_ADDRESSEES = re.compile(r"^[^。！？；]{2,200}[:：]$")
_SENTENCE_END = re.compile(r"[。！？；!?;]$")


@dataclass
class Layout:
    """What the layout says about the document, and the body lines left once it is read."""

    lines: list[str]
    title: str = ""
    doc_number: str = ""
    issuer: str = ""
    date: str = ""
    extra: dict[str, str] = field(default_factory=dict)


def tidy_title(title: str) -> str:
    """A title on one line, without the spaces a PDF or a wrapped line put between Chinese and digits, and without
    a collection's index number in front (18-湖南省防汛应急预案)."""
    title = re.sub(r"^\d{1,3}-(?=[\u4e00-\u9fff])", "", re.sub(r"\s+", " ", title).strip())
    return re.sub(r"(?<=[\u4e00-\u9fff\d）》]) (?=[\u4e00-\u9fff\d（《])", "", title)


def find_doc_number(text: str) -> str:
    """The first 文号 in the text, as it is cited (国务院令第722号 for 中华人民共和国国务院令第722号)."""
    match = DOC_NUMBER.search(normalize_doc_number(text))
    if not match:
        return ""
    return re.sub(r"^(?:中华人民共和国|中華人民共和國)(?=\S+令)", "", re.sub(r"\s+", "", match.group(0)))


def read_layout(lines: list[str], known_title: str = "") -> Layout:
    """Read the portal metadata, the 版头 and the sign-off off the document's lines."""
    layout = Layout([])
    body = _without_portal_block(lines, layout)
    # page numbers, （此件公开发布） and 抄送/印发 lines are never content, wherever they stand
    body = [line for line in body if not line.strip() or not (_PAGE_NUMBER.match(line) or
                                                             _PUBLICITY.match(line.strip()) or
                                                             _DISTRIBUTION.match(line.strip()))]
    body = _head(body, layout, known_title)
    layout.lines = _tail(body, layout)
    return layout


def _without_portal_block(lines: list[str], layout: Layout) -> list[str]:
    """The lines without the portal's metadata block, whose fields are recorded. An indented line right after a
    field is its value wrapped (生效狀態：… / 　　　　　本法…)."""
    kept: list[str] = []
    in_field = False
    for line in lines:
        if in_field and re.match(r"^[\u3000 \t]{4,}\S", line):
            continue
        in_field = _portal_fields(line, layout)
        if not in_field:
            kept.append(line)
    return kept


def _portal_fields(line: str, layout: Layout) -> bool:
    """Record the line's fields when it is a line of the portal's metadata block (a table row of key | value
    cells, or one "key：value" line); False for any other line."""
    row = row_cells(line)
    cells = row or [line.strip()]
    cells = [_KEY_SPACES.sub(lambda m: re.sub(r"[\s\u3000]+", "", m.group(1)), c) for c in cells]  # 索 引 号：
    pairs: list[tuple[str, str]] = []
    i = 0
    while i < len(cells):
        match = _PORTAL_CELL.match(cells[i])
        if not match or (match.group("value") is None and (row is None or i + 1 == len(cells))):
            return False  # a key without a colon is a field only in a table row, before its value's cell
        value = (match.group("value") or "").strip()
        if not value and i + 1 < len(cells) and not _PORTAL_CELL.match(cells[i + 1]):
            value, i = cells[i + 1], i + 1
        pairs.append((match.group("key"), value))
        i += 1
    if not pairs or (len(pairs) == 1 and len(line) > 300):
        return False  # a sentence that happens to start with 标题： is content
    for key, value in pairs:
        name = _PORTAL_KEYS[key]
        if name and value and name not in layout.extra:
            layout.extra[name] = value
    return True


def _head(lines: list[str], layout: Layout, known_title: str) -> list[str]:
    """The 版头 at the top: 发文机关标志, 发文字号, the title (over one or two lines), 主送机关."""
    extra = layout.extra
    layout.doc_number = normalize_doc_number(extra.get("doc_number", ""))
    layout.issuer = extra.get("issuer", "")
    layout.title = extra.get("title", "")
    layout.date = _iso(extra.get("written", "")) or _iso(extra.get("published", ""))
    first = [i for i, line in enumerate(lines) if line.strip()][:10]
    drop: set[int] = set()
    for i in first:
        line = lines[i].strip()
        if flag := _FLAG.match(line):
            layout.issuer = layout.issuer or flag.group("issuer")
            drop.add(i)
        elif (number := find_doc_number(line)) and (len(line) <= len(number) + 4 or (
                len(line) <= len(number) + 14 and not re.search(r"[《（(]", line))):
            layout.doc_number = layout.doc_number or number
            drop.add(i)  # the 发文字号 line (bracketed, or with the 签发人 on it in 上行文)
        elif _PROMULGATION.match(line):
            layout.extra.setdefault("promulgation", "")
            layout.extra["promulgation"] = (layout.extra["promulgation"] + " " + line).strip()
            layout.doc_number = layout.doc_number or find_doc_number(line)
            if "公布" in line or "發布" in line or "发布" in line or not layout.date:
                layout.date = _iso(line) or layout.date
            drop.add(i)
    candidates = [i for i in first if i not in drop]
    title_at = _title_lines(lines, candidates, known_title or layout.title)
    if title_at:
        joined = "".join(lines[i].strip().lstrip("#").strip() for i in title_at)
        layout.title = layout.title or joined
        lines = list(lines)
        lines[title_at[0]] = joined  # the title stays, once and on one line (the parser leaves it out)
        drop.update(title_at[1:])
        after = next((i for i in range(title_at[-1] + 1, len(lines)) if lines[i].strip()), None)
        if after is not None and _ADDRESSEES.match(lines[after].strip()) and _is_addressee(lines[after]):
            layout.extra["addressees"] = lines[after].strip().rstrip(":：")
            drop.add(after)
    return [line for i, line in enumerate(lines) if i not in drop]


def _title_lines(lines: list[str], candidates: list[int], known: str) -> list[int]:
    """The line(s) of the title: the known title (on one line or two), or the first short line ending like a
    title (…通知, …办法), together with the line before it when that one is a title's first half (a title
    wrapped over two lines: short, no sentence end, no title ending of its own)."""
    texts = [lines[i].strip().lstrip("#").strip() for i in candidates[:5]]
    for k, line in enumerate(texts):
        if known:
            if line == known:
                return [candidates[k]]
            for end in (k + 1, k + 2):
                if end < len(texts) and "".join(texts[k:end + 1]) == known:
                    return candidates[k:end + 1]
            continue
        if len(line) <= 60 and _TITLE_END.search(line) and not _SENTENCE_END.search(line):
            start = k
            while start > 0 and k - start < 2 and _first_half(texts[start - 1]):
                start -= 1  # a title wrapped over two or three lines
            return candidates[start:k + 1]
    return []


def _first_half(line: str) -> bool:
    return (0 < len(line) <= 40 and not _SENTENCE_END.search(line) and not _TITLE_END.search(line)
            and not _FLAG.match(line) and row_cells(line) is None and not re.search(r"[，,：:]$", line))


def _is_addressee(line: str) -> bool:
    """各市人民政府，省政府各部门： — a list of bodies ending with a colon, not a sentence leading into a list."""
    text = line.strip()
    return bool(re.search(r"(?:政府|部门|部門|单位|單位|机关|機關|委员会|委員會|厅|廳|局|办|辦|院|各有关|同志|"
                          r"公司|学校)[:：]$", text))


_ATTACHMENT_START = re.compile(r"^附\s*件\s*[\d一二三四五六七八九十]*\s*[:：.．]?\s*$")


def _tail(lines: list[str], layout: Layout) -> list[str]:
    """The sign-off: 发文机关署名 and 成文日期 (before the attachments, or at the end), （此件公开发布）, 抄送, 印发."""
    start = next((i for i, line in enumerate(lines) if _ATTACHMENT_START.match(line.strip())), None)
    if start is not None:
        return _sign_off(lines[:start], layout) + lines[start:]
    return _sign_off(lines, layout)


def _sign_off(lines: list[str], layout: Layout) -> list[str]:
    end = len(lines)
    while end and not lines[end - 1].strip():
        end -= 1
    cut = end
    seen_date = False
    for i in range(end - 1, max(-1, end - 10), -1):
        line = lines[i].strip()
        if not line:
            continue
        if _PUBLICITY.match(line) or _DISTRIBUTION.match(line):
            cut = i
            continue
        if (date := _DATE.match(line)) and not seen_date:
            layout.date = layout.date or _iso(date.group(0))
            seen_date = True
            cut = i
            continue
        if seen_date and len(line) <= 40 and not _SENTENCE_END.search(line) and not re.search(r"[，,：:]", line):
            layout.issuer = layout.issuer or line  # 发文机关署名 (one or more issuers, one a line)
            cut = i
            continue
        break
    return lines[:cut]


_CN_DIGITS = {ch: i for i, ch in enumerate("〇一二三四五六七八九")} | {"零": 0}


def _iso(text: str) -> str:
    """YYYY-MM-DD from 2023年5月6日, 二〇二三年五月六日, 2023-05-06 or 2023/5/6; '' when it is no date."""
    text = text.strip()
    match = re.match(r"^((?:19|20)\d{2})\s*[-/.年]\s*(\d{1,2})\s*[-/.月]\s*(\d{1,2})\s*日?", text)
    if match:
        return f"{match.group(1)}-{int(match.group(2)):02d}-{int(match.group(3)):02d}"
    match = _DATE.match(text)
    if not match:
        return ""
    year = "".join(str(_CN_DIGITS.get(ch, ch)) for ch in match.group("y"))
    return f"{year}-{_cn_number(match.group('m')):02d}-{_cn_number(match.group('d')):02d}"


def _cn_number(text: str) -> int:
    if text.isdigit():
        return int(text)
    if "十" in text:
        tens, _, ones = text.partition("十")
        return (_CN_DIGITS.get(tens, 1) if tens else 1) * 10 + (_CN_DIGITS.get(ones, 0) if ones else 0)
    return _CN_DIGITS.get(text, 0)
