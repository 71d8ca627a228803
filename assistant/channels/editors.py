"""The editors' page (Gradio, behind a login): upload, preview and publish policies; manage documents."""

from __future__ import annotations

import html
import shutil
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from assistant.errors import AssistantError, CorpusError
from assistant.evaluation import EvalResult, read_eval_file, run_eval
from assistant.feedback import FeedbackStore
from assistant.index.registry import VersionRow
from assistant.ingest.clauses import parse_clauses
from assistant.ingest.limits import Limits, parse_bounded
from assistant.ingest.loaders import FIELDS, SUFFIXES, load_document, split_front_matter
from assistant.ingest.records import PolicyDocument
from assistant.service import Assistant

FORM_FIELDS = ("title", "doc_number", "issuer", "publish_date", "status", "kind", "interprets", "replaced_by")
STATUSES = ["现行有效", "已废止", "已修改", "历史版本"]


def refuse(message: str) -> gr.Error:
    """An error pop-up; its text is escaped, since Gradio shows it as HTML and it may quote a file's content."""
    return gr.Error(html.escape(message))


@dataclass
class Upload:
    """One file of this request's upload: where Gradio stored it and the name the editor gave it."""

    path: Path
    name: str

    @property
    def doc_id(self) -> str:
        return Path(self.name).stem


def uploads(files: Any) -> list[Upload]:
    """The files uploaded with this request. Only files inside Gradio's upload folder are read, whatever path a
    client names (Gradio checks this too); hidden names and two files for one document are refused."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()).resolve()
    found = []
    for f in files or []:
        path = Path(f if isinstance(f, str) else f.name).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise refuse(f"{path.name}：只接受本次上传的文件。")
        found.append(Upload(path, path.name))
    if not found:
        raise refuse("请先选择要上传的文件。")
    hidden = [u.name for u in found if u.name.startswith(".")]
    if hidden:
        raise refuse(f"未发布：{'、'.join(hidden)} 的文件名以“.”开头（隐藏文件不会被索引），请改名后再上传。")
    by_id: dict[str, list[str]] = {}
    for u in found:
        by_id.setdefault(u.doc_id, []).append(u.name)
    clashes = [" 与 ".join(names) for names in by_id.values() if len(names) > 1]
    if clashes:
        raise refuse(f"未发布：{'；'.join(clashes)} 会成为同一个文档，请改名后分开上传。")
    return found


def read_uploads(files: Any, fields: dict[str, str], limits: Limits, max_chars: int
                 ) -> list[tuple[Upload, PolicyDocument, dict[str, object]]]:
    """Every uploaded file as (upload, document, its own front matter), the form's non-empty fields overriding
    the file's; all or none."""
    loaded, problems = [], []
    for upload in uploads(files):
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
        raise refuse("未发布，以下文件有问题：" + "；".join(problems))
    return loaded


def replaced(assistant: Assistant, corpus: Path, doc_ids: list[str]) -> dict[str, str]:
    """doc id → what publishing it would replace (a published document, or a file of that name in the corpus)."""
    rows = {r.doc_id: r for r in assistant.documents() if r.state != "removed"} if assistant.has_index() else {}
    found = {}
    for doc_id in doc_ids:
        row = rows.get(doc_id)
        if row is not None:
            found[doc_id] = (f"《{row.title.strip('《》')}》（{row.clauses} 条款，索引于 "
                             f"{row.indexed_at.replace('T', ' ')}）")
        elif files := corpus_files(corpus, doc_id):
            found[doc_id] = "语料目录中的 " + "、".join(f.name for f in files)
    return found


def corpus_files(corpus: Path, doc_id: str) -> list[Path]:
    return [f for f in sorted(corpus.glob(f"{doc_id}.*")) if f.suffix.lower() in SUFFIXES and f.is_file()]


