"""Benchmark: how the loaders and the clause parser read real documents (tests/data/real/).

    python bench/real_documents.py [-v]

For each file with an expected structure (tests/data/real/expected/NAME.json, written by reading the
document), compares title, 文号 and the ordered clause labels; checks that every sentence of the source body
stands in some clause and that no page chrome survives. Prints one line per file and the totals.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
REAL = REPO / "tests" / "data" / "real"
sys.path.insert(0, str(REPO))

# Lines of page chrome that must not survive in any clause.
CHROME = re.compile(r"索引号|主题分类|发文字号[:：]|成文日期[:：]|发布日期[:：]|分享到|打印本页|关闭窗口|【字体|"
                    r"^[—\-－]\s*\d+\s*[—\-－]$|"
                    r"（此件公开发布）|（此件主动公开）|^抄送[:：]|印发$")


def unit_labels(clauses: list) -> list[str]:  # type: ignore[type-arg]
    """Clause labels with long clauses' 第N段 pieces folded into their unit."""
    labels: list[str] = []
    for clause in clauses:
        label = re.sub(r"第\d+段$", "", clause.label)
        if not labels or labels[-1] != label or not clause.label.endswith("段"):
            labels.append(label)
    return labels


def raw_sentences(file: Path) -> list[str]:
    """The sentences (ending in 。) of the file's raw text, read without the product's loaders: what no clause
    may lose. Scans are left out (their text is measured against the source text instead)."""
    from bs4 import BeautifulSoup

    from assistant.ingest.encoding import decode_text

    data = file.read_bytes()
    suffix = file.suffix.lower()
    rendered = REAL / "sources" / "office_texts" / f"{file.stem}.txt"
    if rendered.exists():  # a file rendered from a real text: its body paragraphs, tagged @p
        body = [line.split(" ", 1)[1] for line in rendered.read_text(encoding="utf-8").splitlines()
                if line.startswith("@p ")]
        return [piece for line in body for piece in re.split(r"(?<=[。；！？])", re.sub(r"\s+", "", line))
                if len(piece) >= 10 and piece[-1] in "。；！？" and not CHROME.search(piece)]
    if suffix == ".docx":
        import io

        from docx import Document

        document = Document(io.BytesIO(data))
        text = "\n".join([p.text for p in document.paragraphs] +
                         [c.text for t in document.tables for r in t.rows for c in r.cells])
    elif suffix == ".pdf":
        import io

        from pypdf import PdfReader

        text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(data)).pages)
    else:
        text = decode_text(data, file.name)
        if suffix in (".html", ".htm"):
            soup = BeautifulSoup(text, "html.parser")
            for tag in soup(["script", "style"]):
                tag.decompose()
            text = soup.get_text("\n")
    lines = [line.strip().lstrip("#").strip() for line in text.splitlines()]
    if suffix == ".pdf":  # a PDF breaks lines inside sentences: join a line to the next until a sentence ends
        merged: list[str] = []
        for line in (line for line in lines if not re.match(r"^[\s—–\-－]*\d{1,3}[\s—–\-－]*$", line)):
            if merged and not re.search(r"[。；！？:：]$", merged[-1]):
                merged[-1] += line
            else:
                merged.append(line)
        lines = merged
    sentences = []
    for line in lines:
        for piece in re.split(r"(?<=[。；！？])", re.sub(r"\s+", "", line)):
            if len(piece) >= 10 and piece[-1] in "。；！？" and not CHROME.search(piece):
                sentences.append(piece)
    return sentences


def reconstructed(clauses: list) -> str:  # type: ignore[type-arg]
    """The document as its clauses hold it: each heading once, before the first clause under it, then texts;
    without the pipes that set a table row's cells apart (a sentence of the source may run across cells)."""
    from assistant.ingest.normalize import normalize

    parts: list[str] = []
    emitted: set[str] = set()
    for clause in clauses:
        for heading in clause.path[:-1]:
            if heading not in emitted:
                emitted.add(heading)
                parts.append(heading)
        parts.append(clause.text)
    return re.sub(r"[\s|]+", "", normalize("".join(parts)))


