"""Per-question latency of `policy-assistant ask --json` over questions on stdin (model loaded once).

    python bench/ask_latency.py [--index-dir DIR] [--questions 100]

Indexes the demo corpus into a temporary directory unless --index-dir is given, then feeds N
questions (the repo's eval questions, repeated) to one `ask --json` process and times the gap
between consecutive answers; the first answer, which includes loading the model, is reported apart.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def questions(n: int) -> list[str]:
    rows = [json.loads(line) for f in sorted((ROOT / "eval").glob("*.jsonl"))
            for line in f.read_text(encoding="utf-8").splitlines() if line.strip()]
    pool = [row["question"] for row in rows if "question" in row]  # single questions, not conversations
    return [pool[i % len(pool)] for i in range(n)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--questions", type=int, default=100)
    args = parser.parse_args()
    index_dir = args.index_dir or Path(tempfile.mkdtemp(prefix="bench-index-"))
    env = {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(index_dir)}
    command = [sys.executable, "-m", "assistant"]
    if not (index_dir / "manifest.json").exists():
        started = time.perf_counter()
        subprocess.run(command + ["index", str(ROOT / "corpus")], env=env, check=True, capture_output=True)
        print(f"index demo corpus: {time.perf_counter() - started:.1f} s (process start and model load included)")
    qs = questions(args.questions)
    started = time.perf_counter()
    process = subprocess.Popen(command + ["ask", "--json"], env=env, stdin=subprocess.PIPE,
                               stdout=subprocess.PIPE, text=True, encoding="utf-8")
    assert process.stdin and process.stdout
    process.stdin.write("\n".join(qs) + "\n")
    process.stdin.close()
    stamps = []
    refused = 0
    for line in process.stdout:
        stamps.append(time.perf_counter())
        refused += json.loads(line)["refused"]
    process.wait()
    gaps = [(b - a) * 1000 for a, b in zip(stamps, stamps[1:], strict=False)]
    gaps.sort()
    print(f"questions: {len(stamps)} ({refused} refused)")
    print(f"first answer (process start + model load): {stamps[0] - started:.1f} s")
    print(f"per question after load: median {statistics.median(gaps):.1f} ms, "
          f"p90 {gaps[int(0.9 * (len(gaps) - 1))]:.1f} ms, max {gaps[-1]:.1f} ms")


if __name__ == "__main__":
    main()
