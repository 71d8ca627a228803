"""DOCX and PDF → lines: paragraphs and tables in document order; a PDF's text layer page by page without its
running headers and footers, or, for a scan, the text Tesseract reads from its page images."""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
from collections import Counter

from assistant.errors import CorpusError
from assistant.ingest.limits import Limits, check_text

log = logging.getLogger(__name__)

OCR_MODELS = ("chi_sim", "chi_tra")
OCR_LANGUAGES = "chi_sim|chi_tra"
_OCR_HINT = ("this PDF is a scan with no text layer; to read it, install Tesseract with its Chinese models "
             "(apt-get install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra), or upload a PDF with text")


def docx_lines(data: bytes, name: str) -> list[str]:
    """Paragraphs and table rows in the order they stand; a row's cells joined by " | " (a merged cell once)."""
    import zipfile

    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise CorpusError(name, f"not a readable DOCX file ({e.__class__.__name__}: {e})") from e
    lines: list[str] = []
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(block, document).text)
        elif tag == "tbl":
            for row in Table(block, document).rows:
                cells: list[str] = []
                for cell in row.cells:
                    text = " ".join(cell.text.split())
                    if text and (not cells or cells[-1] != text):
                        cells.append(text)
                if cells:
                    lines.append(" | ".join(cells))
    return lines


def pdf_lines(data: bytes, name: str, limits: Limits) -> tuple[list[str], dict[str, str]]:
    """The text layer's lines without running headers/footers and page numbers, or the OCR'd text of a scan;
    the second item is metadata about how the text was read (`ocr`)."""
    from pypdf import PdfReader
    from pypdf.errors import PyPdfError

    pages: list[list[str]] = []
    size = 0
    try:
        reader = PdfReader(io.BytesIO(data))
        for page in reader.pages:
            text = page.extract_text() or ""
            pages.append(text.splitlines())
            size += len(text) + 1
            check_text(size, name, limits)
    except (PyPdfError, ValueError, KeyError, TypeError) as e:
        raise CorpusError(name, f"not a readable PDF file ({e.__class__.__name__}: {e})") from e
    if sum(len(line.strip()) for lines in pages for line in lines) >= 10 * len(pages):
        return _without_running_lines(pages), {}
    return ocr_pdf(reader, name, limits), {"ocr": f"tesseract ({OCR_LANGUAGES}, the more confident per page)"}


def _without_running_lines(pages: list[list[str]]) -> list[str]:
    """Lines that stand at the top or bottom of most pages (a running header, the issuer's name, a footer with
    the page number) are the page's, not the document's."""
    if len(pages) < 3:
        return [line for lines in pages for line in lines]
    edges: Counter[str] = Counter()
    for lines in pages:
        kept = [line.strip() for line in lines if line.strip()]
        for line in set(kept[:3] + kept[-3:]):
            edges[_page_key(line)] += 1
    running = {key for key, n in edges.items() if n >= max(3, len(pages) * 0.6)}
    out: list[str] = []
    for lines in pages:
        kept = [line for line in lines if line.strip()]
        head = [i for i in range(min(3, len(kept))) if _page_key(kept[i].strip()) in running]
        tail = [i for i in range(max(0, len(kept) - 3), len(kept)) if _page_key(kept[i].strip()) in running]
        out += [line for i, line in enumerate(kept) if i not in head and i not in tail]
    return out


def _page_key(line: str) -> str:
    return re.sub(r"\d+", "#", line)  # "— 3 —" and "— 4 —" are the same running line


def ocr_pdf(reader: object, name: str, limits: Limits) -> list[str]:
    """Every page image of a scanned PDF read by Tesseract, with the Simplified and with the Traditional Chinese
    model; per page, the reading the engine is more confident of is kept (one model for both scripts reads
    either worse)."""
    binary = shutil.which("tesseract")
    if binary is None:
        raise CorpusError(name, "no text layer", _OCR_HINT)
    lines: list[str] = []
    size = 0
    for number, page in enumerate(reader.pages, 1):  # type: ignore[attr-defined]
        for image in page.images:
            png = io.BytesIO()
            image.image.convert("L").save(png, format="PNG")
            readings = [_tesseract(binary, png.getvalue(), language, name, number) for language in OCR_MODELS]
            confidence, text = max(readings)
            size += sum(len(line) for line in text)
            check_text(size, name, limits)
            lines += text
    if not any(line.strip() for line in lines):
        raise CorpusError(name, "no text layer, and OCR found no text", "is the scan legible?")
    log.info("%s: text read by OCR (%s)", name, OCR_LANGUAGES)
    return lines


def _tesseract(binary: str, png: bytes, language: str, name: str, page: int) -> tuple[float, list[str]]:
    """(mean word confidence, lines) of one page image read with one language model (Tesseract's TSV output)."""
    try:
        done = subprocess.run([binary, "stdin", "stdout", "-l", language, "--psm", "6", "tsv"], input=png,
                              capture_output=True, timeout=300, check=True)
    except (subprocess.CalledProcessError, subprocess.TimeoutExpired) as e:
        detail = (getattr(e, "stderr", b"") or b"").decode(errors="replace")[:200]
        raise CorpusError(name, f"OCR of page {page} failed: {detail}", _OCR_HINT) from e
    words: dict[tuple[str, str, str], list[str]] = {}
    confidences: list[float] = []
    for row in done.stdout.decode("utf-8", errors="replace").splitlines()[1:]:
        cells = row.split("\t")
        if len(cells) < 12 or not cells[11].strip() or float(cells[10]) < 0:
            continue
        words.setdefault((cells[2], cells[3], cells[4]), []).append(cells[11])
        confidences.append(float(cells[10]))
    lines = [_ocr_line(" ".join(parts)) for parts in words.values()]
    return (sum(confidences) / len(confidences) if confidences else 0.0), lines


def _ocr_line(line: str) -> str:
    """Tesseract puts spaces between Chinese characters; they are not in the document."""
    return re.sub(r"(?<=[^\x00-\x7f]) +(?=[^\x00-\x7f])", "", line).strip()
