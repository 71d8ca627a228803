"""`policy-assistant`: serve | index | ask | chat | eval | demo | docs | keys | mcp | config."""

from __future__ import annotations

import itertools
import json
import logging
import statistics
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.cli_doors import keys, mcp
from assistant.cli_help import SUBCOMMAND_METAVAR, Command, Group, examples, show_usage_error
from assistant.config import Settings
from assistant.console import configure_logging, with_progress
from assistant.errors import AssistantError, InputTooLongError
from assistant.ingest.records import KIND_NAMES

app = typer.Typer(cls=Group, add_completion=False, no_args_is_help=True, subcommand_metavar=SUBCOMMAND_METAVAR,
                  help="政策解读助手：回答政策问题，并注明依据的具体条款。",
                  epilog=examples("policy-assistant serve", 'policy-assistant ask "政务公开考核分值是多少？"',
                                  "policy-assistant ask --help"))

IndexDir = Annotated[Path | None, typer.Option(
    "--index-dir", metavar="目录", help="索引目录（默认 $POLICY_ASSISTANT_INDEX_DIR 或 indexes/）。",
    show_default=False)]
SAMPLE_QUESTIONS = ("政务热线电话太多打不通，政府会整合吗？", "政务公开考核分值是多少？", "医保报销比例是多少？")
ASK_USAGE = ('用法：policy-assistant ask "问题"\n'
             "  或从标准输入每行读一个问题：policy-assistant ask < 问题.txt\n"
             "  连续提问、追问请用 policy-assistant chat。")
LOADING = ("加载模型…（每次运行 ask 都要重新加载，约十几秒；连续提问请用 policy-assistant chat，"
           "或启动 policy-assistant serve 后在网页上提问）")


def _settings(index_dir: Path | None) -> Settings:
    settings = Settings()
    if index_dir is not None:
        settings.index_dir = index_dir
    return settings


def _assistant(index_dir: Path | None) -> Any:
    from assistant.service import Assistant

    return Assistant(_settings(index_dir))


def _print_summary(summary: Any) -> None:
    if summary.switched:
        head = f"generation {summary.generation}: "
    else:
        head = "nothing changed in the index: "
    typer.echo(f"{head}{len(summary.added)} added, {len(summary.updated)} updated, {len(summary.removed)} removed, "
               f"{summary.unchanged} unchanged; {summary.embedded} clauses embedded, "
               f"{summary.records_added} records written, {summary.records_removed} retired; "
               f"{summary.documents} documents / {summary.clauses} clauses served; {summary.seconds:.1f} s")
    for label, ids in (("added", summary.added), ("updated", summary.updated), ("removed", summary.removed)):
        for doc_id in ids[:20]:
            typer.echo(f"  {label}: {doc_id}")
        if len(ids) > 20:
            typer.echo(f"  … and {len(ids) - 20} more {label}")
    for doc_id in summary.skipped:
        typer.echo(f"  skipped: {doc_id} (removed with `docs remove`; its file is unchanged — "
                   f"`docs restore {doc_id}` indexes it again)")
    for error in summary.errors:
        typer.echo(f"  failed: {error}", err=True)


@app.command(cls=Command, epilog=examples("policy-assistant index", "policy-assistant index corpus/新文件.md",
                                          "policy-assistant index --rebuild"))
def index(
    paths: Annotated[list[Path] | None, typer.Argument(metavar="路径", help="文件或文件夹（默认：corpus/）。",
                                                        show_default=False)] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="从头建一个新集合。")] = False,
    index_dir: IndexDir = None,
) -> None:
    """让索引与语料同步：嵌入新增或改动的文件，去掉已不存在的。

    新一代索引建成之前，提问仍用上一代。退出码 3：有文件失败（会列出；它们已索引的版本保持不变）。
    """
    assistant = _assistant(index_dir)
    summary = with_progress(lambda progress: assistant.reindex(paths, rebuild=rebuild, progress=progress))
    _print_summary(summary)
    if summary.errors:
        raise typer.Exit(code=3)