def preview_html(documents: list[PolicyDocument], replacing: dict[str, str], max_chars: int) -> str:
    """The clauses each document will be cited by, as editors check them before publishing, and what it replaces."""
    parts = []
    for doc in documents:
        clauses = parse_clauses(doc, max_chars=max_chars)
        rows = "".join(f"<tr><td><b>{html.escape(c.label or '（前言）')}</b></td>"
                       f"<td>{html.escape(c.text[:160])}{'…' if len(c.text) > 160 else ''}</td></tr>" for c in clauses)
        warning = ""
        if doc.doc_id in replacing:
            warning = (f"<p class='pa-replaces'>⚠ 发布将替换 {html.escape(replacing[doc.doc_id])}。"
                       "旧版本会保留在历史版本中，可随时恢复；发布前请勾选“确认替换”。</p>")
        inferred = " · ".join(f"{name}：{html.escape(value)}" for name, value in (
            ("标题", doc.title), ("文号", doc.doc_number or "（未识别）"), ("发文机关", doc.issuer or "（未识别）"),
            ("日期", doc.publish_date or "（未识别）")))
        ocr = ""
        if doc.extra.get("ocr"):
            ocr = (f"<p class='pa-ocr'>⚠ 本文件为扫描件，文字由 OCR 识别（{html.escape(doc.extra['ocr'])}），"
                   "请逐条核对。</p>")
        parts.append(f"<h4>《{html.escape(doc.title)}》 {html.escape(doc.doc_number)} · {html.escape(doc.status)} · "
                     f"{len(clauses)} 条款</h4><p class='pa-inferred'>识别结果：{inferred}（可在上方表单中更正）</p>"
                     f"{ocr}{warning}<table class='pa-preview'>{rows}</table>")
    return "".join(parts)


def write_markdown(doc: PolicyDocument, front: dict[str, object], corpus: Path, upload: Upload) -> Path:
    """The document into the corpus as Markdown with front matter (every field the file had, e.g. `source` or
    `note`, then the form's and the inferred ones); the uploaded file kept under .originals/. Another corpus file
    of the same document (say the .txt this .md replaces) moves to .originals/ too: its versions are in the
    registry's history."""
    meta = {str(k): v for k, v in front.items()}
    meta.update({name: getattr(doc, name) for name in FIELDS if name != "source" and getattr(doc, name)})
    keep = corpus / ".originals"
    keep.mkdir(exist_ok=True)
    target = corpus / f"{upload.doc_id}.md"
    stamp = time.strftime("%Y%m%d-%H%M%S")
    for other in corpus_files(corpus, upload.doc_id):  # nothing is lost, even a file never indexed
        other.rename(keep / f"{other.name}.replaced-{stamp}")
    text = f"---\n{yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)}---\n{doc.text}\n"
    target.write_text(text, encoding="utf-8")
    shutil.copyfile(upload.path, keep / upload.name)
    return target


def documents_html(assistant: Assistant) -> str:
    try:
        rows = [r for r in assistant.documents() if r.state != "removed"]
    except AssistantError as e:
        return f"<p>{html.escape(e.message)}</p>"
    body = "".join(
        f"<tr><td>{html.escape(r.doc_id)}</td><td>{html.escape(r.metadata.get('title', ''))}</td>"
        f"<td>{html.escape(r.metadata.get('doc_number', ''))}</td><td>{html.escape(r.metadata.get('status', ''))}</td>"
        f"<td>{r.state}</td><td>{r.clauses}</td><td>{html.escape(r.indexed_at.replace('T', ' '))}</td></tr>"
        for r in rows)
    head = "".join(f"<th>{h}</th>" for h in ("ID", "标题", "文号", "状态", "检索", "条款", "索引时间"))
    return f"<table class='pa-docs'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def history_html(versions: list[VersionRow]) -> str:
    """A document's versions, newest first; the newest is the one indexed now."""
    rows = "".join(f"<tr><td>{v.version}{'（当前）' if i == 0 else ''}</td>"
                   f"<td>{html.escape(v.saved_at.replace('T', ' '))}</td><td>{html.escape(v.file)}</td>"
                   f"<td>{html.escape(v.title)}</td><td>{v.clauses}</td></tr>"
                   for i, v in enumerate(reversed(versions)))
    head = "".join(f"<th>{h}</th>" for h in ("版本", "保存时间", "文件", "标题", "条款"))
    return f"<table class='pa-versions'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def summary_text(summary: Any) -> str:
    parts = [f"新增 {len(summary.added)}", f"更新 {len(summary.updated)}", f"移除 {len(summary.removed)}",
             f"未变 {summary.unchanged}", f"嵌入 {summary.embedded} 条", f"{summary.seconds:.1f} 秒"]
    text = "，".join(parts) + (f"；现为第 {summary.generation} 代索引。" if summary.switched else "；索引未变。")
    if summary.errors:
        text += "\n\n失败：" + "；".join(summary.errors)
    return text