def _present(sentence: str, joined: str, file: Path) -> bool:
    """The sentence stands in the clauses; for a PDF, whose text layer may interleave table cells, every line of
    ten characters or more that it was joined from does."""
    from assistant.ingest.normalize import normalize

    if re.sub(r"\s+", "", normalize(sentence)) in joined:
        return True
    if file.suffix.lower() != ".pdf":
        return False
    raw = "\n".join(_pdf_raw_lines(file))
    pieces = [line for line in raw.splitlines() if len(line) >= 10 and line in sentence]
    return bool(pieces) and all(re.sub(r"\s+", "", normalize(p)) in joined for p in pieces)


def _pdf_raw_lines(file: Path) -> list[str]:
    import io

    from pypdf import PdfReader

    text = "\n".join(page.extract_text() or "" for page in PdfReader(io.BytesIO(file.read_bytes())).pages)
    return [re.sub(r"\s+", "", line) for line in text.splitlines()]


def check(expected: dict) -> dict:  # type: ignore[type-arg]
    from assistant.errors import CorpusError
    from assistant.ingest.clauses import parse_clauses
    from assistant.ingest.loaders import load_document

    file = REAL / expected["file"]
    try:
        doc = load_document(file, REAL)
    except CorpusError as e:
        return {"file": file.name, "error": str(e), "missing_tool": getattr(e, "tool", "")}
    clauses = parse_clauses(doc)
    labels = unit_labels(clauses)
    joined = reconstructed(clauses)
    ocr = bool(doc.extra.get("ocr"))
    title = re.sub(r"\s+", "", expected["title"])
    sentences = [s[len(title):] if title and s.startswith(title) else s for s in raw_sentences(file)]
    lost = [] if ocr else [s for s in sentences if not _present(s, joined, file)]
    chrome = [line for c in clauses for line in c.text.splitlines() if CHROME.search(line.strip())]
    return {
        # a document that prints no title is named by its file (the editors' preview shows it, to be corrected)
        "file": file.name, "title": doc.title == (expected["title"] or doc.doc_id), "got_title": doc.title,
        "doc_number": doc.doc_number == expected["doc_number"], "got_doc_number": doc.doc_number,
        "labels": labels == expected["labels"], "got_labels": labels, "want_labels": expected["labels"],
        "lost": lost, "chrome": chrome, "ocr": ocr,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="show the differences")
    args = parser.parse_args()
    rows = [check(json.loads(p.read_text(encoding="utf-8"))) for p in sorted((REAL / "expected").glob("*.json"))]
    ok = {"title": 0, "doc_number": 0, "labels": 0}
    for row in rows:
        if "error" in row:
            print(f"ERROR  {row['file']}: {row['error']}")
            continue
        for key in ok:
            ok[key] += row[key]
        marks = " ".join(f"{key}:{'ok' if row[key] else 'NO'}" for key in ok)
        print(f"{marks}  lost:{len(row['lost'])} chrome:{len(row['chrome'])}  {row['file']}")
        if args.verbose:
            if not row["title"]:
                print(f"    title: {row['got_title']!r}")
            if not row["doc_number"]:
                print(f"    文号: {row['got_doc_number']!r}")
            if not row["labels"]:
                got, want = row["got_labels"], row["want_labels"]
                print(f"    labels: got {len(got)}, want {len(want)}; missing {[x for x in want if x not in got][:8]}; "
                      f"extra {[x for x in got if x not in want][:8]}")
            for line in row["chrome"][:3]:
                print(f"    chrome: {line[:80]}")
            for sentence in row["lost"][:3]:
                print(f"    lost: {sentence[:80]}")
    n = len(rows)
    print(f"{n} files: title {ok['title']}/{n}, 文号 {ok['doc_number']}/{n}, labels {ok['labels']}/{n}, "
          f"lost sentences {sum(len(r.get('lost', [])) for r in rows)}, chrome lines "
          f"{sum(len(r.get('chrome', [])) for r in rows)}, errors {sum('error' in r for r in rows)}")


if __name__ == "__main__":
    main()
