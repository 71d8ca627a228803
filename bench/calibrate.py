"""Fit the refusal model (logistic over the best clause's cosine and term coverage) and choose its cut.

    python bench/calibrate.py eval/calibration.jsonl=indexes eval/laws_calibration.jsonl=bench/data/laws-index

Each calibration file is asked against its own index (`FILE=INDEX_DIR`; without `=` the configured
index). Prints the fitted weights for `assistant.retrieve.RELEVANCE_WEIGHTS`, and for the weights in
use, each cut's refusal rate, false-refusal rate and balanced accuracy — pick
`retrieval.min_relevance` from it. Evaluate on other questions than the ones calibrated on here.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression

from assistant.config import Settings
from assistant.evaluation import read_eval_file
from assistant.index.embedder import load_embedder
from assistant.service import Assistant

CUTS = (0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+", help="FILE or FILE=INDEX_DIR")
    parser.add_argument("--C", type=float, default=1.0, help="inverse regularisation strength")
    args = parser.parse_args()
    features, labels, relevances = [], [], []
    embedder = load_embedder(Settings().index)  # one model for every index asked
    for spec in args.files:
        file, _, index_dir = spec.partition("=")
        settings = Settings()
        if index_dir:
            settings.index_dir = Path(index_dir)
        assistant = Assistant(settings, embedder=embedder)
        for item in read_eval_file(Path(file)):
            retrieval = assistant.retrieve(item.question)
            top = retrieval.candidates[0]
            features.append([top.dense, top.coverage])
            relevances.append(retrieval.relevance)
            labels.append(1 if item.kind == "answerable" else 0)
    x, y = np.asarray(features), np.asarray(labels)
    mean, scale = x.mean(axis=0), x.std(axis=0)
    model = LogisticRegression(C=args.C, class_weight="balanced").fit((x - mean) / scale, y)
    coef = model.coef_[0] / scale  # back to raw feature units
    bias = float(model.intercept_[0] - np.sum(model.coef_[0] * mean / scale))
    weights = {"bias": round(bias, 2), "cosine": round(float(coef[0]), 2), "coverage": round(float(coef[1]), 2)}
    print("fitted weights:", json.dumps(weights))
    print(f"fitted model's accuracy {model.score((x - mean) / scale, y):.3f} "
          f"on {len(y)} questions ({int(y.sum())} answerable)")
    print("cuts for the weights in use:")
    rel = np.asarray(relevances)
    for cut in CUTS:
        refusals = float(np.mean(rel[y == 0] < cut)) if (y == 0).any() else 0.0
        false_refusals = float(np.mean(rel[y == 1] < cut)) if (y == 1).any() else 0.0
        print(f"  {cut:.2f}  refusals {refusals:.3f}  false refusals {false_refusals:.3f}  "
              f"balanced accuracy {(refusals + 1 - false_refusals) / 2:.3f}")


if __name__ == "__main__":
    main()
