"""Fit the relevance judge for the tuned model, on questions the model was not trained on, and place its
refusal point.

    python bench/fit_judge.py --index bench/data/tuned-index   # an index of the law corpus and
                                                                 # tests/data/real/ built with the tuned model

The judge is a logistic function of each judged candidate's evidence (`retrieve.evidence`: tuned cosine, term
coverage, both rankings, the longest verbatim run of the question's words). It is fitted on the candidates
retrieved for the training split the encoder never saw (`judge_questions` in tuned.json) and on 70 % of the
out-of-corpus questions; its bias is then moved so that, at the configured `min_relevance`, at most 5 % of the
remaining answerable questions would be refused, measured on the other 30 % of both. Writes `judge` and
`judge_fit` into assistant/index/tuned/tuned.json (the weights file, and so the index fingerprint, is
unchanged).
"""

from __future__ import annotations

import argparse
import json
import math
import random
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from assistant.config import Settings  # noqa: E402
from assistant.evaluation import clause_matches  # noqa: E402
from assistant.index import tuned_model  # noqa: E402
from assistant.index.build import passage_text  # noqa: E402
from assistant.index.lexical import tokenize  # noqa: E402
from assistant.retrieve import JUDGED, evidence  # noqa: E402
from assistant.service import Assistant  # noqa: E402

FEATURES = ("cosine", "coverage", "dense_rr", "lexical_rr", "phrase")
TRAIN = HERE.parent / "train"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--index", type=Path, default=HERE / "data" / "tuned-index")
    parser.add_argument("--max-false-refusals", type=float, default=0.05)
    args = parser.parse_args()
    meta_path = tuned_model.folder() / tuned_model.META
    meta = json.loads(meta_path.read_text(encoding="utf-8"))
    wanted = set(meta["judge_questions"])
    items = [json.loads(line) for line in (TRAIN / "questions.jsonl").read_text(encoding="utf-8").splitlines()]
    answerable = [item for item in items if item["question"] in wanted]
    outside = [json.loads(line) for line in (TRAIN / "out_of_corpus.jsonl").read_text(encoding="utf-8").splitlines()]
    random.seed(17)
    random.shuffle(answerable)
    random.shuffle(outside)
    cut_a, cut_o = int(len(answerable) * 0.7), int(len(outside) * 0.7)
    settings = Settings(index_dir=args.index)
    assistant = Assistant(settings)
    fit = [_rows(assistant, item) for item in answerable[:cut_a] + outside[:cut_o]]
    X = np.array([f for rows in fit for f, _ in rows])
    y = np.array([label for rows in fit for _, label in rows])
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
    weights = {"bias": float(model.intercept_[0]), **{n: float(w) for n, w in zip(FEATURES, model.coef_[0],
                                                                                  strict=True)}}
    held_a = [_rows(assistant, item) for item in answerable[cut_a:]]
    held_o = [_rows(assistant, item) for item in outside[cut_o:]]
    shift = _refusal_shift(weights, held_a, held_o, settings.retrieval.min_relevance, args.max_false_refusals)
    weights["bias"] += shift
    refused_a, refused_o = (_refused(weights, rows, settings.retrieval.min_relevance) for rows in (held_a, held_o))
    meta["judge"] = {k: round(v, 4) for k, v in weights.items()}
    meta["judge_fit"] = {"candidates": int(len(y)), "positives": int(y.sum()), "fit_questions": len(fit),
                         "calibration": {"answerable": len(held_a), "out_of_corpus": len(held_o),
                                         "false_refusals": round(refused_a, 3), "refusals": round(refused_o, 3)}}
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({"judge": meta["judge"], **meta["judge_fit"]}, ensure_ascii=False))


def _rows(assistant: Assistant, item: dict) -> list[tuple[list[float], int]]:  # type: ignore[type-arg]
    retrieval = assistant.retrieve(item["question"])
    tokens = tokenize(retrieval.normalized)
    expect = [{"title": e.get("law_name") or e.get("title", ""), "clause": e.get("article_no") or e.get("clause", "")}
              for e in item.get("expect", [])]
    rows = []
    for candidate in retrieval.candidates[:JUDGED]:
        features = evidence(candidate, tokens, passage_text(candidate.clause))
        label = int(any(clause_matches(candidate.clause, e) for e in expect))
        rows.append(([features[n] for n in FEATURES], label))
    return rows


def _top(weights: dict[str, float], rows: list[tuple[list[float], int]]) -> float:
    """The best judged probability among the question's candidates (what decides a refusal)."""
    if not rows:
        return 0.0
    z = max(weights["bias"] + sum(weights[n] * f for n, f in zip(FEATURES, features, strict=True))
            for features, _ in rows)
    return 1 / (1 + math.exp(-z))


def _refused(weights: dict[str, float], questions: list[list[tuple[list[float], int]]], cut: float) -> float:
    return sum(1 for rows in questions if _top(weights, rows) < cut) / max(1, len(questions))


def _refusal_shift(weights: dict[str, float], answerable: list[list[tuple[list[float], int]]],
                   outside: list[list[tuple[list[float], int]]], cut: float, max_false: float) -> float:
    """The bias shift that refuses the most out-of-corpus questions while refusing at most `max_false` of the
    answerable ones."""
    for shift in np.arange(-8, 8.01, 0.05):  # a lower bias refuses more: the lowest that keeps the bound
        if _refused({**weights, "bias": weights["bias"] + shift}, answerable, cut) <= max_false:
            return float(shift)
    return 8.0


if __name__ == "__main__":
    main()
