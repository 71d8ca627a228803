"""Load corpus files (Markdown with front matter, text, HTML, DOCX, PDF) into `PolicyDocument`s."""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from assistant.errors import CorpusError
from assistant.ingest.clauses import classify_line
from assistant.ingest.clean import clean_text
from assistant.ingest.encoding import decode_text
from assistant.ingest.html import html_lines
from assistant.ingest.layout import read_layout, tidy_title
from assistant.ingest.limits import Limits, check_file_size, check_front_matter, check_text, check_zip
from assistant.ingest.normalize import normalize_doc_number
from assistant.ingest.office import docx_lines, pdf_lines
from assistant.ingest.records import PolicyDocument

log = logging.getLogger(__name__)

SUFFIXES = (".md", ".markdown", ".txt", ".text", ".html", ".htm", ".docx", ".pdf")
FIELDS = (
    "title", "doc_number", "issuer", "publish_date", "effective_date", "expiry_date",
    "status", "kind", "interprets", "replaced_by", "replaces", "source",
)
KINDS = ("policy", "interpretation")
_FRONT_MATTER = re.compile(r"\A---[ \t]*\r?\n(.*?)\r?\n---[ \t]*(?:\r?\n|\Z)", re.S)


@dataclass
class LoadResult:
    """Documents that loaded, and one error per file that did not."""

    documents: list[PolicyDocument] = field(default_factory=list)
    errors: list[CorpusError] = field(default_factory=list)


def iter_corpus_files(paths: Iterable[Path]) -> Iterator[tuple[Path, Path]]:
    """Yield (file, root) for every supported file under the given files and folders, sorted."""
    for path in paths:
        if path.is_dir():
            for file in sorted(p for p in path.rglob("*") if p.is_file()):
                if file.suffix.lower() in SUFFIXES and not any(part.startswith(".") for part in
                                                               file.relative_to(path).parts):
                    yield file, path
        else:
            yield path, path.parent


def doc_id_for(file: Path, root: Path) -> str:
    """Stable id from the path relative to the corpus root, without the extension."""
    return file.relative_to(root).with_suffix("").as_posix()


def load_corpus(paths: Iterable[Path], limits: Limits = Limits()) -> LoadResult:  # noqa: B008 (frozen)
    """Load every supported file; a file that fails is reported and the others still load."""
    result = LoadResult()
    for file, root in iter_corpus_files(paths):
        try:
            result.documents.append(load_document(file, root, limits))
        except CorpusError as e:
            log.warning("%s", e)
            result.errors.append(e)
    return result


def load_document(file: Path, root: Path | None = None,
                  limits: Limits = Limits()) -> PolicyDocument:  # noqa: B008 (frozen)
    """Read one file into a cleaned `PolicyDocument`; raises `CorpusError` naming the file. A file over the
    `limits` (its size, what it expands to, its text) is refused before it is expanded further."""
    root = root or file.parent
    name = str(file)
    if not file.exists():
        raise CorpusError(name, "no such file")
    suffix = file.suffix.lower()
    if suffix not in SUFFIXES:
        raise CorpusError(name, f"unsupported file type {suffix or '(none)'}",
                          "supported: " + " ".join(SUFFIXES))
    size = file.stat().st_size
    if size == 0:
        raise CorpusError(name, "empty file")
    check_file_size(size, name, limits)
    data = file.read_bytes()
    meta: dict[str, object] = {}
    if suffix in (".docx",):
        check_zip(data, name, limits)
        text = "\n".join(docx_lines(data, name))
    elif suffix == ".pdf":
        lines, how = pdf_lines(data, name, limits)
        text = "\n".join(lines)
        meta.update(how)
    else:
        text = decode_text(data, name)
        if suffix in (".html", ".htm"):  # markup is not text: the page's text is checked once it is read
            lines, html_title = html_lines(text)
            text = "\n".join(lines)
            if html_title:
                meta["html_title"] = html_title
        else:
            check_text(len(text), name, limits)  # before any further reading of it
            if suffix in (".md", ".markdown"):
                front, text = split_front_matter(text, name, limits)
                meta.update(front)
            text = without_html_comments(text)  # <!-- … --> in Markdown (and Markdown saved as .txt)
    check_text(len(text), name, limits)
    if not text.strip():
        raise CorpusError(name, "no text found", "a scanned PDF needs OCR before it can be indexed")
    return build_document(doc_id_for(file, root), text, meta, source=name)


