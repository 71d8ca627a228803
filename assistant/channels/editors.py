"""The editors' page (Gradio, behind a login): upload, preview and publish policies; manage documents."""

from __future__ import annotations

import html
import shutil
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr
import yaml

from assistant.errors import AssistantError, CorpusError
from assistant.evaluation import EvalResult, read_eval_file, run_eval
from assistant.feedback import FeedbackStore
from assistant.ingest.clauses import parse_clauses
from assistant.ingest.loaders import SUFFIXES, load_document, split_front_matter
from assistant.ingest.records import PolicyDocument
from assistant.service import Assistant

FORM_FIELDS = ("title", "doc_number", "issuer", "publish_date", "status", "kind", "interprets", "replaced_by")
STATUSES = ["现行有效", "已废止", "已修改", "历史版本"]


def _uploads(files: Any) -> list[Path]:
    paths = [Path(f if isinstance(f, str) else f.name) for f in (files or [])]
    if not paths:
        raise gr.Error("请先选择要上传的文件。")
    return paths


def read_uploads(files: Any, fields: dict[str, str], max_bytes: int) -> list[PolicyDocument]:
    """Every uploaded file as a document, the form's non-empty fields overriding its own; all or none."""
    documents, problems = [], []
    for path in _uploads(files):
        try:
            doc = load_document(path, path.parent, max_bytes=max_bytes)
            for name, value in fields.items():
                if value and value.strip():
                    setattr(doc, name, value.strip())
            if not parse_clauses(doc):
                raise CorpusError(path.name, "no clauses found in the text")
            documents.append(doc)
        except CorpusError as e:
            problems.append(f"{path.name}: {e.reason}" + (f"（{e.hint}）" if e.hint else ""))
    if problems:
        raise gr.Error("未发布，以下文件有问题：" + "；".join(problems))
    return documents


def preview_html(documents: list[PolicyDocument]) -> str:
    """The clauses each document will be cited by, as editors check them before publishing."""
    parts = []
    for doc in documents:
        clauses = parse_clauses(doc)
        rows = "".join(f"<tr><td><b>{html.escape(c.label or '（前言）')}</b></td>"
                       f"<td>{html.escape(c.text[:160])}{'…' if len(c.text) > 160 else ''}</td></tr>" for c in clauses)
        parts.append(f"<h4>《{html.escape(doc.title)}》 {html.escape(doc.doc_number)} · {html.escape(doc.status)} · "
                     f"{len(clauses)} 条款</h4><table class='pa-preview'>{rows}</table>")
    return "".join(parts)


def write_markdown(doc: PolicyDocument, corpus: Path, original: Path) -> Path:
    """The document into the corpus as Markdown with front matter; the uploaded file kept under .originals/."""
    meta = {name: getattr(doc, name) for name in ("title", "doc_number", "issuer", "publish_date",
                                                   "effective_date", "expiry_date", "status", "kind",
                                                   "interprets", "replaced_by", "replaces") if getattr(doc, name)}
    target = corpus / f"{original.stem}.md"
    front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
    target.write_text(f"---\n{front}---\n{doc.text}\n", encoding="utf-8")
    keep = corpus / ".originals"
    keep.mkdir(exist_ok=True)
    shutil.copyfile(original, keep / original.name)
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


def summary_text(summary: Any) -> str:
    parts = [f"新增 {len(summary.added)}", f"更新 {len(summary.updated)}", f"移除 {len(summary.removed)}",
             f"未变 {summary.unchanged}", f"嵌入 {summary.embedded} 条", f"{summary.seconds:.1f} 秒"]
    text = "，".join(parts) + (f"；现为第 {summary.generation} 代索引。" if summary.switched else "；索引未变。")
    if summary.errors:
        text += "\n\n失败：" + "；".join(summary.errors)
    return text