def build_editors(assistant: Assistant, feedback: FeedbackStore,
                  delete_cache: tuple[int, int] | None = None) -> gr.Blocks:
    """The editors' page. It is mounted behind a login (see server.py); `delete_cache`: (every, after) seconds,
    Gradio's deletion of old uploads."""
    settings = assistant.settings

    limits, max_chars = settings.index.limits(), settings.index.max_clause_chars
    corpus = Path(settings.corpus_dir)

    def read(files: Any, values: tuple[str, ...]) -> list[tuple[Upload, PolicyDocument, dict[str, object]]]:
        return read_uploads(files, dict(zip(FORM_FIELDS, values, strict=True)), limits, max_chars)

    def preview(files: Any, *values: Any) -> str:
        loaded = read(files, values[:-1])
        replacing = replaced(assistant, corpus, [u.doc_id for u, _, _ in loaded])
        return preview_html([doc for _, doc, _ in loaded], replacing, max_chars)

    def publish(files: Any, *values: Any, progress: Any = gr.Progress()) -> tuple[str, str]:  # noqa: B008
        *fields, confirmed = values
        loaded = read(files, tuple(fields))
        replacing = replaced(assistant, corpus, [u.doc_id for u, _, _ in loaded])
        if replacing and not confirmed:
            raise refuse("未发布：将替换 " + "；".join(replacing.values()) +
                         "。请先预览，确认无误后勾选“确认替换”再发布（旧版本会保留在历史版本中）。")
        corpus.mkdir(parents=True, exist_ok=True)
        for upload, doc, front in loaded:
            write_markdown(doc, front, corpus, upload)
        try:
            summary = assistant.reindex([corpus], progress=lambda phase, done, total: progress(
                done / max(total, 1), desc=phase))
        except AssistantError as e:  # e.g. another reindex holds the lock: the files wait in the corpus
            raise refuse(f"文件已保存到语料目录，但索引未更新：{e.message}。稍后再点“发布”即可。") from e
        return summary_text(summary), documents_html(assistant)

    def history(doc_id: str) -> str:
        try:
            versions = assistant.history(doc_id.strip())
        except AssistantError as e:
            raise refuse(e.message) from e
        return history_html(versions)

    def revert(doc_id: str, version: float | None) -> tuple[str, str, str]:
        if not doc_id.strip() or not version:
            raise refuse("请填写文档 ID 和要恢复的版本号（先点“历史版本”查看）。")
        try:
            summary = assistant.revert(doc_id.strip(), int(version))
            versions = assistant.history(doc_id.strip())
        except AssistantError as e:
            raise refuse(e.message) from e
        return summary_text(summary), documents_html(assistant), history_html(versions)

    def change(action: str, doc_id: str) -> tuple[str, str]:
        if not doc_id.strip():
            raise refuse("请填写文档 ID（见下表）。")
        try:
            summary = getattr(assistant, action)(doc_id.strip())
        except AssistantError as e:
            raise refuse(e.message) from e
        return summary_text(summary), documents_html(assistant)

    def set_status(doc_id: str, status: str, replaced_by: str) -> tuple[str, str]:
        """Change a document's status in its corpus file's front matter and publish (nothing is re-embedded)."""
        row = next((r for r in assistant.documents() if r.doc_id == doc_id.strip()), None)
        if row is None or not status:
            raise refuse("请填写表中的文档 ID 并选择状态。")
        source = Path(row.path)
        if source.suffix.lower() not in (".md", ".markdown") or not source.exists():
            raise refuse(f"{source.name} 不是语料中的 Markdown 文件，请修改原文件后重新发布。")
        text = source.read_text(encoding="utf-8")
        meta, body = split_front_matter(text, source.name, limits)
        meta["status"] = status
        if replaced_by.strip():
            meta["replaced_by"] = replaced_by.strip()
        front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
        source.write_text(f"---\n{front}---\n{body.lstrip(chr(10))}", encoding="utf-8")
        return summary_text(assistant.reindex([Path(row.root)])), documents_html(assistant)

    def evaluate(file: Any) -> str:
        if not file:
            raise refuse("请选择评测文件（JSON lines）。")
        try:
            items = read_eval_file(uploads([file])[0].path)
        except AssistantError as e:
            raise refuse(e.message) from e
        result = EvalResult(rows=list(run_eval(items, assistant.ask_traced)))
        metrics = result.metrics()
        keys = ("questions", "hit@1", "hit@3", "hit@5", "mrr@5", "cited", "refusal_accuracy", "false_refusal_rate")
        shown = (f"{metrics[key]:.3f}" if isinstance(metrics[key], float) else str(metrics[key]) for key in keys)
        return "\n".join(f"- {key}: {value}" for key, value in zip(keys, shown, strict=True))

    def export() -> str:
        path = Path(tempfile.mkdtemp()) / "feedback.csv"
        path.write_text(feedback.to_csv(), encoding="utf-8")
        return str(path)

    with gr.Blocks(title="政策解读助手 · 编辑发布", delete_cache=delete_cache) as ui:
        gr.Markdown("## 编辑发布　　[← 答复测试](../)")
        with gr.Tab("上传与发布"):
            files = gr.File(label="政策文件（" + " ".join(SUFFIXES) + "）", file_count="multiple",
                            file_types=list(SUFFIXES), elem_id="upload")
            with gr.Row():
                title = gr.Textbox(label="标题（留空取文件内）", elem_id="field-title")
                doc_number = gr.Textbox(label="文号")
                issuer = gr.Textbox(label="发文机关")
                publish_date = gr.Textbox(label="发布日期（YYYY-MM-DD）")
            with gr.Row():
                status = gr.Dropdown(["", *STATUSES], value="", label="状态（留空取文件内，默认现行有效）")
                kind = gr.Dropdown(["", "policy", "interpretation"], value="", label="类型")
                interprets = gr.Textbox(label="所解读文件（解读填写）")
                replaced_by = gr.Textbox(label="被何文件取代")
            fields = [title, doc_number, issuer, publish_date, status, kind, interprets, replaced_by]
            with gr.Row():
                preview_button = gr.Button("预览条款", elem_id="preview")
                confirm = gr.Checkbox(False, label="确认替换同名的已发布文件（旧版本保留在历史版本中）",
                                      elem_id="confirm-replace")
                publish_button = gr.Button("发布", variant="primary", elem_id="publish")
            result = gr.Markdown("", elem_id="publish-result")
            shown = gr.HTML("", elem_id="preview-clauses")
        with gr.Tab("文档管理"):
            table = gr.HTML(lambda: documents_html(assistant), elem_id="documents")
            with gr.Row():
                doc_id = gr.Textbox(label="文档 ID", elem_id="doc-id")
                withdraw = gr.Button("暂停检索（withdraw）")
                restore = gr.Button("恢复（restore）")
                remove = gr.Button("删除（remove）", variant="stop")
            with gr.Row():
                new_status = gr.Dropdown(STATUSES, label="新状态")
                new_replacement = gr.Textbox(label="取代它的文件（标题、文号或 ID，可选）")
                status_button = gr.Button("修改状态")
            with gr.Row():
                history_button = gr.Button("历史版本", elem_id="history")
                version = gr.Number(label="版本号", precision=0, minimum=1, elem_id="version")
                revert_button = gr.Button("恢复到此版本", elem_id="revert")
            managed = gr.Markdown("")
            versions = gr.HTML("", elem_id="versions")
        with gr.Tab("评测"):
            eval_file = gr.File(label="评测文件（JSON lines：question, kind, expect）", file_types=[".jsonl"])
            eval_button = gr.Button("运行评测")
            metrics = gr.Markdown("")
        with gr.Tab("答复反馈"):
            download = gr.Button("导出反馈 CSV", elem_id="export-feedback")
            csv_file = gr.File(label="feedback.csv")
        preview_button.click(preview, [files, *fields, confirm], shown, api_name="preview")
        publish_button.click(publish, [files, *fields, confirm], [result, table], api_name="publish",
                             concurrency_limit=1, concurrency_id="publish")
        history_button.click(history, doc_id, versions, api_name="history")
        revert_button.click(revert, [doc_id, version], [managed, table, versions], api_name="revert",
                            concurrency_id="publish")
        for button, action in ((withdraw, "withdraw"), (restore, "restore"), (remove, "remove")):
            button.click(lambda d, a=action: change(a, d), doc_id, [managed, table], api_name=action,
                         concurrency_id="publish")
        status_button.click(set_status, [doc_id, new_status, new_replacement], [managed, table], api_name="set_status",
                            concurrency_id="publish")
        eval_button.click(evaluate, eval_file, metrics, api_name="evaluate")
        download.click(export, None, csv_file, api_name="export_feedback")
    return ui


def locked_page() -> gr.Blocks:
    """Shown instead of the editors' page while no editor login is configured."""
    with gr.Blocks(title="政策解读助手 · 编辑发布") as ui:
        gr.Markdown("## 编辑发布未开启\n\n设置 `POLICY_ASSISTANT_WEB__EDITOR_USERNAME` 和 "
                    "`POLICY_ASSISTANT_WEB__EDITOR_PASSWORD` 后重启服务。")
    return ui
