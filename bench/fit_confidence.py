"""Fit the confidence that an answer's first clause answers the question (`answer/outcome.py`), and place the
point above which an answer is given as sure.

    python bench/fit_confidence.py --index bench/data/laws-index --demo-index DEMO_INDEX --real-index REAL_INDEX --write

Fitted on questions the encoder was never trained on and that no eval set holds: the training split kept for the
judge (`judge_questions` in tuned.json), the out-of-corpus training questions, and the calibration sets
(eval/laws_calibration.jsonl on the law index, eval/calibration.jsonl on the demo corpus,
eval/real_calibration.jsonl on the real documents of tests/data/real). Only questions the
product would not refuse count. A logistic function is fitted on 70 % of them; its `answer_at` is the lowest
point at which, on the other 30 %, at least `--precision` of the answers given as sure cite an accepted clause
first and at most `--max-outside` of the out-of-corpus questions are answered as sure. With `--write`, writes
`confidence` and `confidence_fit` into assistant/index/tuned/tuned.json (the weights file, and so the index
fingerprint, is unchanged).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from assistant.answer.outcome import confidence_evidence  # noqa: E402
from assistant.config import Settings  # noqa: E402
from assistant.evaluation import clause_matches  # noqa: E402
from assistant.index import tuned_model  # noqa: E402
from assistant.retrieve import judge  # noqa: E402
from assistant.service import Assistant  # noqa: E402

FEATURES = ("answerable", "top_logit", "margin", "held", "own_terms", "rival_terms", "figures_differ",
            "place_conflict", "cosine", "cosine_margin", "coverage", "coverage_margin", "phrase", "same_document")
TRAIN = HERE.parent / "train"
EVAL = HERE.parent / "eval"

# evidence, label (the first clause is an accepted one), kind, the evidence by name with the question
Row = tuple[list[float], int, str, dict]  # type: ignore[type-arg]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=HERE / "data" / "laws-index")
    parser.add_argument("--demo-index", type=Path, default=None, help="an index of corpus/ (the demo corpus)")
    parser.add_argument("--real-index", type=Path, default=None,
                        help="an index of the documents of tests/data/real (for eval/real_calibration.jsonl)")
    parser.add_argument("--precision", type=float, default=0.9)
    parser.add_argument("--max-outside", type=float, default=0.03)
    parser.add_argument("--rows", type=Path, default=None, help="keep the questions' evidence in this JSON file, "
                        "and read it from there when it exists (to refit without retrieving again)")
    parser.add_argument("--write", action="store_true", help="write the fitted confidence into tuned.json")
    args = parser.parse_args()
    meta_path = tuned_model.folder() / tuned_model.META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    wanted = set(meta["judge_questions"])
    items = [json.loads(line) for line in (TRAIN / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    items = [item for item in items if item["question"] in wanted]
    items += [json.loads(line) for line in (TRAIN / "out_of_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    items += _jsonl(EVAL / "laws_calibration.jsonl")
    if args.rows and args.rows.exists():
        rows = [tuple(row) for row in json.loads(args.rows.read_text(encoding="utf-8"))]
    else:
        rows = _rows(Assistant(Settings(index_dir=args.index)), items)
        if args.demo_index:
            rows += _rows(Assistant(Settings(index_dir=args.demo_index)), _jsonl(EVAL / "calibration.jsonl"))
        if args.real_index:
            rows += _rows(Assistant(Settings(index_dir=args.real_index)), _jsonl(EVAL / "real_calibration.jsonl"))
        if args.rows:
            args.rows.write_text(json.dumps(rows, ensure_ascii=False), encoding="utf-8")
    random.seed(23)
    random.shuffle(rows)
    cut = int(len(rows) * 0.7)
    fit, held = rows[:cut], rows[cut:]
    from sklearn.linear_model import LogisticRegression

    X = np.array([r[0] for r in fit])
    y = np.array([r[1] for r in fit])
    # fitted on standardised evidence (cosines differ by hundredths, logits by units), written back in raw units
    mean, scale = X.mean(axis=0), X.std(axis=0) + 1e-9
    model = LogisticRegression(C=1.0, max_iter=5000).fit((X - mean) / scale, y)
    raw = model.coef_[0] / scale
    weights = {"bias": float(model.intercept_[0] - (raw * mean).sum()),
               **{n: float(w) for n, w in zip(FEATURES, raw, strict=True)}}
    scored = [(judge(dict(zip(FEATURES, r[0], strict=True)), weights), r[1], r[2]) for r in held]
    at, figures = _place(scored, args.precision, args.max_outside)
    meta["confidence"] = {**{k: round(v, 4) for k, v in weights.items()}, "answer_at": round(at, 3)}
    meta["confidence_fit"] = {"fit_questions": len(fit), "positives": int(y.sum()), "calibration": figures}
    if args.write:
        meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({"confidence": meta["confidence"], **meta["confidence_fit"]}, ensure_ascii=False))


def _jsonl(path: Path) -> list[dict]:  # type: ignore[type-arg]
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _rows(assistant: Assistant, items: list[dict]) -> list[Row]:  # type: ignore[type-arg]
    """Each question the product would not refuse: its confidence evidence, and whether its first clause is an
    accepted one (never, for an out-of-corpus question)."""
    rows: list[Row] = []
    for item in items:
        retrieval = assistant.retrieve(item["question"])
        if not retrieval.relevant or not retrieval.candidates:
            continue
        expect = [e if isinstance(e, str) else {"title": e.get("law_name") or e.get("title", ""),
                                                "clause": e.get("article_no") or e.get("clause", "")}
                  for e in item.get("expect", [])]
        kind = item.get("kind", "answerable")
        top = retrieval.candidates[0].clause
        label = int(kind == "answerable" and any(clause_matches(top, e) for e in expect))
        found = confidence_evidence(retrieval)
        rows.append(([found[n] for n in FEATURES], label, kind, {**found, "question": item["question"]}))
    return rows


def _place(scored: list[tuple[float, int, str]], precision: float, max_outside: float) -> tuple[float, dict]:  # type: ignore[type-arg]
    """The lowest confidence from which answers given as sure meet both bounds on the held-out rows, and the
    figures there."""
    outside = [s for s in scored if s[2] != "answerable"]
    answerable = [s for s in scored if s[2] == "answerable"]
    for at in np.arange(0.05, 1.0, 0.01):
        sure = [s for s in scored if s[0] >= at]
        right = sum(s[1] for s in sure)
        outside_sure = sum(1 for s in outside if s[0] >= at)
        if sure and right / len(sure) >= precision and outside_sure <= max_outside * max(1, len(outside)):
            return float(at), {"answerable": len(answerable), "out_of_corpus": len(outside),
                               "precision": round(right / len(sure), 3),
                               "coverage": round(sum(1 for s in answerable if s[0] >= at) / max(1, len(answerable)), 3),
                               "outside_answered": round(outside_sure / max(1, len(outside)), 3)}
    return 1.0, {"answerable": len(answerable), "out_of_corpus": len(outside)}


if __name__ == "__main__":
    main()
