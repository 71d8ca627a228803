"""`policy-assistant`: serve | index | ask | eval | demo | docs | config."""

from __future__ import annotations

import json
import logging
import statistics
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from assistant.config import Settings
from assistant.errors import AssistantError, InputTooLongError

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Answers questions about government policy with citations to the exact clause.")

IndexDir = Annotated[Path | None, typer.Option(
    "--index-dir", help="Index directory (default: $POLICY_ASSISTANT_INDEX_DIR or indexes/).",
    show_default=False)]
SAMPLE_QUESTIONS = ("政务热线电话太多打不通，政府会整合吗？", "政务公开考核分值是多少？", "医保报销比例是多少？")


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


def _with_progress(run: Any) -> Any:
    """Run `run(progress)` showing a bar per phase on stderr."""
    from tqdm import tqdm

    bars: dict[str, Any] = {}

    def progress(phase: str, done: int, total: int) -> None:
        if phase not in bars:
            unit = "doc" if phase in ("reading", "registering") else "clause"
            bars[phase] = tqdm(total=total, unit=unit, desc=phase, file=sys.stderr, leave=False)
        bars[phase].update(done - bars[phase].n)

    try:
        return run(progress)
    finally:
        for bar in bars.values():
            bar.close()


@app.command()
def index(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: corpus/).")] = None,
    rebuild: Annotated[bool, typer.Option("--rebuild", help="Build a new collection from scratch.")] = False,
    index_dir: IndexDir = None,
) -> None:
    """Bring the index in step with the corpus: embed what is new or changed, drop what is gone.

    Readers keep the previous generation until the new one is complete. Exit code 3: some files failed
    (they are listed; their indexed versions, if any, stay).
    """
    assistant = _assistant(index_dir)
    summary = _with_progress(lambda progress: assistant.reindex(paths, rebuild=rebuild, progress=progress))
    _print_summary(summary)
    if summary.errors:
        raise typer.Exit(code=3)


@app.command()
def ask(
    question: Annotated[str | None, typer.Argument(help="The question; omitted: one per line from stdin.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print one JSON object per question.")] = False,
    index_dir: IndexDir = None,
) -> None:
    """Answer a question with citations to the exact clauses."""
    assistant = _assistant(index_dir)
    questions = [question] if question is not None else (line.strip() for line in sys.stdin)
    refused = 0
    for q in questions:
        if not q:
            continue
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


@app.command()
def chat(index_dir: IndexDir = None) -> None:
    """A conversation in the terminal: follow-up questions are read with the earlier ones (Ctrl+D or 「再见」 ends)."""
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


@app.command("eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="JSON lines: {id, question, kind, expect, facts?, not?}, or "
                                               "conversations {id, turns: [{question, kind, expect}, …]}.")],
    index_dir: IndexDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every question's outcome.")] = False,
) -> None:
    """Measure hit@k and MRR@5 of retrieval, cited answers, refusal accuracy and false refusals, and what the
    answers say: fact recall, citation precision, body length, heading-only answers."""
    from assistant.evaluation import EvalResult, read_eval_file, run_eval

    items = read_eval_file(file)
    assistant = _assistant(index_dir)
    result = EvalResult()
    for row in run_eval(items, assistant.ask_traced):
        result.rows.append(row)
        if verbose:
            outcome = "refused" if row["refused"] else f"rank {row['rank']}"
            read_as = f"（理解为：{row['asked']}）" if row.get("asked") else ""
            typer.echo(f"{row['id']:>10} {row['kind']:<13} {outcome:<9} {row['question']}{read_as}  → {row['top']}")
            if row.get("missing_facts"):
                typer.echo(f"{'':>10} missing facts {row['missing_facts']}: {row['answer']}")
    metrics = result.metrics()
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False))
    else:
        typer.echo(f"{file}: {metrics['questions']} questions "
                   f"({metrics['answerable']} answerable, {metrics['out_of_corpus']} out of corpus)")
        keys = ("hit@1", "hit@3", "hit@5", "mrr@5", "cited", "refusal_accuracy", "false_refusal_rate")
        for key in keys:
            typer.echo(f"  {key:<19} {metrics[key]:.3f}")
        answers = ("fact_recall", "citation_precision", "median_body_chars", "heading_only", "forbidden_said")
        typer.echo("  " + ", ".join(f"{key} {metrics[key]}" for key in answers if metrics[key] is not None))
        if "turn_accuracy" in metrics:
            typer.echo(f"  {metrics['conversations']} conversations: turn accuracy {metrics['turn_accuracy']:.3f}, "
                       f"out-of-corpus turns refused {metrics['out_of_corpus_turns_refused']:.3f}; by turn "
                       + ", ".join(f"{n}: {v:.3f} ({metrics['turns_by_position'][n]})"
                                   for n, v in metrics["by_turn"].items()))
        for script in ("simplified", "traditional"):
            if script in metrics:
                part = metrics[script]
                typer.echo(f"  {script}: {part['questions']} questions, "
                           + ", ".join(f"{key} {part[key]:.3f}" for key in keys))


