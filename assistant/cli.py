"""`policy-assistant`: index | ask | eval | demo | config."""

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
from assistant.errors import AssistantError

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
    typer.echo(f"indexed {summary.documents} documents, {summary.clauses} clauses "
               f"in {summary.seconds:.1f} s (generation {summary.generation})")
    for doc in summary.per_document:
        number = f" ({doc['doc_number']})" if doc["doc_number"] else ""
        typer.echo(f"  {doc['doc_id']}: 《{str(doc['title']).strip('《》')}》{number} — {doc['clauses']} clauses")
    for error in summary.errors:
        typer.echo(f"  failed: {error}", err=True)


def _reindex(assistant: Any, paths: list[Path] | None) -> Any:
    from tqdm import tqdm

    bar: Any = None

    def progress(done: int, total: int) -> None:
        nonlocal bar
        if bar is None:
            bar = tqdm(total=total, unit="clause", desc="embedding", file=sys.stderr, leave=False)
        bar.update(done - bar.n)

    try:
        return assistant.reindex(paths, progress=progress)
    finally:
        if bar is not None:
            bar.close()


@app.command()
def index(
    paths: Annotated[list[Path] | None, typer.Argument(help="Files or folders (default: corpus/).")] = None,
    index_dir: IndexDir = None,
) -> None:
    """Index policy files into the clause index (a new generation, switched to when complete)."""
    assistant = _assistant(index_dir)
    typer.echo("loading the embedding model…", err=True)
    summary = _reindex(assistant, paths)
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
    for q in questions:
        if not q:
            continue
        answer = assistant.ask(q)
        if as_json:
            typer.echo(json.dumps(answer.to_json(), ensure_ascii=False))
            sys.stdout.flush()
        else:
            typer.echo(answer.text)


@app.command("eval")
def evaluate(
    file: Annotated[Path, typer.Argument(help="JSON lines: {id, question, kind, expect}.")],
    index_dir: IndexDir = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the metrics as JSON.")] = False,
    verbose: Annotated[bool, typer.Option("--verbose", "-v", help="Show every question's outcome.")] = False,
) -> None:
    """Measure hit@k and MRR@5 of retrieval, cited answers, refusal accuracy and false refusals."""
    from assistant.evaluation import EvalResult, read_eval_file, run_eval

    items = read_eval_file(file)
    assistant = _assistant(index_dir)
    result = EvalResult()
    for row in run_eval(items, assistant.ask_traced):
        result.rows.append(row)
        if verbose:
            outcome = "refused" if row["refused"] else f"rank {row['rank']}"
            typer.echo(f"{row['id']:>10} {row['kind']:<13} {outcome:<9} {row['question']}  → {row['top']}")
    metrics = result.metrics()
    if as_json:
        typer.echo(json.dumps(metrics, ensure_ascii=False))
    else:
        typer.echo(f"{file}: {metrics['questions']} questions "
                   f"({metrics['answerable']} answerable, {metrics['out_of_corpus']} out of corpus)")
        keys = ("hit@1", "hit@3", "hit@5", "mrr@5", "cited", "refusal_accuracy", "false_refusal_rate")
        for key in keys:
            typer.echo(f"  {key:<19} {metrics[key]:.3f}")
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
        _print_summary(_reindex(assistant, None))
    timings = []
    for q in SAMPLE_QUESTIONS:
        started = time.perf_counter()
        answer = assistant.ask(q)
        timings.append(time.perf_counter() - started)
        typer.echo(f"\n问：{q}\n{answer.text}")
    typer.echo(f"\n(answered {len(timings)} questions, median {statistics.median(timings) * 1000:.0f} ms; "
               "ask your own: policy-assistant ask \"…\")", err=True)


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
