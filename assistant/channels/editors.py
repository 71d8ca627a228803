"""The editors' page (Gradio, behind a login): upload, preview and publish policies; manage documents."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

import gradio as gr

from assistant.channels.api_support import without_paths
from assistant.channels.editor_views import (
    document_choices,
    documents_html,
    history_html,
    preview_html,
    published_text,
    report,
)
from assistant.errors import AssistantError
from assistant.evaluation import EvalResult, read_eval_file, run_eval
from assistant.feedback import FeedbackStore
from assistant.index.registry import DocumentRow
from assistant.ingest.loaders import SUFFIXES
from assistant.ingest.records import KIND_NAMES
from assistant.publishing import (
    FORM_FIELDS,
    STATUSES,
    Loaded,
    PublishError,
    ReplaceNotConfirmed,
    Upload,
    check_uploads,
    read_uploads,
)
from assistant.service import Assistant

# what a document change did, after the document's title
CHANGED = {"withdraw": "已暂停检索，不再用于答复。", "restore": "已恢复检索，重新用于答复。",
           "remove": "已从索引中删除，不再用于答复（文件仍在语料目录中，可“恢复检索”）。"}
# the indexing phases, as the progress bar names them
PHASES = {"reading": "读取文件", "registering": "登记条款", "embedding": "计算向量", "storing": "写入索引"}


def picked(doc_id: str | None) -> str:
    """The document chosen in the list; none chosen is refused."""
    if not doc_id or not doc_id.strip():
        raise refuse("请先在上方选择文档。")
    return doc_id.strip()


def refuse(message: str) -> gr.Error:
    """An error pop-up; its text is escaped, since Gradio shows it as HTML and it may quote a file's content, and
    names no server path."""
    return gr.Error(html.escape(without_paths(message)))


def uploads(files: Any) -> list[Upload]:
    """The files uploaded with this request. Only files inside Gradio's upload folder are read, whatever path a
    client names (Gradio checks this too)."""
    from gradio.utils import get_upload_folder

    folder = Path(get_upload_folder()).resolve()
    found = []
    for f in files or []:
        path = Path(f if isinstance(f, str) else f.name).resolve()
        if not path.is_relative_to(folder) or not path.is_file():
            raise refuse(f"{path.name}：只接受本次上传的文件。")
        found.append(Upload(path, path.name))
    try:
        return check_uploads(found)
    except PublishError as e:
        raise refuse(e.message) from e


# the eval tab's figures, named as editors read them
METRIC_NAMES = {"questions": "问题数", "hit@1": "首位命中率", "hit@3": "前三命中率",
                "hit@5": "前五命中率", "mrr@5": "前五平均倒数排名", "cited": "答复引用正确条款的比例",
                "refusal_accuracy": "库外问题拒答率", "false_refusal_rate": "可答问题误拒率"}
# form fields the preview fills from what it read in the file, when the editor left them empty
INFERRED = ("title", "doc_number", "issuer", "publish_date")


def build_editors(assistant: Assistant, feedback: FeedbackStore,
                  delete_cache: tuple[int, int] | None = None) -> gr.Blocks:
    """The editors' page. It is mounted behind a login (see server.py); `delete_cache`: (every, after) seconds,
    Gradio's deletion of old uploads."""
    settings = assistant.settings

    limits, max_chars = settings.index.limits(), settings.index.max_clause_chars

    def read(files: Any, values: tuple[str, ...]) -> list[Loaded]:
        try:
            return read_uploads(uploads(files), dict(zip(FORM_FIELDS, values, strict=True)), limits, max_chars)
        except PublishError as e:
            raise refuse(e.message) from e

    def preview(files: Any, *values: Any) -> tuple[Any, ...]:
        loaded = read(files, values[:-1])
        replacing = assistant.replacing([item.upload.doc_id for item in loaded])
        shown = preview_html([item.doc for item in loaded], replacing, max_chars)
        if len(loaded) != 1:  # several files: each keeps what it says itself
            return (shown, *[gr.update() for _ in INFERRED])
        doc = loaded[0].doc
        return (shown, *[gr.update(value=getattr(doc, name) or "") for name in INFERRED])

    def row_of(doc_id: str) -> DocumentRow | None:
        """The registry's row of a document (None when there is none, or the index cannot be read)."""
        try:
            return assistant.row(doc_id.strip())
        except AssistantError:
            return None

    def titles_of(doc_id: str) -> str:
        """《title》 of a document, as a report names it (its id when its row cannot be read)."""
        row = row_of(doc_id)
        return f"《{(row.title if row else '').strip('《》') or doc_id}》"

    def chosen() -> Any:
        return gr.update(choices=document_choices(assistant))

    def publish(files: Any, *values: Any, progress: Any = gr.Progress()) -> tuple[Any, ...]:  # noqa: B008
        *fields, confirmed = values
        found = uploads(files)
        try:
            summary, titles = assistant.publish(found, dict(zip(FORM_FIELDS, fields, strict=True)),
                                                replace=bool(confirmed), progress=lambda phase, done, total: progress(
                                                    done / max(total, 1), desc=PHASES.get(phase, phase)))
        except ReplaceNotConfirmed as e:
            raise refuse("未发布：将替换 " + "；".join(e.replacing.values()) +
                         "。请先预览，确认无误后勾选“确认替换”再发布（旧版本会保留在历史版本中）。") from e
        except PublishError as e:
            raise refuse(e.message) from e
        except AssistantError as e:  # e.g. another reindex holds the lock: nothing was written
            raise refuse(f"未发布：{e.message}。语料和索引均未改动，稍后再点“发布”即可。") from e
        return published_text(summary, titles), documents_html(assistant), chosen()

    def history(doc_id: str) -> str:
        try:
            versions = assistant.history(picked(doc_id))
        except AssistantError as e:
            raise refuse(e.message) from e
        return history_html(versions)

    def revert(doc_id: str, version: float | None) -> tuple[Any, ...]:
        if not (doc_id or "").strip() or not version:
            raise refuse("请先在上方选择文档，并填写要恢复的版本号（先点“历史版本”查看）。")
        try:
            summary = assistant.revert(picked(doc_id), int(version))
            versions = assistant.history(picked(doc_id))
        except AssistantError as e:
            raise refuse(e.message) from e
        done = f"{titles_of(picked(doc_id))}已恢复到第 {int(version)} 版，答复按该版本引用。"
        return report(done, summary), documents_html(assistant), history_html(versions), chosen()

    def change(action: str, doc_id: str) -> tuple[Any, ...]:
        doc_id = picked(doc_id)
        title = titles_of(doc_id)
        try:
            summary = getattr(assistant, action)(doc_id)
        except AssistantError as e:
            raise refuse(e.message) from e
        return report(title + CHANGED[action], summary), documents_html(assistant), chosen()

    def set_status(doc_id: str, status: str, replaced_by: str) -> tuple[Any, ...]:
        """Change a document's status in its corpus file's front matter and publish (nothing is re-embedded)."""
        row = row_of(doc_id or "")
        if row is None or not status:
            raise refuse("请先在上方选择文档，再选择新状态。")
        try:
            summary = assistant.set_status(row.doc_id, status, replaced_by)
        except AssistantError as e:
            raise refuse(e.message) from e
        done = f"{titles_of(row.doc_id)}的状态已改为“{status}”" + (
            "，答复引用它时会提示。" if status != "现行有效" else "。")
        return report(done, summary), documents_html(assistant), chosen()

    def evaluate(file: Any) -> str:
        if not file:
            raise refuse("请选择评测文件（JSON lines）。")
        try:
            items = read_eval_file(uploads([file])[0].path)
        except AssistantError as e:
            raise refuse(e.message) from e
        result = EvalResult(rows=list(run_eval(items, assistant.ask_traced)))
        metrics = result.metrics()
        counted = {"refusal_accuracy": metrics.get("out_of_corpus"), "questions": metrics.get("questions")}
        shown = {key: "—" if not counted.get(key, metrics.get("answerable")) or metrics.get(key) is None
                 else f"{metrics[key]:.3f}" if isinstance(metrics[key], float) else str(metrics[key])
                 for key in METRIC_NAMES}  # a figure over no questions is no figure
        return "\n".join(f"- {name}：{shown[key]}" for key, name in METRIC_NAMES.items())

    def export() -> str:
        path = Path(tempfile.mkdtemp()) / "feedback.csv"
        path.write_text(feedback.to_csv(), encoding="utf-8")
        return str(path)

    with gr.Blocks(title="政策解读助手 · 编辑发布", delete_cache=delete_cache) as ui:
        gr.Markdown("## 编辑发布　　[← 答复测试](../)", elem_classes="pa-header")
        with gr.Tab("上传与发布"):
            files = gr.File(label="政策文件（" + " ".join(SUFFIXES) + "）", file_count="multiple",
                            file_types=list(SUFFIXES), elem_id="upload")
            with gr.Row():
                title = gr.Textbox(label="标题（留空取文件内）", elem_id="field-title")
                doc_number = gr.Textbox(label="文号", elem_id="field-doc-number")
                issuer = gr.Textbox(label="发文机关", elem_id="field-issuer")
                publish_date = gr.Textbox(label="发布日期（YYYY-MM-DD）", elem_id="field-publish-date")
            with gr.Row():
                status = gr.Dropdown(["", *STATUSES], value="", label="状态（留空取文件内，默认现行有效）")
                kind = gr.Dropdown([("（取文件内）", ""), *[(name, k) for k, name in KIND_NAMES.items()]],
                                   value="", label="类型")
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
            with gr.Row():
                doc_id = gr.Dropdown(document_choices(assistant), value=None, label="选择文档（下表中的文档）",
                                     allow_custom_value=True, filterable=True, elem_id="doc-id", scale=3)
                withdraw = gr.Button("暂停检索", elem_id="withdraw")
                restore = gr.Button("恢复检索", elem_id="restore")
                remove = gr.Button("删除", variant="stop", elem_id="remove")
            with gr.Row():
                new_status = gr.Dropdown(list(STATUSES), label="新状态")
                new_replacement = gr.Textbox(label="取代它的文件（标题、文号或 ID，可选）")
                status_button = gr.Button("修改状态")
            with gr.Row():
                history_button = gr.Button("历史版本", elem_id="history")
                version = gr.Number(label="版本号", precision=0, minimum=1, elem_id="version")
                revert_button = gr.Button("恢复到此版本", elem_id="revert")
            managed = gr.Markdown("", elem_id="managed")
            versions = gr.HTML("", elem_id="versions")
            table = gr.HTML(lambda: documents_html(assistant), elem_id="documents")
        with gr.Tab("评测"):
            eval_file = gr.File(label="评测文件（JSON lines：question, kind, expect）", file_types=[".jsonl"])
            eval_button = gr.Button("运行评测")
            metrics = gr.Markdown("")
        with gr.Tab("答复反馈"):
            download = gr.Button("导出反馈 CSV", elem_id="export-feedback")
            csv_file = gr.File(label="feedback.csv")
        ui.load(chosen, None, doc_id, api_visibility="private", queue=False)  # the documents as this editor sees them
        preview_button.click(preview, [files, *fields, confirm], [shown, title, doc_number, issuer, publish_date],
                             api_name="preview")
        publish_button.click(publish, [files, *fields, confirm], [result, table, doc_id], api_name="publish",
                             concurrency_limit=1, concurrency_id="publish")
        history_button.click(history, doc_id, versions, api_name="history")
        revert_button.click(revert, [doc_id, version], [managed, table, versions, doc_id], api_name="revert",
                            concurrency_id="publish")
        for button, action in ((withdraw, "withdraw"), (restore, "restore"), (remove, "remove")):
            button.click(lambda d, a=action: change(a, d), doc_id, [managed, table, doc_id], api_name=action,
                         concurrency_id="publish")
        status_button.click(set_status, [doc_id, new_status, new_replacement], [managed, table, doc_id],
                            api_name="set_status", concurrency_id="publish")
        eval_button.click(evaluate, eval_file, metrics, api_name="evaluate")
        download.click(export, None, csv_file, api_name="export_feedback")
    return ui


def locked_page() -> gr.Blocks:
    """Shown instead of the editors' page while no editor login is configured."""
    with gr.Blocks(title="政策解读助手 · 编辑发布") as ui:
        gr.Markdown("## 编辑发布未开启\n\n设置 `POLICY_ASSISTANT_WEB__EDITOR_USERNAME` 和 "
                    "`POLICY_ASSISTANT_WEB__EDITOR_PASSWORD` 后重启服务。")
    return ui