@app.command()
def demo(index_dir: IndexDir = None) -> None:
    """Index the demo corpus if there is no index yet, then answer sample questions."""
    assistant = _assistant(index_dir)
    if not assistant.has_index():
        typer.echo(f"indexing the demo corpus into {assistant.index_dir} (first start)…", err=True)
        _print_summary(_with_progress(lambda progress: assistant.reindex(progress=progress)))
    timings = []
    for q in SAMPLE_QUESTIONS:
        started = time.perf_counter()
        answer = assistant.ask(q)
        timings.append(time.perf_counter() - started)
        typer.echo(f"\n问：{q}\n{answer.text}")
    typer.echo(f"\n(answered {len(timings)} questions, median {statistics.median(timings) * 1000:.0f} ms; "
               "ask your own: policy-assistant ask \"…\")", err=True)


@app.command()
def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (0.0.0.0: every one).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="TCP port.")] = 7860,
    index_dir: IndexDir = None,
) -> None:
    """Start the web server: the staff UI at /, /healthz; indexes the demo corpus on first start."""
    import uvicorn

    from assistant.server import create_app, warm_up

    assistant = _assistant(index_dir)
    if not assistant.has_index():
        typer.echo(f"indexing {assistant.settings.corpus_dir} into {assistant.index_dir} (first start)…", err=True)
        _print_summary(_with_progress(lambda progress: assistant.reindex(progress=progress)))
    typer.echo("loading the embedding model…", err=True)
    assistant.warm_up()
    app = create_app(assistant.settings, assistant)
    warm_up(app)
    shown = "localhost" if host in ("0.0.0.0", "127.0.0.1", "::") else host
    typer.echo(f"policy-assistant is serving at http://{shown}:{port}/  (health: /healthz; Ctrl+C stops)", err=True)
    uvicorn.run(app, host=host, port=port, log_level="warning")


docs = typer.Typer(no_args_is_help=True, help="List, preview, withdraw, restore and remove indexed documents.")
app.add_typer(docs, name="docs")
DocId = Annotated[str, typer.Argument(help="Document id, as `docs list` shows it.")]


@docs.command("list")
def docs_list(
    index_dir: IndexDir = None,
    show_all: Annotated[bool, typer.Option("--all", help="Also list removed documents.")] = False,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per document.")] = False,
) -> None:
    """Every document: id, title, 文号, status, state, clauses, indexed time."""
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
        state = "" if row.state == "active" else f" [{row.state}]"
        typer.echo(f"{row.doc_id}{state}\n  《{meta.get('title', '').strip('《》')}》{number} {meta.get('status', '')}"
                   f" · {row.clauses} clauses · indexed {row.indexed_at.replace('T', ' ')}")
    if not as_json:
        typer.echo(f"{len(rows)} documents", err=True)


@docs.command("show")
def docs_show(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """A document's clauses with the labels answers cite them by."""
    row, clauses = _assistant(index_dir).document(doc_id)
    meta = row.metadata
    typer.echo(f"《{meta.get('title', '').strip('《》')}》 {meta.get('doc_number', '')}\n"
               f"  status {meta.get('status', '')} · kind {meta.get('kind', '')} · {row.state} · "
               f"{row.clauses} clauses · {row.path}")
    for clause in clauses:
        text = clause.text.replace("\n", " ")
        more = "…" if len(text) > 300 else ""
        typer.echo(f"\n[{clause.label or '(preamble)'}] {clause.heading}\n  {text[:300]}{more}")


def _docs_change(action: str, doc_id: str, index_dir: Path | None) -> None:
    summary = getattr(_assistant(index_dir), action)(doc_id)
    _print_summary(summary)


@docs.command("withdraw")
def docs_withdraw(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """Stop retrieving a document (e.g. a suspended policy); it stays in the registry, ready to restore."""
    _docs_change("withdraw", doc_id, index_dir)


@docs.command("restore")
def docs_restore(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """Retrieve a withdrawn document again, or index a removed one again from its file."""
    _docs_change("restore", doc_id, index_dir)


@docs.command("remove")
def docs_remove(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """Delete a document from the index; `index` leaves its file out until the file changes."""
    _docs_change("remove", doc_id, index_dir)


@docs.command("history")
def docs_history(doc_id: DocId, index_dir: IndexDir = None) -> None:
    """Every indexed version of a document's file, newest (the one served) first."""
    versions = _assistant(index_dir).history(doc_id)
    for i, v in enumerate(reversed(versions)):
        current = "  (current)" if i == 0 else ""
        typer.echo(f"{v.version:>3}  {v.saved_at.replace('T', ' ')}  {v.file}  《{v.title.strip('《》')}》 "
                   f"{v.clauses} clauses  {v.file_hash[:12]}{current}")


@docs.command("revert")
def docs_revert(doc_id: DocId, version: Annotated[int, typer.Argument(help="Version, as `docs history` lists it.")],
                index_dir: IndexDir = None) -> None:
    """Put a version of a document's file back in the corpus and index it; the versions since are kept."""
    assistant = _assistant(index_dir)
    _print_summary(_with_progress(lambda progress: assistant.revert(doc_id, version, progress=progress)))


@app.command()
def config() -> None:
    """Print the effective settings (secrets masked)."""
    typer.echo(Settings().model_dump_json(indent=2))


def main() -> None:
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        code = app(standalone_mode=False)  # click returns the code of a typer.Exit here
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
        import click

        if isinstance(e, click.ClickException):
            e.show()
            sys.exit(e.exit_code)
        logging.getLogger(__name__).debug("unexpected error", exc_info=True)
        typer.echo(f"error: {e.__class__.__name__}: {e}", err=True)
        sys.exit(1)
