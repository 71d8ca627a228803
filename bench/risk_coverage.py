"""The risk–coverage curve of answers given as sure: for each point the confidence could be cut at, the share of
answerable questions answered as sure (coverage), the share of those answers whose first citation is accepted
(precision), and the share of out-of-corpus questions answered as sure; the shipped point marked.

    python bench/risk_coverage.py eval/laws_dev.jsonl --index bench/data/laws-index
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from assistant.answer.outcome import ANSWERED, CANDIDATES, DEFAULT_WEIGHTS, decide  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.evaluation import first_hit, read_eval_file  # noqa: E402
from assistant.service import Assistant  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("eval", type=Path)
    parser.add_argument("--index", type=Path, required=True)
    args = parser.parse_args()
    assistant = Assistant(Settings(index_dir=args.index))
    weights = assistant.confidence_weights or DEFAULT_WEIGHTS
    rows = []  # (kind, confidence or None when refused, first clause accepted, accepted among the candidates)
    for item in read_eval_file(args.eval):
        retrieval = assistant.retrieve(item.question)
        decision = decide(retrieval, weights)
        head = [c.clause for c in retrieval.candidates]
        offered = [c.clause for c in decision.candidates] if decision.outcome == CANDIDATES else head[:3]
        right = item.kind == "answerable" and first_hit(head[:1], item.expect) == 1
        shown = item.kind == "answerable" and first_hit(offered, item.expect) is not None
        sure = decision.outcome == ANSWERED or decision.outcome == CANDIDATES
        rows.append((item.kind, decision.confidence if sure else None, right, shown, decision.outcome))
    answerable = [r for r in rows if r[0] == "answerable"]
    outside = [r for r in rows if r[0] != "answerable"]
    at = weights.get("answer_at", 0.5)
    print(f"{args.eval}: {len(answerable)} answerable, {len(outside)} out of corpus; shipped point {at:.2f}")
    print("  cut   coverage  precision  outside_answered")
    for cut in sorted({round(x / 20, 2) for x in range(0, 20)} | {round(at, 2)}):
        sure = [r for r in rows if r[1] is not None and r[1] >= cut]
        right = sum(1 for r in sure if r[2])
        coverage = sum(1 for r in answerable if r[1] is not None and r[1] >= cut) / max(1, len(answerable))
        outside_sure = sum(1 for r in outside if r[1] is not None and r[1] >= cut) / max(1, len(outside))
        mark = "  ← shipped" if abs(cut - at) < 1e-9 else ""
        precision = f"{right / len(sure):.3f}" if sure else "  —  "
        print(f"  {cut:.2f}  {coverage:8.3f}  {precision:>9}  {outside_sure:16.3f}{mark}")


if __name__ == "__main__":
    main()