def build_document(doc_id: str, text: str, meta: dict[str, object], source: str = "") -> PolicyDocument:
    """Clean the text and fill metadata: front matter first, then what the layout says (a portal's metadata
    block, the 版头, the sign-off), then inference from the text."""
    values = {key: _as_text(meta.get(key)) for key in FIELDS}
    extra = {str(k): _as_text(v) for k, v in meta.items() if k not in FIELDS and k != "html_title"}
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    layout = read_layout(lines, values["title"])
    extra.update({k: v for k, v in layout.extra.items() if k not in ("title", "doc_number", "issuer")})
    cleaned, headline = clean_text("\n".join(layout.lines), values["title"] or layout.title)
    if headline:
        extra["headline"] = headline
    html_title = _as_text(meta.get("html_title"))
    title = tidy_title(values["title"] or layout.title or headline or html_title or _first_line(cleaned) or doc_id)
    kind = values["kind"] or "policy"
    if kind not in KINDS:
        raise CorpusError(source or doc_id, f"front matter field 'kind' is {kind!r}",
                          "use 'policy' or 'interpretation'")
    return PolicyDocument(
        doc_id=doc_id,
        title=title,
        text=cleaned,
        doc_number=normalize_doc_number(values["doc_number"]) or layout.doc_number,
        issuer=values["issuer"] or layout.issuer,
        publish_date=values["publish_date"] or layout.date,
        effective_date=values["effective_date"],
        expiry_date=values["expiry_date"],
        status=values["status"] or "现行有效",
        kind=kind,
        interprets=values["interprets"],
        replaced_by=values["replaced_by"],
        replaces=values["replaces"],
        source=values["source"] or source,
        extra=extra,
    )


def split_front_matter(text: str, name: str,
                       limits: Limits = Limits()) -> tuple[dict[str, object], str]:  # noqa: B008 (frozen)
    """Split YAML front matter from a Markdown body; malformed YAML is a `CorpusError`."""
    match = _FRONT_MATTER.match(text)
    if not match:
        return {}, text
    check_front_matter(match.group(1), name, limits)
    try:
        front = yaml.safe_load(match.group(1)) or {}
    except yaml.YAMLError as e:
        mark = getattr(e, "problem_mark", None)
        where = f" at line {mark.line + 2}" if mark is not None else ""
        raise CorpusError(name, f"malformed front matter{where}: {getattr(e, 'problem', e)}") from e
    if not isinstance(front, dict):
        raise CorpusError(name, "front matter is not a mapping of field: value")
    return front, text[match.end():]


def without_html_comments(text: str) -> str:
    """The text without its `<!-- … -->` comments; an unclosed one stays as written. Found with `str.find`, once
    each: a lazy `<!--.*?-->` searches to the end of the text again from every unclosed `<!--`, quadratic."""
    kept: list[str] = []
    position = 0
    while (start := text.find("<!--", position)) >= 0:
        end = text.find("-->", start + 4)
        if end < 0:
            break  # no comment after this one can close either
        kept.append(text[position:start])
        position = end + 3
    kept.append(text[position:])
    return "".join(kept)


def _as_text(value: object) -> str:
    if value is None:
        return ""
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return "、".join(_as_text(v) for v in value)
    return str(value).strip()


def _first_line(text: str) -> str:
    """The first line, when it can be a title: not a numbered unit (第 1 條, 第一章, 一、) and not a sentence."""
    for line in text.splitlines():
        line = line.strip().lstrip("#").strip()
        if line:
            return "" if classify_line(line) or re.search(r"[。；]", line) else line[:80]
    return ""