def _questions(question: str | None) -> Iterator[str] | None:
    """The question, or the non-empty lines of stdin as they come; None when there is nothing to ask."""
    if question is not None:
        return iter([question]) if question.strip() else None
    if sys.stdin is None:
        return None
    if sys.stdin.isatty():
        typer.echo("请每行输入一个问题，Ctrl+D 结束（连续提问、追问请用 policy-assistant chat）。", err=True)
    asked = (line for line in (raw.strip() for raw in sys.stdin) if line)
    first = next(asked, None)
    return None if first is None else itertools.chain([first], asked)


@app.command(cls=Command, epilog=examples('policy-assistant ask "政务公开考核分值是多少？"',
                                          "policy-assistant ask --json < 问题.txt"))
def ask(
    question: Annotated[str | None, typer.Argument(metavar="问题", help="要问的问题；省略时从标准输入每行读一个。",
                                                   show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="每个问题输出一行 JSON。")] = False,
    index_dir: IndexDir = None,
) -> None:
    """回答问题，并注明依据的条款。

    每次运行都要加载模型（约十几秒）；连续提问请用 chat，或启动 serve。
    """
    questions = _questions(question)
    if questions is None:
        typer.echo(ASK_USAGE, err=True)
        raise typer.Exit(2)
    assistant = _assistant(index_dir)
    if assistant.has_index():  # else the first question says how to build one, and no model is loaded
        typer.echo(LOADING, err=True)
    refused = 0
    for q in questions:
        try:
            answer = assistant.ask(q)
        except InputTooLongError as e:  # one line of stdin too long: say so, and go on with the next
            refused += 1
            if as_json:
                typer.echo(json.dumps({"question": q[:100], "error": e.message}, ensure_ascii=False))
            typer.echo(f"error: {e.message}", err=True)
            continue
        if as_json:
            typer.echo(json.dumps(answer.to_json(), ensure_ascii=False))
            sys.stdout.flush()
        else:
            typer.echo(answer.text)
    if refused:
        raise typer.Exit(2)


@app.command(cls=Command, epilog=examples("policy-assistant chat"))
def chat(index_dir: IndexDir = None) -> None:
    """在终端里对话：追问会结合前面的问题理解（Ctrl+D 或「再见」结束）。"""
    from assistant.conversation import Turn

    assistant = _assistant(index_dir)
    history: list[Turn] = []
    typer.echo("请输入问题（Ctrl+D 或「再见」结束）。", err=True)
    while True:
        try:
            question = input("问：").strip()
        except EOFError:
            break
        if question in ("再见", "再見", "exit", "quit"):
            break
        if not question:
            continue
        try:
            answer = assistant.ask(question, history)
        except InputTooLongError as e:
            typer.echo(f"{e.message}\n", err=True)
            continue
        history = [*history, Turn.of(answer)][-3:]
        if answer.asked:
            typer.echo(f"（理解为：{answer.asked}）")
        typer.echo(f"答：{answer.text}\n")


def _figure(value: Any) -> str:
    """A metric as printed: rates to three places; "—" where it has no questions to be measured on."""
    if value is None:
        return "—"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


@app.command("eval", cls=Command, epilog=examples("policy-assistant eval eval/seed_dev.jsonl",
                                                  "policy-assistant eval eval/seed_dev.jsonl --json"))
