"""Publishing a policy into the corpus: read an upload with the editor's metadata (in a child process, within the
reading budget), write it into the corpus as Markdown with front matter (the original kept), and change a published
document's status — each all or nothing: when any step fails, the corpus, its originals and the index stay exactly as
they were. The editors' page and the HTTP API publish through these, by way of `Assistant.publish` and
`Assistant.set_status`."""

from __future__ import annotations

import datetime as dt
import hashlib
import os
import re
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import yaml

from assistant.errors import AssistantError, CorpusError
from assistant.index.publish import IndexSummary
from assistant.index.registry import REMOVED, DocumentRow
from assistant.ingest.limits import Limits, parse_bounded
from assistant.ingest.loaders import FIELDS, SUFFIXES, load_document, split_front_matter
from assistant.ingest.records import PolicyDocument
from assistant.ingest.sandbox import run_bounded

# the metadata an editor may give with an upload (it overrides what the file says)
FORM_FIELDS = ("title", "doc_number", "issuer", "publish_date", "status", "kind", "interprets", "replaced_by")
STATUSES = ("现行有效", "已废止", "已修改", "历史版本")
KINDS = ("policy", "interpretation")
# one publish or status change at a time changes the corpus (the API's and the editors' page's alike), so that one
# that fails puts back only what it changed
_changing = threading.Lock()
# a document id as a corpus file's name gives it: letters (any script), digits, '-', '_' and '.', not hidden
DOC_ID = re.compile(r"^(?!\.)[\w.\-]{1,120}$")
# the longest name a publish gives a file is `.originals/{id}.markdown.replaced-YYYYmmdd-HHMMSS-N`, and a file
# name may have 255 bytes: an id of at most this many bytes (66 Chinese characters) can always be replaced
MAX_ID_BYTES = 200


class PublishError(AssistantError):
    """Nothing was published: `message` says why, in an editor's words."""


