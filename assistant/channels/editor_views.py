"""What the editors' page shows: the preview of an upload's clauses, the documents and their versions, and what
a publish, withdraw, restore or status change did, in an editor's words."""

from __future__ import annotations

import html
from typing import Any

from assistant.errors import AssistantError
from assistant.index.registry import ACTIVE, REMOVED, STATE_NAMES, DocumentRow, VersionRow
from assistant.ingest.clauses import parse_clauses
from assistant.ingest.records import PolicyDocument
from assistant.service import Assistant


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


def listed(assistant: Assistant) -> list[DocumentRow]:
    """The documents an editor manages (removed ones are gone from the list)."""
    return [r for r in assistant.documents() if r.state != REMOVED]


def documents_html(assistant: Assistant) -> str:
    try:
        rows = listed(assistant)
    except AssistantError as e:
        return f"<p>{html.escape(e.message)}</p>"
    body = "".join(
        f"<tr><td>{html.escape(r.doc_id)}</td><td>{html.escape(r.title)}</td>"
        f"<td>{html.escape(r.metadata.get('doc_number', '')) or '无文号'}</td>"
        f"<td>{html.escape(r.metadata.get('status', '')) or '现行有效'}</td>"
        f"<td>{STATE_NAMES.get(r.state, r.state)}</td><td>{r.clauses}</td>"
        f"<td>{html.escape(r.indexed_at.replace('T', ' '))}</td></tr>"
        for r in rows)
    head = "".join(f"<th>{h}</th>" for h in ("ID", "标题", "文号", "状态", "检索", "条款", "索引时间"))
    return f"<table class='pa-docs'><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def document_choices(assistant: Assistant) -> list[tuple[str, str]]:
    """(what the editor reads, document id) for each document, removed ones last (they can be restored): the editor
    picks a document by its title."""
    try:
        rows = sorted(assistant.documents(), key=lambda r: r.state == REMOVED)
    except AssistantError:
        return []
    return [(f"《{r.title.strip('《》') or r.doc_id}》 · {r.doc_id}"
             + (f"（{STATE_NAMES.get(r.state, r.state)}）" if r.state != ACTIVE else ""), r.doc_id) for r in rows]


def history_html(versions: list[VersionRow]) -> str:
    """A document's versions, newest first; the newest is the one indexed now."""
    rows = "".join(f"<tr><td>{v.version}{'（当前）' if i == 0 else ''}</td>"
                   f"<td>{html.escape(v.saved_at.replace('T', ' '))}</td><td>{html.escape(v.file)}</td>"
                   f"<td>{html.escape(v.title)}</td><td>{v.clauses}</td></tr>"
                   for i, v in enumerate(reversed(versions)))
    head = "".join(f"<th>{h}</th>" for h in ("版本", "保存时间", "文件", "标题", "条款"))
    return f"<table class='pa-versions'><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>"


def counts_text(summary: Any) -> str:
    """The index bookkeeping of a run, for the record under what it did."""
    parts = [f"新增 {len(summary.added)}", f"更新 {len(summary.updated)}", f"移除 {len(summary.removed)}",
             f"未变 {summary.unchanged}", f"嵌入 {summary.embedded} 条", f"{summary.seconds:.1f} 秒"]
    return "，".join(parts) + (f"；第 {summary.generation} 代索引" if summary.switched else "；索引未变")


def report(done: str, summary: Any) -> str:
    """What happened, in an editor's words, then the counts, then any file that failed."""
    text = f"{done}\n\n<small>{counts_text(summary)}</small>"
    if summary.errors:
        text += "\n\n失败：" + "；".join(summary.errors)
    return text


def published_text(summary: Any, titles: dict[str, str]) -> str:
    """What a publish did to each uploaded document (`titles`: doc id → title)."""
    said = []
    for doc_id, title in titles.items():
        name = f"《{title.strip('《》')}》"
        if doc_id in summary.added:
            said.append(f"{name}已发布，现用于答复。")
        elif doc_id in summary.updated:
            said.append(f"{name}已更新，答复按新版本引用；旧版本保留在历史版本中。")
        elif any(doc_id in e for e in summary.errors):
            said.append(f"{name}未能发布，见下方原因。")
        else:
            said.append(f"{name}与已发布的版本相同，未作改动。")
    return report("\n\n".join(said), summary)