def evaluate(
    file: Annotated[Path, typer.Argument(metavar="文件", help="JSON lines：每行 {id, question, kind, expect, facts?, "
                                                             "not?}，或一段对话 {id, turns: [{question, kind, "
                                                             "expect}, ...]}。")],
    index_dir: IndexDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出各项指标（无题可算的为 null）。")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="列出每个问题的结果。")] = False,
) -> None:
    """评测检索与答复的质量。

    检索：hit@k 与 MRR@5；答复：引用了正确条款的比例 (cited)、库外问题拒答率、误拒率。

    答复内容：要点召回、引用精确率、正文长度、只有标题的答复。无题可算的指标显示为 —。
    """
    from assistant.evaluation import EvalResult, read_eval_file, run_eval

    items = read_eval_file(file)
    assistant = _assistant(index_dir)
    result = EvalResult()
    for row in run_eval(items, assistant.ask_traced):
        result.rows.append(row)
        if verbose:
            outcome = f"{row['outcome']} {_figure(row['confidence'])} rank {row['rank']}"
            read_as = f"（理解为：{row['asked']}）" if row.get("asked") else ""
            typer.echo(f"{row['id']:>10} {row['kind']:<13} {outcome:<26} {row['question']}{read_as}  → {row['top']}")
            if row.get("missing_facts"):
                typer.echo(f"{'':>10} missing facts {row['missing_facts']}: {row['answer']}")
    metrics = result.metrics()
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False))
        return
    typer.echo(f"{file}: {metrics['questions']} questions "
               f"({metrics['answerable']} answerable, {metrics['out_of_corpus']} out of corpus)")
    keys = ("hit@1", "hit@3", "hit@5", "mrr@5", "cited", "refusal_accuracy", "false_refusal_rate", "precision",
            "coverage", "shown", "outside_answered")
    for key in keys:
        typer.echo(f"  {key:<19} {_figure(metrics[key])}")
    typer.echo("  outcomes: " + ", ".join(f"{name} {count}" for name, count in metrics["outcomes"].items()))
    answers = ("fact_recall", "citation_precision", "median_body_chars", "heading_only", "forbidden_said")
    typer.echo("  " + ", ".join(f"{key} {_figure(metrics[key])}" for key in answers))
    if "turn_accuracy" in metrics:
        typer.echo(f"  {metrics['conversations']} conversations: turn accuracy {_figure(metrics['turn_accuracy'])}, "
                   f"out-of-corpus turns refused {_figure(metrics['out_of_corpus_turns_refused'])}; by turn "
                   + ", ".join(f"{n}: {_figure(v)} ({metrics['turns_by_position'][n]})"
                               for n, v in metrics["by_turn"].items()))
    for script in ("simplified", "traditional"):
        if script in metrics:
            part = metrics[script]
            typer.echo(f"  {script}: {part['questions']} questions, "
                       + ", ".join(f"{key} {_figure(part[key])}" for key in keys))


@app.command(cls=Command, epilog=examples("policy-assistant demo"))
def demo(index_dir: IndexDir = None) -> None:
    """若还没有索引，先索引演示语料，再回答几个示例问题。"""
    assistant = _assistant(index_dir)
    if not assistant.has_index():
        typer.echo(f"indexing the demo corpus into {assistant.index_dir} (first start)…", err=True)
        _print_summary(with_progress(lambda progress: assistant.reindex(progress=progress)))
    timings = []
    for q in SAMPLE_QUESTIONS:
        started = time.perf_counter()
        answer = assistant.ask(q)
        timings.append(time.perf_counter() - started)
        typer.echo(f"\n问：{q}\n{answer.text}")
    typer.echo(f"\n(answered {len(timings)} questions, median {statistics.median(timings) * 1000:.0f} ms; "
               "ask your own: policy-assistant ask \"…\")", err=True)


@app.command(cls=Command, epilog=examples("policy-assistant serve",
                                          "policy-assistant serve --host 0.0.0.0 --port 8080 > serve.log 2>&1"))
