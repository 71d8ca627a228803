"""Publishing a policy into the corpus: read an upload with the editor's metadata, write it into the corpus as
Markdown with front matter (the original kept), and change a published document's status. The editors' page and
the HTTP API publish through these, by way of `Assistant.publish` and `Assistant.set_status`."""

from __future__ import annotations

import re
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

from assistant.errors import AssistantError, CorpusError
from assistant.index.registry import REMOVED, DocumentRow
from assistant.ingest.limits import Limits, parse_bounded
from assistant.ingest.loaders import FIELDS, SUFFIXES, load_document, split_front_matter
from assistant.ingest.records import PolicyDocument

# the metadata an editor may give with an upload (it overrides what the file says)
FORM_FIELDS = ("title", "doc_number", "issuer", "publish_date", "status", "kind", "interprets", "replaced_by")
STATUSES = ("现行有效", "已废止", "已修改", "历史版本")
KINDS = ("policy", "interpretation")
# a document id as a corpus file's name gives it: letters (any script), digits, '-', '_' and '.', not hidden
DOC_ID = re.compile(r"^(?!\.)[\w.\-]{1,120}$")


class PublishError(AssistantError):
    """Nothing was published: `message` says why, in an editor's words."""


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


def check_uploads(found: list[Upload]) -> list[Upload]:
    """The uploads, or `PublishError` for none, a hidden name or two files for one document."""
    if not found:
        raise PublishError("请先选择要上传的文件。")
    hidden = [u.name for u in found if u.name.startswith(".")]
    if hidden:
        raise PublishError(f"未发布：{'、'.join(hidden)} 的文件名以“.”开头（隐藏文件不会被索引），请改名后再上传。")
    by_id: dict[str, list[str]] = {}
    for u in found:
        by_id.setdefault(u.doc_id, []).append(u.name)
    clashes = [" 与 ".join(names) for names in by_id.values() if len(names) > 1]
    if clashes:
        raise PublishError(f"未发布：{'；'.join(clashes)} 会成为同一个文档，请改名后分开上传。")
    return found


def read_uploads(found: list[Upload], fields: dict[str, str], limits: Limits, max_chars: int
                 ) -> list[tuple[Upload, PolicyDocument, dict[str, object]]]:
    """Every upload as (upload, document, its own front matter), the given non-empty fields overriding the
    file's; all or none (`PublishError` naming each file that cannot be read and why)."""
    unsupported = [u.name for u in check_uploads(found) if Path(u.name).suffix.lower() not in SUFFIXES]
    if unsupported:
        raise PublishError(f"未发布：{'、'.join(unsupported)} 不是支持的文件类型（{' '.join(SUFFIXES)}）。")
    loaded, problems = [], []
    for upload in found:
        try:
            doc = load_document(upload.path, upload.path.parent, limits)
            for name, value in fields.items():
                if value and value.strip():
                    setattr(doc, name, value.strip())
            parse_bounded(doc, upload.name, max_chars, limits)
            front: dict[str, object] = {}
            if upload.path.suffix.lower() in (".md", ".markdown"):
                front = split_front_matter(upload.path.read_text(encoding="utf-8-sig"), upload.name, limits)[0]
            loaded.append((upload, doc, front))
        except CorpusError as e:
            problems.append(f"{upload.name}: {e.reason}" + (f"（{e.hint}）" if e.hint else ""))
    if problems:
        raise PublishError("未发布，以下文件有问题：" + "；".join(problems))
    return loaded


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


def write_markdown(doc: PolicyDocument, front: dict[str, object], corpus: Path, upload: Upload) -> Path:
    """The document into the corpus as Markdown with front matter (every field the file had, e.g. `source` or
    `note`, then the given and the inferred ones); the uploaded file kept under .originals/. Another corpus file
    of the same document (say the .txt this .md replaces) moves to .originals/ too: its versions are in the
    registry's history."""
    meta = {str(k): v for k, v in front.items()}
    meta.update({name: getattr(doc, name) for name in FIELDS if name != "source" and getattr(doc, name)})
    keep = corpus / ".originals"
    keep.mkdir(parents=True, exist_ok=True)
    target = corpus / f"{upload.doc_id}.md"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for other in corpus_files(corpus, upload.doc_id):  # nothing is lost, even a file never indexed
        other.rename(keep / f"{other.name}.replaced-{stamp}")
    text = f"---\n{yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)}---\n{doc.text}\n"
    target.write_text(text, encoding="utf-8")
    shutil.copyfile(upload.path, keep / upload.name)
    return target


def write_status(row: DocumentRow, status: str, replaced_by: str, limits: Limits) -> Path:
    """A published document's new status (and what replaces it) written into its corpus file's front matter; the
    folder to reindex is returned. Only Markdown files of the corpus can be changed this way."""
    if status not in STATUSES:
        raise PublishError(f"状态“{status}”不是可选的状态（{'、'.join(STATUSES)}）。")
    source = Path(row.path)
    if source.suffix.lower() not in (".md", ".markdown") or not source.exists():
        raise PublishError(f"{source.name} 不是语料中的 Markdown 文件，请修改原文件后重新发布。")
    meta, body = split_front_matter(source.read_text(encoding="utf-8"), source.name, limits)
    meta["status"] = status
    if replaced_by.strip():
        meta["replaced_by"] = replaced_by.strip()
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    source.write_text(f"---\n{front}---\n{body.lstrip(chr(10))}", encoding="utf-8")
    return Path(row.root)
