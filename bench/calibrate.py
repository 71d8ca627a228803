"""Fit the refusal model (logistic over the best clause's cosine and term coverage) on calibration questions.

    python bench/calibrate.py --index-dir DIR eval/extra_dev.jsonl [more.jsonl …]

Prints the fitted weights for `assistant.retrieve.RELEVANCE_WEIGHTS` and the accuracy on the
calibration questions. Evaluate on other questions than the ones fitted here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from assistant.config import Settings
from assistant.evaluation import read_eval_file
from assistant.service import Assistant


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", type=Path)
    parser.add_argument("--index-dir", type=Path, default=None)
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    args = parser.parse_args()
    settings = Settings()
    if args.index_dir:
        settings.index_dir = args.index_dir
    assistant = Assistant(settings)
    features, labels = [], []
    for file in args.files:
        for item in read_eval_file(file):
            top = assistant.retrieve(item.question).candidates[0]
            features.append([top.dense, top.coverage])
            labels.append(1 if item.kind == "answerable" else 0)
    x, y = np.asarray(features), np.asarray(labels)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    model = LogisticRegression(C=args.C, class_weight="balanced").fit((x - mean) / scale, y)
    coef = model.coef_[0] / scale  # back to raw feature units
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * mean / scale))
    weights = {"bias": round(bias, 2), "cosine": round(float(coef[0]), 2),
               "coverage": round(float(coef[1]), 2)}
    print(json.dumps(weights))
    accuracy = model.score((x - mean) / scale, y)
    print(f"calibration accuracy {accuracy:.3f} on {len(y)} questions ({int(y.sum())} answerable)")


if __name__ == "__main__":
    main()