def serve(
    host: Annotated[str, typer.Option(metavar="地址", help="监听的地址（0.0.0.0：所有网卡）。")] = "127.0.0.1",
    port: Annotated[int, typer.Option(metavar="端口", help="TCP 端口。")] = 7860,
    index_dir: IndexDir = None,
) -> None:
    """启动网页服务：/ 是工作人员答复测试页，/healthz 是健康检查；首次启动时先索引演示语料。"""
    from assistant import http_server
    from assistant.channels.guard import forwarding
    from assistant.server import create_app, warm_up

    assistant = _assistant(index_dir)
    if not assistant.has_index():
        typer.echo(f"indexing {assistant.settings.corpus_dir} into {assistant.index_dir} (first start)…", err=True)
        _print_summary(with_progress(lambda progress: assistant.reindex(progress=progress)))
    typer.echo("loading the embedding model…", err=True)
    assistant.warm_up()
    app = create_app(assistant.settings, assistant)
    warm_up(app)
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    typer.echo(f"policy-assistant is serving at http://{shown}:{port}/  (health: /healthz; Ctrl+C stops)", err=True)
    http_server.run(app, host, port, http_server.limits_of(assistant.settings.web), log_level="warning",
                    **forwarding(assistant.settings.web.trusted_proxies))


docs = typer.Typer(cls=Group, no_args_is_help=True, subcommand_metavar=SUBCOMMAND_METAVAR,
                   help="列出、预览、暂停检索、恢复和删除已索引的文件。",
                   epilog=examples("policy-assistant docs list", "policy-assistant docs show 文件编号"))
app.add_typer(docs, name="docs")
app.add_typer(keys, name="keys")
app.command("mcp", cls=Command, epilog=examples("policy-assistant mcp"))(mcp)
DocId = Annotated[str, typer.Argument(metavar="文件编号", help="文件编号，见 docs list。")]


def _state_name(state: str) -> str:
    from assistant.index.registry import STATE_NAMES

    return STATE_NAMES.get(state, state)


@docs.command("list", cls=Command, epilog=examples("policy-assistant docs list",
                                                   "policy-assistant docs list --all --json"))
def docs_list(
    index_dir: IndexDir = None,
    show_all: Annotated[bool, typer.Option("--all", help="也列出已删除的文件。")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="每个文件输出一行 JSON。")] = False,
) -> None:
    """所有文件：编号、标题、文号、效力状态、检索状态、条款数、索引时间。"""
    rows = [r for r in _assistant(index_dir).documents() if show_all or r.state != "removed"]
    for row in rows:
        meta = row.metadata
        if as_json:
            typer.echo(json.dumps({"doc_id": row.doc_id, "title": meta.get("title", ""),
                                   "doc_number": meta.get("doc_number", ""), "status": meta.get("status", ""),
                                   "kind": meta.get("kind", ""), "state": row.state, "clauses": row.clauses,
                                   "indexed_at": row.indexed_at, "generation": row.generation,
                                   "source": row.path}, ensure_ascii=False))
            continue
        number = f"（{meta['doc_number']}）" if meta.get("doc_number") else ""
        state = "" if row.state == "active" else f"（{_state_name(row.state)}）"
        typer.echo(f"{row.doc_id}{state}\n  《{meta.get('title', '').strip('《》')}》{number} {meta.get('status', '')}"
                   f" · {row.clauses} 条 · 索引于 {row.indexed_at.replace('T', ' ')}")
    if not as_json:
        typer.echo(f"共 {len(rows)} 个文件", err=True)


