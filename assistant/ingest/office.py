"""DOCX and PDF → lines: paragraphs and tables in document order; a PDF's text layer page by page, its ruled
tables as rows, without its running headers and footers, or, for a scan, the text Tesseract reads from its page
images."""

from __future__ import annotations

import io
import logging
import re
import shutil
import subprocess
from collections import Counter

from assistant.errors import CorpusError, MissingToolError
from assistant.ingest.limits import Limits, check_text
from assistant.ingest.tables import table_row

log = logging.getLogger(__name__)

# A ruled table of 100 rows and 50 columns has about 5,000 crossings; the table finder's time grows faster than
# their number (21,875 on one page took 10 s), so a page with more, or a file with more in all, is read as text.
MAX_PAGE_GRID = 5_000
MAX_DOCUMENT_GRID = 50_000
OCR_MODELS = ("chi_sim", "chi_tra")
OCR_LANGUAGES = "chi_sim|chi_tra"
_OCR_HINT = ("this PDF is a scan with no text layer; to read it, install Tesseract with its Chinese models "
             "(apt-get install tesseract-ocr tesseract-ocr-chi-sim tesseract-ocr-chi-tra), or upload a PDF with text")


def docx_lines(data: bytes, name: str) -> list[str]:
    """Paragraphs and table rows in the order they stand (a row as `tables.table_row` writes it)."""
    import zipfile

    from docx import Document
    from docx.table import Table
    from docx.text.paragraph import Paragraph
    from lxml.etree import LxmlError

    try:
        document = Document(io.BytesIO(data))
    except (zipfile.BadZipFile, KeyError, ValueError) as e:
        raise CorpusError(name, f"not a readable DOCX file ({e.__class__.__name__}: {e})") from e
    except LxmlError as e:  # malformed XML, or entities declared to expand (libxml2 stops their amplification)
        raise CorpusError(name, f"not a readable DOCX file: its XML does not parse ({e})",
                          "Word never declares XML entities; save the file again from Word or WPS") from e
    lines: list[str] = []
    for block in document.element.body.iterchildren():
        tag = block.tag.rsplit("}", 1)[-1]
        if tag == "p":
            lines.append(Paragraph(block, document).text)
        elif tag == "tbl":
            rows = (table_row(_distinct_cells(row.cells)) for row in Table(block, document).rows)
            lines += [row for row in rows if row]
    return lines


def _distinct_cells(cells: list) -> list[str]:  # type: ignore[type-arg]
    """python-docx gives a merged cell once per grid column it spans; its text counts once."""
    seen: set[int] = set()
    texts: list[str] = []
    for cell in cells:
        if id(cell._tc) not in seen:
            seen.add(id(cell._tc))
            texts.append(cell.text)
    return texts


def pdf_lines(data: bytes, name: str, limits: Limits) -> tuple[list[str], dict[str, str]]:
    """The text layer's lines (ruled tables as rows) without running headers/footers and page numbers, or the
    OCR'd text of a scan; the second item is metadata about how the text was read (`ocr`). pypdf reads the file
    first, within its limits on streams, so the layout reading that follows decodes only what it has bounded."""
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
        return _without_running_lines(_layout_pages(data, name)), {}
    return ocr_pdf(reader, name, limits), {"ocr": f"tesseract ({OCR_LANGUAGES}, the more confident per page)"}


def _layout_pages(data: bytes, name: str) -> list[list[str]]:
    """Each page's lines from top to bottom, a ruled table's rows in its place (pdfplumber finds the table by
    its rules); a table continued on the next page does not repeat its header row."""
    import pdfplumber
    from pdfplumber.utils.exceptions import PdfminerException

    pages: list[list[str]] = []
    header: list[str | None] = [None]  # the first row of the last table
    grid = [MAX_DOCUMENT_GRID]  # crossings of ruled lines the table finder may still read in this file
    try:
        with pdfplumber.open(io.BytesIO(data)) as pdf:
            pages = [_page_lines(page, header, grid, name) for page in pdf.pages]
    except (PdfminerException, ValueError, KeyError, TypeError) as e:
        raise CorpusError(name, f"not a readable PDF file ({e.__class__.__name__}: {e})") from e
    return pages


def _page_lines(page: object, header: list[str | None], grid: list[int], name: str) -> list[str]:
    crossings = _ruled_crossings(page)
    if crossings > min(MAX_PAGE_GRID, grid[0]):
        log.warning("%s: page %s has %s crossings of ruled lines; its tables are read as text lines",
                    name, page.page_number, f"{crossings:,}")  # type: ignore[attr-defined]
        found = []
    else:
        grid[0] -= crossings
        found = page.find_tables()  # type: ignore[attr-defined]
    tables = [rows for rows in map(_data_rows, found) if rows]
    boxes = [box for box, _ in tables]
    text = page.filter(lambda obj: not _inside(obj, boxes)).extract_text_lines()  # type: ignore[attr-defined]
    items = sorted([(line["top"], None, [line["text"]]) for line in text] +
                   [(box[1], rows[0], rows) for box, rows in tables], key=lambda item: item[0])
    lines: list[str] = []
    for _, first, rows in items:
        if first is not None:
            rows = rows[1:] if first == header[0] else rows
            header[0] = first
        lines += rows
    return lines


def _ruled_crossings(page: object) -> int:
    """How many crossings of horizontal and vertical rules the table finder would work through (its edges merged
    as it merges them): its time grows faster than that count, so a page of dense rules (a drawing, or a file
    made to stall the reader) is read without it."""
    from pdfplumber.table import merge_edges

    edges = merge_edges(page.edges, 3, 3, 3, 3)  # type: ignore[attr-defined]  # pdfplumber's default tolerances
    horizontal = sum(1 for edge in edges if edge["orientation"] == "h")
    return horizontal * (len(edges) - horizontal)


def _data_rows(table: object) -> tuple[tuple[float, float, float, float], list[str]] | None:
    """(bounding box, row lines) of a ruled table. Rows of one full-width cell above its first row of cells are
    text in a box (WPS frames every line of text so); below, such a row is the table's own (a group heading, one
    that may be continued on the next page). A grid without a row of two cells is no table."""
    rows = list(zip(table.rows, table.extract(), strict=True))  # type: ignore[attr-defined]
    first = next((i for i, (_, texts) in enumerate(rows) if sum(cell is not None for cell in texts) >= 2), None)
    if first is None:
        return None
    kept = rows[first:]
    box = (min(row.bbox[0] for row, _ in kept), kept[0][0].bbox[1], max(row.bbox[2] for row, _ in kept),
           kept[-1][0].bbox[3])
    lines = [line for line in (table_row([cell or "" for cell in texts]) for _, texts in kept) if line]
    return (box, lines) if lines else None


def _inside(obj: dict, boxes: list[tuple[float, float, float, float]]) -> bool:  # type: ignore[type-arg]
    x, y = (obj.get("x0", 0) + obj.get("x1", 0)) / 2, (obj.get("top", 0) + obj.get("bottom", 0)) / 2
    return any(x0 <= x <= x1 and top <= y <= bottom for x0, top, x1, bottom in boxes)


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
        raise MissingToolError(name, "no text layer", "tesseract", _OCR_HINT)
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
