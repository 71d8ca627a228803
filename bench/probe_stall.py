"""Probe checks: a hostile document cannot stall answers or publishing (linear text paths)."""

from __future__ import annotations

import io
import statistics
import threading
import time
import zipfile
import zlib
from collections.abc import Callable
from typing import Any

import httpx
from probe_kit import Result, check

UNRELATED = "政务公开考核分值是多少？"
# what the stored-ReDoS clause says, over and over, with no ) and no 。 (nor any comma to split it at)
RUN = "探测停顿条款括号内容"
RUN_QUESTION = "探测停顿条款括号内容是什么？"


# hostile files ----------------------------------------------------------------------------------------------------
def bracket_run(chars: int = 48_000) -> str:
    """A policy whose first article opens a bracket and runs `chars` characters without `)` or `。`."""
    run = (RUN * (chars // len(RUN) + 1))[:chars]
    return f"探测停顿文件\n\n第一条　({run}\n\n第二条　本条用于安全探测。\n"


def comment_openers(size: int = 96_000) -> str:
    return "<!--" * (size // 4)


def unpunctuated(chars: int = 100_000) -> str:
    """A policy whose article is one character repeated `chars` times: jieba, given it whole, is superlinear."""
    return "探测长文\n\n第一条　" + "中" * chars + "\n"


def nested_html(depth: int = 100_000) -> str:
    return "<html><body>" + "<div>" * depth + "<p>第一条　本条用于安全探测。</p>" + "</div>" * depth + "</body></html>"


def big_html(size: int = 10_000_000) -> str:
    """About `size` bytes of legal HTML: short paragraphs, each wrapped in inline tags."""
    line = "<p><span>第一条</span><b>本条</b><i>用于</i><span>安全探测</span></p>\n"
    return "<html><body>" + line * (size // len(line.encode())) + "</body></html>"


def ruled_pdf(ops: int = 4_000, pages: int = 1) -> bytes:
    """A small PDF: a sentence and `ops` horizontal and vertical rules crossing one another on each page (pdfplumber's
    table finder is superlinear in their crossings)."""
    parts = [b"BT /F1 12 Tf 72 760 Td (Rules for testing) Tj ET\n",
             b"BT /F1 12 Tf 72 740 Td (Rule 1. This page is for testing.) Tj ET\n"]
    for i in range(ops):
        if i % 2:
            x = 50 + 4 * ((i // 2) % 125)
            parts.append(b"%d 50 m %d 750 l S\n" % (x, x))
        else:
            y = 50 + 4 * ((i // 2) % 175)
            parts.append(b"50 %d m 550 %d l S\n" % (y, y))
    stream = zlib.compress(b"".join(parts), 9)
    kids = b" ".join(b"%d 0 R" % (5 + i) for i in range(pages))
    objects = [b"<< /Type /Catalog /Pages 2 0 R >>", b"<< /Type /Pages /Kids [%s] /Count %d >>" % (kids, pages),
               b"<< /Length %d /Filter /FlateDecode >>\nstream\n" % len(stream) + stream + b"\nendstream",
               b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>"]
    objects += [b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 3 0 R "
                b"/Resources << /Font << /F1 4 0 R >> >> >>"] * pages
    out, offsets = bytearray(b"%PDF-1.4\n"), []
    for number, body in enumerate(objects, 1):
        offsets.append(len(out))
        out += b"%d 0 obj\n" % number + body + b"\nendobj\n"
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (len(objects) + 1, xref)
    return bytes(out)


def entity_docx(levels: int = 9) -> bytes:
    """A DOCX whose document.xml declares nine levels of entities, each ten of the one below (a billion laughs)."""
    entities = '<!ENTITY e0 "政务公开政务公开">' + "".join(
        f'<!ENTITY e{i} "{f"&e{i - 1};" * 10}">' for i in range(1, levels + 1))
    document = ('<?xml version="1.0" encoding="UTF-8" standalone="yes"?><!DOCTYPE w:document [' + entities + ']>'
                '<w:document xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"><w:body>'
                f'<w:p><w:r><w:t>&e{levels};</w:t></w:r></w:p></w:body></w:document>')
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", '<?xml version="1.0"?><Types xmlns="http://schemas.openxmlformats.'
                         'org/package/2006/content-types"><Override PartName="/word/document.xml" ContentType="'
                         'application/vnd.openxmlformats-officedocument.wordprocessingml.document.main+xml"/></Types>')
        archive.writestr("_rels/.rels", '<?xml version="1.0"?><Relationships xmlns="http://schemas.openxmlformats.'
                         'org/package/2006/relationships"><Relationship Id="rId1" Type="http://schemas.openxmlformats'
                         '.org/officeDocument/2006/relationships/officeDocument" Target="word/document.xml"/>'
                         '</Relationships>')
        archive.writestr("word/document.xml", document)
    return out.getvalue()


# calls --------------------------------------------------------------------------------------------------------------
def put(base: str, api_key: str, doc_id: str, content: bytes | str, name: str, timeout: float = 600) -> httpx.Response:
    """Publish `content` as `doc_id` through the API (replacing an earlier run's)."""
    data = content.encode() if isinstance(content, str) else content
    return httpx.put(f"{base}/api/v1/documents/{doc_id}", headers={"Authorization": f"Bearer {api_key}"},
                     files={"file": (name, data)}, data={"replace": "true"}, timeout=timeout)


def ask(base: str, api_key: str, question: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = httpx.post(f"{base}/api/v1/ask", json={"question": question},
                          headers={"Authorization": f"Bearer {api_key}"}, timeout=600)
    return time.perf_counter() - started, response


def meanwhile(work: Callable[[], Any], base: str, api_key: str) -> tuple[list[float], Any, float]:
    """Unrelated questions asked one after another by another client while `work` runs: (their seconds, what
    `work` gave, its seconds)."""
    outcome: list[Any] = []

    def run() -> None:
        started = time.perf_counter()
        outcome.append(work())
        outcome.append(time.perf_counter() - started)

    worker = threading.Thread(target=run)
    worker.start()
    time.sleep(0.05)
    during = []
    while worker.is_alive():
        during.append(ask(base, api_key, UNRELATED)[0])
    worker.join()
    return during, outcome[0], outcome[1]


def median(during: list[float]) -> float:
    return statistics.median(during) if during else 0.0


def seen(during: list[float]) -> str:
    return (f"unrelated answers median {median(during):.2f} s, max {max(during, default=0):.2f} s "
            f"({len(during)} asked)")


# what a publish may answer: published, or refused for what the file holds (never 500, and no key trouble)
ANSWERED = (200, 400, 409, 413, 415, 422)


def brief(response: httpx.Response) -> str:
    return f"{response.status_code} {response.text[:100]}"


def publish_meanwhile(base: str, api_key: str, doc_id: str, content: bytes | str, name: str,
                      limit_s: float) -> Result:
    """Held when the file is published or refused (a 4xx, never a 500) within `limit_s` and unrelated answers
    asked meanwhile take at most 1 s (median)."""
    during, got, took = meanwhile(lambda: put(base, api_key, doc_id, content, name), base, api_key)
    held = got.status_code in ANSWERED and took <= limit_s and median(during) <= 1.0
    return held, f"{name}: {brief(got)} after {took:.1f} s; {seen(during)}"


# 1. a stored ReDoS ----------------------------------------------------------------------------------------------------
@check("26.1", "a clause with '(' and 48,000 characters without ')' or '。' stalls no answer")
def stored_redos(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    published = put(base, api_key, "probe-stall-brackets", bracket_run(), "probe-stall-brackets.md")
    if published.status_code != 200:
        return False, f"the clause was not published: {brief(published)}"
    during, citing, _ = meanwhile(lambda: [ask(base, api_key, RUN_QUESTION) for _ in range(5)], base, api_key)
    slowest, answer = max(citing, key=lambda pair: pair[0])
    cites = "probe-stall-brackets" in answer.text
    held = answer.status_code == 200 and slowest <= 3.0 and median(during) <= 1.0
    return held, (f"questions {'citing' if cites else 'about'} the clause at most {slowest:.2f} s "
                  f"({answer.status_code}); {seen(during)}")


# 2. an upload of <!-- -------------------------------------------------------------------------------------------------
@check("26.2", "a 96 KB .md of repeated '<!--' is published or refused quickly; answers meanwhile stay fast")
def comment_upload(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    return publish_meanwhile(base, api_key, "probe-stall-comments", comment_openers(), "probe-stall-comments.md", 10)


# 15. (the HTML and DOCX inputs) -----------------------------------------------------------------------------------
@check("26.15", "HTML nested 100,000 deep and a DOCX of expanding entities get a clear answer, not a 500")
def nested_and_entities(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    nested = put(base, api_key, "probe-stall-nested", nested_html(), "probe-stall-nested.html")
    entities = put(base, api_key, "probe-stall-entities", entity_docx(), "probe-stall-entities.docx")
    held = nested.status_code == 200 and 400 <= entities.status_code < 500 and "entities" in entities.text
    return held, f"nested HTML {brief(nested)}; entity DOCX {brief(entities)}"


# 16. crafted but legal files -----------------------------------------------------------------------------------------
@check("26.16", "100,000 unpunctuated characters publish without stalling answers")
def unpunctuated_upload(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    return publish_meanwhile(base, api_key, "probe-stall-unpunctuated", unpunctuated(), "probe-stall-run.md", 60)


@check("26.16", "a PDF of dense rules is read quickly")
def ruled_upload(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    return publish_meanwhile(base, api_key, "probe-stall-rules", ruled_pdf(4_000), "probe-stall-rules.pdf", 15)


@check("26.16", "a 10 MB HTML file is published or refused quickly, answers meanwhile fast")
def big_html_upload(base: str, api_key: str = "", **_: Any) -> Result:
    if not api_key:
        return True, "skipped (no --api-key)"
    return publish_meanwhile(base, api_key, "probe-stall-big", big_html(), "probe-stall-big.html", 60)