@docs.command("show", cls=Command, epilog=examples("policy-assistant docs show shandong-2018-zhengwu-gongkai"))
def docs_show(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """文件的各条款，及答复引用它们时用的条款号。"""
    row, clauses = _assistant(index_dir).document(doc_id)
    meta = row.metadata
    kind = KIND_NAMES.get(meta.get("kind", ""), meta.get("kind", ""))
    typer.echo(f"《{meta.get('title', '').strip('《》')}》 {meta.get('doc_number', '')}\n"
               f"  {meta.get('status', '')} · {kind} · {_state_name(row.state)} · {row.clauses} 条 · {row.path}")
    for clause in clauses:
        text = clause.text.replace("\n", " ")
        more = "…" if len(text) > 300 else ""
        typer.echo(f"\n[{clause.label or '（开头）'}] {clause.heading}\n  {text[:300]}{more}")


def _docs_change(action: str, doc_id: str, index_dir: Path | None) -> None:
    summary = getattr(_assistant(index_dir), action)(doc_id)
    _print_summary(summary)


@docs.command("withdraw", cls=Command, epilog=examples("policy-assistant docs withdraw 文件编号"))
def docs_withdraw(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """暂停检索某文件（如暂停执行的政策）；它仍留在登记表中，可随时恢复。"""
    _docs_change("withdraw", doc_id, index_dir)


@docs.command("restore", cls=Command, epilog=examples("policy-assistant docs restore 文件编号"))
def docs_restore(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """恢复检索暂停的文件，或从文件重新索引已删除的文件。"""
    _docs_change("restore", doc_id, index_dir)


@docs.command("remove", cls=Command, epilog=examples("policy-assistant docs remove 文件编号"))
def docs_remove(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """从索引中删除文件；文件本身未改动时，index 不再收录它。"""
    _docs_change("remove", doc_id, index_dir)


@docs.command("history", cls=Command, epilog=examples("policy-assistant docs history 文件编号"))
def docs_history(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """文件的各个已索引版本，最新的（正在使用的）在前。"""
    versions = _assistant(index_dir).history(doc_id)
    for i, v in enumerate(reversed(versions)):
        current = "  （当前）" if i == 0 else ""
        typer.echo(f"{v.version:>3}  {v.saved_at.replace('T', ' ')}  {v.file}  《{v.title.strip('《》')}》 "
                   f"{v.clauses} 条  {v.file_hash[:12]}{current}")


@docs.command("revert", cls=Command, epilog=examples("policy-assistant docs revert 文件编号 1"))
def docs_revert(doc_id: DocId,
                version: Annotated[int, typer.Argument(metavar="版本", help="版本号，见 docs history。")],
                index_dir: IndexDir = None) -> None:
    """把文件的某个版本放回语料并索引；其后的版本都保留。"""
    assistant = _assistant(index_dir)
    _print_summary(with_progress(lambda progress: assistant.revert(doc_id, version, progress=progress)))


@app.command(cls=Command, epilog=examples("policy-assistant config",
                                          "POLICY_ASSISTANT_LIMITS__MAX_QUESTION_CHARS=300 policy-assistant config",
                                          "policy-assistant config --json"))
def config(
    as_json: Annotated[bool, typer.Option("--json", help="以 JSON 输出当前值（密钥已遮盖）。")] = False,
) -> None:
    """列出每项设置：环境变量名、当前值（密钥已遮盖）、默认值和说明。"""
    from assistant.envvars import listing

    settings = Settings()
    typer.echo(settings.model_dump_json(indent=2) if as_json else listing(settings))


def main() -> None:
    configure_logging()
    try:
        code = app(prog_name="policy-assistant", standalone_mode=False)  # the code of a typer.Exit comes back here
        if isinstance(code, int) and code:
            sys.exit(code)
    except AssistantError as e:
        typer.echo(f"error: {e.message}" + (f"\n  hint: {e.hint}" if e.hint else ""), err=True)
        sys.exit(2)
    except typer.Exit as e:
        sys.exit(e.exit_code)
    except (typer.Abort, KeyboardInterrupt):
        typer.echo("aborted", err=True)
        sys.exit(130)
    except Exception as e:  # the CLI is a door: one line, not a stack trace
        # Click's exceptions (Typer ≥ 0.2x carries its own copy of Click, so they are matched by what they do)
        if callable(getattr(e, "show", None)) and isinstance(getattr(e, "exit_code", None), int):
            show_usage_error(e)
            sys.exit(e.exit_code)  # type: ignore[attr-defined]
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        typer.echo(f"error: {e.__class__.__name__}: {e}", err=True)
        sys.exit(1)