class FieldError(PublishError):
    """A metadata field given with an upload is refused: `field` names it."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message, f"correct the field {field!r}")
        self.field = field


class DuplicateDocument(PublishError):
    """An upload's text is already published as another document: `duplicates` maps its id to that document's."""

    def __init__(self, duplicates: dict[str, tuple[str, str]]) -> None:
        said = "；".join(f"{doc_id} 与已发布的《{title.strip('《》')}》（{other}）正文相同"
                        for doc_id, (other, title) in duplicates.items())
        ids = "、".join(other for other, _ in duplicates.values())
        super().__init__(f"未发布：{said}。同一份文件只发布一次；要更新它，请用 {ids} 作文件名重新上传并确认替换。",
                         "publish it under the id it already has")
        self.duplicates = {doc_id: other for doc_id, (other, _) in duplicates.items()}


class ReplaceNotConfirmed(PublishError):
    """Publishing would replace published documents (or corpus files), and the editor has not confirmed it."""

    def __init__(self, replacing: dict[str, str]) -> None:
        super().__init__("未发布：将替换 " + "；".join(replacing.values()) +
                         "。请先预览，确认无误后确认替换再发布（旧版本会保留在历史版本中）。",
                         "confirm the replacement")
        self.replacing = replacing


@dataclass
class Upload:
    """One uploaded file: where it lies now and the name the editor gave it (its document id is the name's stem)."""

    path: Path
    name: str

    @property
    def doc_id(self) -> str:
        return Path(self.name).stem


class Loaded(NamedTuple):
    """An upload as read: its document, its own front matter, the Markdown the corpus will hold, and the hash of
    that Markdown's text as the index reads it (what a duplicate shares)."""

    upload: Upload
    doc: PolicyDocument
    front: dict[str, object]
    markdown: str
    text_hash: str


def check_uploads(found: list[Upload]) -> list[Upload]:
    """The uploads, or `PublishError` for none, a hidden or too long name or two files for one document."""
    if not found:
        raise PublishError("请先选择要上传的文件。")
    hidden = [u.name for u in found if u.name.startswith(".")]
    if hidden:
        raise PublishError(f"未发布：{'、'.join(hidden)} 的文件名以“.”开头（隐藏文件不会被索引），请改名后再上传。")
    long = [u.name for u in found if len(u.doc_id.encode("utf-8")) > MAX_ID_BYTES]
    if long:
        raise PublishError(f"未发布：{'、'.join(long)} 的文件名过长（不含扩展名最多 {MAX_ID_BYTES} 字节，约 "
                           f"{MAX_ID_BYTES // 3} 个汉字），请改短后再上传。")
    by_id: dict[str, list[str]] = {}
    for u in found:
        by_id.setdefault(u.doc_id, []).append(u.name)
    clashes = [" 与 ".join(names) for names in by_id.values() if len(names) > 1]
    if clashes:
        raise PublishError(f"未发布：{'；'.join(clashes)} 会成为同一个文档，请改名后分开上传。")
    return found


def check_fields(fields: dict[str, str]) -> dict[str, str]:
    """The metadata given with an upload, or `FieldError` naming a field that is not Unicode text or a date that is
    no date (2018-02-30)."""
    for name, value in fields.items():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as e:
            bad = f"U+{ord(value[e.start]):04X}"
            raise FieldError(name, f"未发布：字段 {name} 含有无效字符（孤立的代理码位 {bad}）。") from None
        if name.endswith("_date") and value.strip():
            try:
                dt.date.fromisoformat(value.strip())
            except ValueError:
                raise FieldError(name, f"未发布：字段 {name} 的值“{value.strip()[:20]}”不是有效日期（YYYY-MM-DD）。") \
                    from None
    return fields


def read_uploads(found: list[Upload], fields: dict[str, str], limits: Limits, max_chars: int) -> list[Loaded]:
    """Every upload as read (`Loaded`), the given non-empty fields overriding the file's; all or none
    (`PublishError` naming each file that cannot be read and why). Each is read in a child process within the
    reading budget of `limits`, so that a hostile file is refused without holding the server."""
    unsupported = [u.name for u in check_uploads(found) if Path(u.name).suffix.lower() not in SUFFIXES]
    if unsupported:
        raise PublishError(f"未发布：{'、'.join(unsupported)} 不是支持的文件类型（{' '.join(SUFFIXES)}）。")
    given = {name: value.strip() for name, value in check_fields(fields).items() if value and value.strip()}
    loaded, problems = [], []
    for upload in found:
        try:
            doc, front, markdown, text_hash = run_bounded(read_upload, upload.path, upload.name, given, limits,
                                                          max_chars, name=upload.name, limits=limits)
            loaded.append(Loaded(upload, doc, front, markdown, text_hash))
        except CorpusError as e:
            problems.append(f"{upload.name}: {e.reason}" + (f"（{e.hint}）" if e.hint else ""))
    if problems:
        raise PublishError("未发布，以下文件有问题：" + "；".join(problems))
    return loaded


def read_upload(path: Path, name: str, fields: dict[str, str], limits: Limits,
                max_chars: int) -> tuple[PolicyDocument, dict[str, object], str, str]:
    """One upload as `Loaded` holds it (run in the reading child): it is read and parsed, and so is the Markdown
    it becomes, as the index will read it."""
    doc = load_document(path, path.parent, limits)
    for key, value in fields.items():
        setattr(doc, key, value)
    parse_bounded(doc, name, max_chars, limits)
    front: dict[str, object] = {}
    if path.suffix.lower() in (".md", ".markdown"):
        front = split_front_matter(path.read_text(encoding="utf-8-sig"), name, limits)[0]
    markdown = render_markdown(doc, front)
    with tempfile.TemporaryDirectory(prefix="policy-staged-") as folder:
        staged = Path(folder) / f"{Path(name).stem}.md"
        staged.write_text(markdown, encoding="utf-8")
        again = load_document(staged, staged.parent, limits)
        parse_bounded(again, name, max_chars, limits)
    return doc, front, markdown, hashlib.sha256(again.text.encode("utf-8")).hexdigest()


def render_markdown(doc: PolicyDocument, front: dict[str, object]) -> str:
    """The document as the corpus keeps it: front matter (every field the file had, e.g. `source` or `note`, then
    the given and the inferred ones) and its text."""
    meta = {str(k): v for k, v in front.items()}
    meta.update({name: getattr(doc, name) for name in FIELDS if name != "source" and getattr(doc, name)})
    return f"---\n{yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)}---\n{doc.text}\n"


def refuse_duplicates(loaded: list[Loaded], rows: list[DocumentRow]) -> None:
    """`DuplicateDocument` when an upload's text is already published under another id (or twice in this
    publish); a document republished under its own id is no duplicate."""
    publishing = {item.upload.doc_id for item in loaded}
    owners = {row.text_hash: (row.doc_id, row.title) for row in rows
              if row.state != REMOVED and row.doc_id not in publishing}
    found = {}
    for item in loaded:
        other = owners.get(item.text_hash)
        if other is not None:
            found[item.upload.doc_id] = other
        owners.setdefault(item.text_hash, (item.upload.doc_id, item.doc.title))
    if found:
        raise DuplicateDocument(found)


def replaced(rows: list[DocumentRow], corpus: Path, doc_ids: list[str]) -> dict[str, str]:
    """doc id → what publishing it would replace (a published document, or a file of that name in the corpus)."""
    known = {r.doc_id: r for r in rows if r.state != REMOVED}
    found = {}
    for doc_id in doc_ids:
        row = known.get(doc_id)
        if row is not None:
            found[doc_id] = (f"《{row.title.strip('《》')}》（{row.clauses} 条款，索引于 "
                             f"{row.indexed_at.replace('T', ' ')}）")
        elif files := corpus_files(corpus, doc_id):
            found[doc_id] = "语料目录中的 " + "、".join(f.name for f in files)
    return found


def corpus_files(corpus: Path, doc_id: str) -> list[Path]:
    return [f for f in sorted(corpus.glob(f"{glob_escape(doc_id)}.*")) if f.suffix.lower() in SUFFIXES and f.is_file()]


def glob_escape(text: str) -> str:
    return re.sub(r"([*?\[])", r"[\1]", text)


@dataclass
class CorpusChange:
    """The files one publish writes, moves and replaces in the corpus, undone together when it fails."""

    corpus: Path
    stamp: str = field(default_factory=lambda: time.strftime("%Y%m%d-%H%M%S"))
    _undo: list[Callable[[], None]] = field(default_factory=list)

    def folder(self, path: Path) -> Path:
        if not path.is_dir():
            path.mkdir(parents=True)
            self._undo.append(lambda: path.rmdir() if not any(path.iterdir()) else None)
        return path

    def aside(self, file: Path, keep: Path) -> None:
        """Move `file` into `keep` as `{name}.replaced-{stamp}` (its version stays in the registry's history)."""
        target = keep / f"{file.name}.replaced-{self.stamp}"
        n = 1
        while target.exists():
            n += 1
            target = keep / f"{file.name}.replaced-{self.stamp}-{n}"
        os.replace(file, target)
        self._undo.append(lambda: os.replace(target, file))

    def write(self, target: Path, data: bytes) -> None:
        """`target` (which must not exist) written; undone, it is gone."""
        _write_whole(target, data)
        self._undo.append(lambda: target.unlink(missing_ok=True))

    def replace(self, target: Path, data: bytes) -> None:
        """`target` (which exists) rewritten; undone, its old bytes come back."""
        old = target.read_bytes()
        _write_whole(target, data)
        self._undo.append(lambda: _write_whole(target, old))

    def undo(self) -> None:
        for step in reversed(self._undo):
            step()
        self._undo.clear()


def _write_whole(target: Path, data: bytes) -> None:
    """`target` written whole or not at all (a hidden file renamed over it): a reader never sees half of it."""
    handle, temporary = tempfile.mkstemp(prefix=".publishing-", dir=target.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def write_markdown(item: Loaded, change: CorpusChange) -> Path:
    """The document into the corpus as Markdown; the uploaded file kept under .originals/. Another corpus file of
    the same document (say the .txt this .md replaces), and an earlier original of the same name, move to
    .originals/ too: nothing is lost, even a file never indexed."""
    corpus, upload = change.corpus, item.upload
    keep = change.folder(change.folder(corpus) / ".originals")
    for other in corpus_files(corpus, upload.doc_id):
        change.aside(other, keep)
    target = corpus / f"{upload.doc_id}.md"
    change.write(target, item.markdown.encode("utf-8"))
    if (keep / upload.name).exists():
        change.aside(keep / upload.name, keep)
    change.write(keep / upload.name, upload.path.read_bytes())
    return target


def publish_files(loaded: list[Loaded], corpus: Path, reindex: Callable[[], IndexSummary],
                  indexed: Callable[[str], str | None]) -> IndexSummary:
    """Write the uploads into the corpus and reindex it (`reindex`); unless every upload is then indexed from the
    file written for it (`indexed`: a document's file hash in the registry, None when it has none), the corpus is
    put back as it was and `PublishError` says why (an error of the reindex itself is raised as it was)."""
    with _changing:
        change = CorpusChange(corpus)
        written: dict[str, Path] = {}
        try:
            for item in loaded:
                written[item.upload.doc_id] = write_markdown(item, change)
            summary = reindex()
        except BaseException:
            if len(written) < len(loaded) or not all(_indexed_from(indexed, d, f) for d, f in written.items()):
                change.undo()
            raise
        missing = [doc_id for doc_id, file in written.items() if not _indexed_from(indexed, doc_id, file)]
        if missing:
            change.undo()
            why = [e for e in summary.errors if any(e.startswith((f"{doc_id}.", f"{corpus.name}/{doc_id}."))
                                                    for doc_id in missing)]
            raise PublishError(f"未发布：{'、'.join(missing)} 未能编入索引" + (f"：{'；'.join(why)}" if why else "。"))
        return summary


def _indexed_from(indexed: Callable[[str], str | None], doc_id: str, file: Path) -> bool:
    try:
        return indexed(doc_id) == hashlib.sha256(file.read_bytes()).hexdigest()
    except OSError:
        return False


def change_status(row: DocumentRow, status: str, replaced_by: str, limits: Limits,
                  reindex: Callable[[Path], IndexSummary], indexed: Callable[[str], str | None]) -> IndexSummary:
    """A published document's new status (and what replaces it) written into its corpus file's front matter and
    published (`reindex` of its folder); unless the document is then indexed from the changed file, the file is
    put back as it was. Only Markdown files of the corpus can be changed this way."""
    if status not in STATUSES:
        raise PublishError(f"状态“{status}”不是可选的状态（{'、'.join(STATUSES)}）。")
    check_fields({"replaced_by": replaced_by})
    source = Path(row.path)
    if source.suffix.lower() not in (".md", ".markdown") or not source.exists():
        raise PublishError(f"{source.name} 不是语料中的 Markdown 文件，请修改原文件后重新发布。")
    try:
        meta, body = split_front_matter(source.read_text(encoding="utf-8"), source.name, limits)
    except CorpusError as e:
        raise PublishError(f"未修改：{source.name}: {e.reason}") from e
    meta["status"] = status
    if replaced_by.strip():
        meta["replaced_by"] = replaced_by.strip()
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    with _changing:
        change = CorpusChange(source.parent)
        change.replace(source, f"---\n{front}---\n{body.lstrip(chr(10))}".encode())
        try:
            summary = reindex(Path(row.root))
        except BaseException:
            if not _indexed_from(indexed, row.doc_id, source):
                change.undo()
            raise
        if not _indexed_from(indexed, row.doc_id, source):
            change.undo()
            why = [e for e in summary.errors if source.name in e]
            raise PublishError(f"未修改：{row.doc_id} 未能重新编入索引" + (f"：{'；'.join(why)}" if why else "。"))
        return summary