def build_editors(assistant: Assistant, feedback: FeedbackStore) -> gr.Blocks:
    """The editors' page. It is mounted behind a login (see server.py)."""
    settings = assistant.settings

    def preview(files: Any, *values: str) -> str:
        return preview_html(read_uploads(files, dict(zip(FORM_FIELDS, values, strict=True)),
                                         settings.index.max_file_bytes))

    def publish(files: Any, *values: str, progress: Any = gr.Progress()) -> tuple[str, str]:  # noqa: B008
        documents = read_uploads(files, dict(zip(FORM_FIELDS, values, strict=True)), settings.index.max_file_bytes)
        corpus = Path(settings.corpus_dir)
        corpus.mkdir(parents=True, exist_ok=True)
        for doc, original in zip(documents, _uploads(files), strict=True):
            write_markdown(doc, corpus, original)
        try:
            summary = assistant.reindex([corpus], progress=lambda phase, done, total: progress(
                done / max(total, 1), desc=phase))
        except AssistantError as e:  # e.g. another reindex holds the lock: the files wait in the corpus
            raise gr.Error(f"文件已保存到语料目录，但索引未更新：{e.message}。稍后再点“发布”即可。") from e
        return summary_text(summary), documents_html(assistant)

    def change(action: str, doc_id: str) -> tuple[str, str]:
        if not doc_id.strip():
            raise gr.Error("请填写文档 ID（见下表）。")
        try:
            summary = getattr(assistant, action)(doc_id.strip())
        except AssistantError as e:
            raise gr.Error(e.message) from e
        return summary_text(summary), documents_html(assistant)

    def set_status(doc_id: str, status: str, replaced_by: str) -> tuple[str, str]:
        """Change a document's status in its corpus file's front matter and publish (nothing is re-embedded)."""
        row = next((r for r in assistant.documents() if r.doc_id == doc_id.strip()), None)
        if row is None or not status:
            raise gr.Error("请填写表中的文档 ID 并选择状态。")
        source = Path(row.path)
        if source.suffix.lower() not in (".md", ".markdown") or not source.exists():
            raise gr.Error(f"{source.name} 不是语料中的 Markdown 文件，请修改原文件后重新发布。")
        text = source.read_text(encoding="utf-8")
        meta, body = split_front_matter(text, source.name)
        meta["status"] = status
        if replaced_by.strip():
            meta["replaced_by"] = replaced_by.strip()
        front = yaml.safe_dump(meta, allow_unicode=True, sort_keys=False)
        source.write_text(f"---\n{front}---\n{body.lstrip(chr(10))}", encoding="utf-8")
        return summary_text(assistant.reindex([Path(row.root)])), documents_html(assistant)

    def evaluate(file: Any) -> str:
        if not file:
            raise gr.Error("请选择评测文件（JSON lines）。")
        try:
            items = read_eval_file(Path(file if isinstance(file, str) else file.name))
        except AssistantError as e:
            raise gr.Error(e.message) from e
        result = EvalResult(rows=list(run_eval(items, assistant.ask_traced)))
        metrics = result.metrics()
        keys = ("questions", "hit@1", "hit@3", "hit@5", "mrr@5", "cited", "refusal_accuracy", "false_refusal_rate")
        shown = (f"{metrics[key]:.3f}" if isinstance(metrics[key], float) else str(metrics[key]) for key in keys)
        return "\n".join(f"- {key}: {value}" for key, value in zip(keys, shown, strict=True))

    def export() -> str:
        path = Path(tempfile.mkdtemp()) / "feedback.csv"
        path.write_text(feedback.to_csv(), encoding="utf-8")
        return str(path)

    with gr.Blocks(title="政策解读助手 · 编辑发布") as ui:
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
            managed = gr.Markdown("")
        with gr.Tab("评测"):
            eval_file = gr.File(label="评测文件（JSON lines：question, kind, expect）", file_types=[".jsonl"])
            eval_button = gr.Button("运行评测")
            metrics = gr.Markdown("")
        with gr.Tab("答复反馈"):
            download = gr.Button("导出反馈 CSV", elem_id="export-feedback")
            csv_file = gr.File(label="feedback.csv")
        preview_button.click(preview, [files, *fields], shown, api_name="preview")
        publish_button.click(publish, [files, *fields], [result, table], api_name="publish", concurrency_limit=1,
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
