"""The staff web UI (Gradio Blocks): a chat whose answers show their cited clauses and why they were chosen."""

from __future__ import annotations

import html
import json
import queue
import threading
from collections.abc import Iterator
from typing import Any

import gradio as gr

from assistant.answer.records import Answer, Citation
from assistant.channels.chat_text import as_text
from assistant.channels.per_client import PerClientLimit
from assistant.config import LimitSettings
from assistant.conversation import MAX_TURN_CHARS, Conversation, Turn
from assistant.errors import AssistantError
from assistant.feedback import FeedbackStore, answer_record
from assistant.retrieve import Retrieval
from assistant.service import Assistant, bound_input

SOURCES_HINT = "<p>提问后，这里显示答复引用的条款原文。</p>"
EXAMPLES = ["政务热线电话太多打不通，政府会整合吗？", "政务公开考核分值是多少？", "政府网站要怎么集约化建设？"]
# the scores table: rank, document, clause, dense cosine, BM25 score, reciprocal-rank fusion, the judge's relevance,
# the answer's citation number
SCORE_COLUMNS = ["#", "文件", "条款", "语义相似度", "关键词", "融合", "相关度", "引用"]
_CSS = """
.pa-source {border: 1px solid #ddd; border-radius: 8px; padding: 8px 12px; margin-bottom: 10px;}
.pa-badge {display: inline-block; border-radius: 4px; padding: 0 6px; font-size: 0.85em; color: #fff;}
.pa-in-force {background: #2e7d32;} .pa-not-in-force {background: #c62828;}
.pa-source mark {background: #fff3b0;}
.pa-scores td, .pa-scores th {padding: 2px 6px; font-size: 0.85em; white-space: nowrap;}
.pa-scores td.pa-title {max-width: 8em; overflow: hidden; text-overflow: ellipsis;}
.pa-scroll {overflow-x: auto;}
.pa-header, .pa-header p {white-space: nowrap; overflow: hidden; text-overflow: ellipsis;}
"""


MAX_PICKS = 3  # as many as outcome.MAX_CANDIDATES


def sources_html(answer: Answer) -> str:
    """The cited clauses: reference, status badge, full text with the sentences used highlighted."""
    if answer.outcome == "candidates":
        lead = '<p class="pa-candidates">没有条款明确回答该问题。以下为候选条款，点「查看」按钮可得其答复：</p>'
        return _mode(answer) + lead + "".join(_source(c) for c in answer.candidates)
    if answer.refused or not answer.citations:
        none = "<p>没有引用条款。</p>" if not answer.refused else "<p>未找到相关条款，已拒绝回答。</p>"
        return _mode(answer) + none
    return _mode(answer) + "".join(_source(c) for c in answer.citations)


def picks(last: str) -> list[Any]:
    """The candidate buttons: each shown with its citation when the last answer offered candidates."""
    offered = json.loads(last).get("candidates", []) if last else []
    return [gr.update(visible=n <= len(offered),
                      value=f"查看 {n}. {offered[n - 1]['reference']}" if n <= len(offered) else "")
            for n in range(1, MAX_PICKS + 1)]


def _mode(answer: Answer) -> str:
    """How a follow-up was read, how the answer was written, and for an LLM answer whether it verified."""
    read = f'<p class="pa-asked">按上文理解为：{html.escape(answer.asked)}</p>' if answer.asked else ""
    return read + _written(answer)


def _written(answer: Answer) -> str:
    if answer.mode == "generative":
        state = ("已核验：每句都有引用，数字与文号均见于所引条款" if answer.verified
                 else "部分核验：无依据的句子已删除，数字不符的句子已换为条款原文")
        return f'<p class="pa-mode" data-verified="{str(answer.verified).lower()}">大模型解读 · {state}</p>'
    if answer.fallback:
        return f'<p class="pa-mode">条款原文摘录（大模型答复未采用：{html.escape(answer.fallback[:80])}）</p>'
    return ""


