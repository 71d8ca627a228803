"""Per-question latency in a conversation against the same questions asked alone, in one process and one run.

    python bench/conversation_latency.py [--index-dir DIR] [--dialogues eval/dialogues_demo.jsonl] [--rounds 3]

Indexes the demo corpus into a temporary directory unless --index-dir is given. Each round asks every turn of
every conversation twice, interleaved: once with the turns before it (as the doors keep them: the last three),
once alone. Reports the medians and p90s of both and their ratio; the first turns, which have no conversation to
read, are reported apart.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from assistant.config import Settings  # noqa: E402
from assistant.conversation import Turn  # noqa: E402
from assistant.service import Assistant  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--dialogues", type=Path, default=ROOT / "eval" / "dialogues_demo.jsonl")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    assistant = Assistant(Settings(index_dir=args.index_dir or Path(tempfile.mkdtemp(prefix="bench-index-"))))
    if not assistant.has_index():
        assistant.reindex([ROOT / "corpus"])
    conversations = [[t["question"] for t in json.loads(line)["turns"]]
                     for line in args.dialogues.read_text(encoding="utf-8").splitlines() if line.strip()]
    assistant.warm_up()
    together: list[float] = []
    alone: list[float] = []
    first: list[float] = []
    for _ in range(args.rounds):
        for questions in conversations:
            history: list[Turn] = []
            for n, question in enumerate(questions):
                started = time.perf_counter()
                answer = assistant.ask(question, history)
                spent = (time.perf_counter() - started) * 1000
                started = time.perf_counter()
                assistant.ask(question)
                single = (time.perf_counter() - started) * 1000
                (first if n == 0 else together).append(spent)
                if n:
                    alone.append(single)
                history = [*history, Turn.of(answer)][-3:]

    def line(name: str, values: list[float]) -> str:
        values = sorted(values)
        return (f"{name}: median {statistics.median(values):.1f} ms, p90 {values[int(0.9 * (len(values) - 1))]:.1f} ms"
                f" ({len(values)} answers)")

    print(line("follow-up turns, with their conversation", together))
    print(line("the same questions asked alone", alone))
    print(line("first turns (nothing to read them with)", first))
    print(f"ratio of medians, in a conversation / alone: {statistics.median(together) / statistics.median(alone):.2f}")


if __name__ == "__main__":
    main()
