"""Remove web-scrape debris (repeated headlines, share bars, related-article lists) without touching content."""

from __future__ import annotations

import re

from assistant.ingest.normalize import normalize

# Standalone lines that belong to a web page's chrome, never to a policy (compared after normalisation).
_CHROME_ITEM = (r"[【\[]?(?:打印本页|打印|关闭窗口|关闭|返回顶部|字体[:：]?\s*大\s*中\s*小|收藏|分享|保存本页)[】\]]?"
                r"[:：]?")
# one or more of them on a line (【打印本页】【关闭窗口】, 打印本页 关闭窗口), or a link that runs to the line's end
_CHROME_LINE = re.compile(rf"^(?:{_CHROME_ITEM}\s*)+$|^[【\[]?(?:扫一扫|微信扫一扫|上一篇|下一篇).*$")
# Once one of these stands on its own line, everything after it is the page's footer.
_FOOTER_START = re.compile(r"^(分享到|相关文章|相关阅读|相关链接|相关新闻|相关解读|延伸阅读|责任编辑)\s*[:：]?.*$")
_MAX_REPEATED_LINE = 80


def clean_text(text: str, title: str = "") -> tuple[str, str]:
    """Return (cleaned text, headline) — the headline is a scraped page's title, repeated between its sections.

    Debris is recognised by what it is, never by repetition alone (a 文号, a table cell or a legal sentence
    may well recur): share/print/close links; the footer from 分享到 / 相关文章 on; and the page's headline —
    its first line, when that line stands again further down — whose copies all go, the first being returned
    as the headline. The document's own title is kept once, at the top.
    """
    lines = [line.rstrip() for line in text.replace("\r\n", "\n").replace("\r", "\n").split("\n")]
    lines = drop_contents(lines)
    keys = [normalize(line).lstrip("#").strip() for line in lines]
    first = next((k for k in keys if k), "")
    title_key = normalize(title.lstrip("#").strip()) if title else ""
    repeated_headline = (first if first and keys.count(first) > 1 and len(first) <= _MAX_REPEATED_LINE
                         and not _is_numbered(first) else "")
    headline = ""
    kept: list[str] = []
    title_seen = False
    for line, bare in zip(lines, keys, strict=True):
        if _FOOTER_START.match(bare) and len(bare) <= _MAX_REPEATED_LINE:
            break
        if _CHROME_LINE.match(bare):
            continue
        if bare and bare == title_key:
            if not title_seen:
                title_seen = True
                kept.append(line)
            continue
        if bare and bare == repeated_headline:
            headline = headline or line.strip().lstrip("#").strip()
            continue
        kept.append(line)
    if headline and not title_key:
        kept.insert(0, headline)
    cleaned = re.sub(r"\n{3,}", "\n\n", "\n".join(kept)).strip()
    return cleaned + "\n", headline


def drop_contents(lines: list[str]) -> list[str]:
    """A table of contents (目录) at the top: a run of headings that all stand again, in order, in the body.
    It starts at the first line that recurs and ends where that line stands again."""
    keys = [re.sub(r"\s+", "", normalize(line)) for line in lines]
    nonblank = [i for i, k in enumerate(keys) if k]
    for i in nonblank[:40]:
        again = next((j for j in range(i + 1, len(keys)) if keys[j] == keys[i]), None)
        if again is None:
            continue
        run = [k for k in keys[i:again] if k]
        later = {k[:6] for k in keys[again:]}  # a contents line may hold two headings, the body one and its text
        if len(run) >= 3 and sum(k[:6] in later for k in run) >= 0.8 * len(run):
            start = i - 1 if i and keys[i - 1] in ("目录", "目次") else i
            return lines[:start] + lines[again:]
        return lines
    return lines


def _is_numbered(key: str) -> bool:
    # A numbered line (（一）…, 第一条) is content, even at the top.
    return bool(re.match(r"^(第.{1,6}[章节条编]|[一二三四五六七八九十]+、|\d+[、.]|[（(].{1,3}[)）])", key))