def _source(citation: Citation) -> str:
    clause = citation.clause
    text = html.escape(clause.text)
    for sentence in citation.sentences:
        original = html.escape(sentence)
        if original and original in text:
            text = text.replace(original, f"<mark>{original}</mark>", 1)
    badge = "pa-in-force" if clause.in_force() else "pa-not-in-force"
    number = f"（{html.escape(clause.doc_number)}）" if clause.doc_number else ""
    role = {"interpreted": "（所解读的条款）", "candidate": "（候选）"}.get(citation.role, "")
    kind = "政策解读 · " if clause.metadata.get("kind") == "interpretation" else ""
    return (f'<div class="pa-source" data-clause="{html.escape(clause.label)}">'
            f"<b>[{citation.n}]</b> 《{html.escape(clause.title.strip('《》'))}》{number} "
            f'<b class="pa-label">{html.escape(clause.label)}</b>{role} '
            f'<span class="pa-badge {badge}">{html.escape(clause.status or "现行有效")}</span>'
            f"<div><small>{kind}{html.escape(clause.heading)}</small></div>"
            f"<p>{text.replace(chr(10), '<br>')}</p></div>")


def scores_html(answer: Answer, retrieval: Retrieval, top: int = 10) -> str:
    """The best candidates with the evidence for them (dense, BM25, fused scores and relevance)."""
    cited = {c.clause.clause_id: c.n for c in answer.citations}
    head = "".join(f"<th>{name}</th>" for name in SCORE_COLUMNS)
    rows = []
    for rank, candidate in enumerate(retrieval.candidates[:top], 1):
        clause = candidate.clause
        title = html.escape(clause.title.strip("《》"))  # cut to the column's width; whole on hover
        cells = [html.escape(clause.label), f"{candidate.dense:.3f}", f"{candidate.lexical:.2f}",
                 f"{candidate.fused:.4f}", f"{candidate.relevance:.3f}",
                 f"[{cited[clause.clause_id]}]" if clause.clause_id in cited else ""]
        rows.append(f'<tr><td>{rank}</td><td class="pa-title" title="{title}">{title}</td>'
                    + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    return (f'<div class="pa-scroll"><table class="pa-scores"><thead><tr>{head}</tr></thead>'
            f'<tbody>{"".join(rows)}</tbody></table></div>')


def _text(content: Any) -> str:
    """A chat message's text: Gradio gives a string, or a list of parts such as {"type": "text", "text": …}. The
    chat takes text only: any other part (a file, an image) is refused, whatever the client sent."""
    if isinstance(content, str):
        return content
    if isinstance(content, list) and all(isinstance(p, dict) and p.get("type") == "text" for p in content):
        return "".join(str(p.get("text", "")) for p in content)
    raise gr.Error("对话只接受文字。")


def conversation(history: Any, limits: LimitSettings) -> list[dict[str, str]]:
    """The client's chat history, checked on the server: text-only messages of the user and the assistant, at most
    `max_history_turns` exchanges; anything else is refused before any work is done."""
    if not isinstance(history, list):
        raise gr.Error("对话记录无效，请清空对话后重新提问。")
    if len(history) > 2 * limits.max_history_turns:
        raise gr.Error("对话过长，请清空对话后重新提问。")
    messages = []
    for message in history:
        role = message.get("role") if isinstance(message, dict) else None
        if role not in ("user", "assistant"):
            raise gr.Error("对话记录无效，请清空对话后重新提问。")
        messages.append({"role": str(role), "content": _text(message.get("content"))})
    return messages


KEPT_TURNS = 3


def with_turns(previous: list[str], kept: Any) -> list[Turn | str]:
    """The conversation's earlier questions, the last of them as the turns this session kept (their readings and
    cited clauses) when those are the same questions; a history that does not match them is taken as questions."""
    turns = [Turn.loads(t) for t in kept if isinstance(t, str)] if isinstance(kept, list) else []
    if turns and [t.question for t in turns] == [q[-MAX_TURN_CHARS:] for q in previous[-len(turns):]]:
        return [*previous[:-len(turns)], *turns]
    return list(previous)


def _answering(assistant: Assistant, question: str, previous: Conversation) -> Iterator[
        tuple[str, tuple[Answer, Retrieval] | None]]:
    """(draft text, None) while an LLM writes, then ("", (answer, retrieval)); errors the user can act on become
    `gr.Error`."""
    try:
        bound_input(question, previous, assistant.settings.limits)  # before a thread is started for it
        if not assistant.llm_enabled:
            yield "", assistant.ask_traced(question, previous)
            return
    except AssistantError as e:
        raise gr.Error(html.escape(e.message)) from e
    drafts: queue.Queue[str | None] = queue.Queue()
    outcome: dict[str, Any] = {}

    def work() -> None:
        try:
            outcome["result"] = assistant.ask_traced(question, previous, on_text=drafts.put)
        except Exception as e:  # handed to the generator below
            outcome["error"] = e
        finally:
            drafts.put(None)

    threading.Thread(target=work, name="answer", daemon=True).start()
    while (draft := drafts.get()) is not None:
        yield draft, None
    if "error" in outcome:
        error = outcome["error"]
        raise gr.Error(error.message if isinstance(error, AssistantError) else "回答时出错，请稍后再试。") from error
    yield "", outcome["result"]


def build_ui(assistant: Assistant, feedback: FeedbackStore, editors: bool = False) -> gr.Blocks:
    """The Gradio app: one chat per browser session, with its sources panel and feedback on each answer;
    `editors`: the editors' page is on (the header links to it)."""

    def respond(message: str, history: list[dict[str, Any]], kept: Any = None) -> Iterator[tuple[Any, ...]]:
        history = conversation(history, assistant.settings.limits)
        message = message.strip() if isinstance(message, str) else ""
        if not message:
            yield history, "", gr.update(), gr.update(), gr.update(), gr.update()
            return
        previous = with_turns([m["content"] for m in history if m["role"] == "user" and m["content"]], kept)
        asked = [*history, {"role": "user", "content": message}]
        answer, retrieval = None, None
        for text, result in _answering(assistant, message, previous):
            if result is None:  # the LLM is still writing: show its draft, marked as not yet verified
                yield [*asked, {"role": "assistant", "content": f"{as_text(text)} ▌\n\n（生成中，尚未核验）"}], "", \
                    gr.update(), gr.update(), gr.update(), gr.update()
            else:
                answer, retrieval = result
        assert answer is not None and retrieval is not None
        history = [*asked, {"role": "assistant", "content": as_text(answer.text)}]
        turns = [t.dumps() for t in [*previous, Turn.of(answer)] if isinstance(t, Turn)][-KEPT_TURNS:]
        yield history, "", sources_html(answer), scores_html(answer, retrieval), answer_record(answer), turns

    def respond_at_once(message: str, history: list[dict[str, Any]], kept: Any = None) -> tuple[Any, ...]:
        """Without an LLM there is nothing to stream: a plain function spares Gradio's generator machinery
        (about 100 ms of p95 with 20 users asking)."""
        *_, last = respond(message, history, kept)
        return last

    web = assistant.settings.web
    ratings = PerClientLimit(web.feedback_per_minute)  # anonymous writes into feedback.sqlite3

    def rate(rating: str, comment: str, last: str, request: gr.Request) -> tuple[str, str]:
        comment = comment if isinstance(comment, str) else ""
        if len(comment) > web.max_comment_chars:
            raise gr.Error(f"意见过长（{len(comment)} 字），请控制在 {web.max_comment_chars} 字以内。")
        if not last:
            return "先提问，再评价答复。", comment
        if ratings.wait(request.client.host if request.client else "?") > 0:
            raise gr.Error("评价过于频繁，请稍后再试。")
        feedback.add(rating, comment or "", json.loads(last))
        return ("已记录：有帮助" if rating == "up" else "已记录：没帮助") + "，谢谢。", ""

    def rate_up(comment: str, last: str, request: gr.Request) -> tuple[str, str]:
        return rate("up", comment, last, request)

    def rate_down(comment: str, last: str, request: gr.Request) -> tuple[str, str]:
        return rate("down", comment, last, request)

    with gr.Blocks(title="政策解读助手") as ui:
        gr.Markdown("## 政策解读助手 · 答复测试" + ("　　[编辑发布 →](editors/)" if editors else ""),
                    elem_classes="pa-header")
        with gr.Tab("问答", id="chat"):
            with gr.Row():
                with gr.Column(scale=3):
                    chat = gr.Chatbot(label="对话", show_label=False, height=460, elem_id="chat")
                    question = gr.Textbox(label="问题", placeholder="输入问题，回车发送", elem_id="question")
                    with gr.Row():
                        send = gr.Button("发送", variant="primary", elem_id="send")
                        clear = gr.Button("清空", elem_id="clear")
                    examples = gr.Examples(EXAMPLES, inputs=question, label="示例问题（点击即问）")
                    with gr.Row():
                        comment = gr.Textbox(label="对上一条答复的意见（可选）", scale=3, elem_id="comment",
                                             max_length=web.max_comment_chars)
                        # words, not emoji: a PC without an emoji font shows empty boxes
                        up = gr.Button("有帮助", scale=1, elem_id="thumbs-up")
                        down = gr.Button("没帮助", scale=1, elem_id="thumbs-down")
                    with gr.Row():  # shown when an answer offers candidates: each asks for its clause's answer
                        choices = [gr.Button("", visible=False, size="sm", elem_id=f"pick-{n}")
                                   for n in range(1, MAX_PICKS + 1)]
                    rated = gr.Markdown("", elem_id="rated")
                with gr.Column(scale=2):
                    gr.Markdown("### 引用条款")
                    sources = gr.HTML(SOURCES_HINT, elem_id="sources")
                    with gr.Accordion("为什么是这些条款（检索得分）", open=False):
                        scores = gr.HTML("", elem_id="scores")
        last = gr.State("")
        kept = gr.State([])  # this session's turns (`Turn.dumps`): what each was read as, which clauses it cited
        outputs = [chat, question, sources, scores, last, kept]
        # a new conversation: nothing of the last one stays on the page (its sources, scores, rating, turns)
        clear.click(lambda: ([], "", SOURCES_HINT, "", "", [], "", ""), None, [*outputs, rated, comment],
                    api_visibility="private", queue=False).then(picks, [last], choices, api_visibility="private",
                                                                queue=False)
        up.click(rate_up, [comment, last], [rated, comment], api_name="rate_up")
        down.click(rate_down, [comment, last], [rated, comment], api_name="rate_down")
        # two answers at a time: the work is CPU-bound, and the machine this runs on has few cores
        handler = respond if assistant.llm_enabled else respond_at_once
        question.submit(handler, [question, chat, kept], outputs, api_name="ask", concurrency_limit=2,
                        concurrency_id="answer").then(picks, [last], choices, api_visibility="private", queue=False)
        send.click(handler, [question, chat, kept], outputs, api_visibility="private", concurrency_id="answer"
                   ).then(picks, [last], choices, api_visibility="private", queue=False)
        # an example question is asked as soon as it is chosen
        examples.load_input_event.then(handler, [question, chat, kept], outputs, api_visibility="private",
                                       concurrency_id="answer").then(picks, [last], choices,
                                                                     api_visibility="private", queue=False)
        for n, choice in enumerate(choices, 1):  # a candidate button sends its number, as a WeChat user would
            choice.click(_sending(handler, str(n)), [chat, kept], outputs, api_visibility="private",
                         concurrency_id="answer").then(picks, [last], choices, api_visibility="private", queue=False)
    return ui


def _sending(handler: Any, message: str) -> Any:
    """`handler` asked `message` (a candidate's number), as a function of the chat and the kept turns."""
    import inspect

    if inspect.isgeneratorfunction(handler):
        def streamed(history: list[dict[str, Any]], kept: Any) -> Iterator[tuple[Any, ...]]:
            yield from handler(message, history, kept)
        return streamed
    return lambda history, kept: handler(message, history, kept)


def css() -> str:
    return _CSS
