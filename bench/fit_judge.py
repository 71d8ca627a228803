"""Fit the relevance judge for the tuned model, on questions the model was not trained on, and place its
refusal point.

    python bench/fit_judge.py --index bench/data/tuned-index   # the law corpus and the documents of
                                                                 # tests/data/real/, indexed with the new weights

The judge is two logistic functions. One weighs each judged candidate's evidence
(`retrieve.evidence`: tuned cosine, term
coverage, both rankings, the longest verbatim run of the question's words, the share of its rare terms held, a
figure stated for a quantity asked).
It is fitted on the candidates
retrieved for the training split the encoder never saw (`judge_questions` in tuned.json) and on 70 % of the
out-of-corpus questions: it orders the head. The other decides refusals from the head so ordered
(`retrieve.question_evidence`: the best candidate's evidence and judgment, how far its cosine stands above the
rest, whether the question asks for a particular fact or figure the best clause does not state, or about the present
moment), fitted on the same questions; its bias is then moved so that, at the configured `min_relevance`, at most
5 % of the remaining answerable questions would be refused, measured on the other 30 % of both. Writes `judge`,
`refusal` and `judge_fit` into assistant/index/tuned/tuned.json (the weights file, and so the index fingerprint, is
unchanged).
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

from assistant.config import Settings  # noqa: E402
from assistant.evaluation import clause_matches  # noqa: E402
from assistant.index import tuned_model  # noqa: E402
from assistant.index.build import passage_text  # noqa: E402
from assistant.index.lexical import tokenize  # noqa: E402
from assistant.retrieve import JUDGED, Candidate, evidence, judge, question_evidence, rare_terms  # noqa: E402
from assistant.retrieve import order_by_relevance as ordered  # noqa: E402
from assistant.service import Assistant  # noqa: E402

FEATURES = ("cosine", "coverage", "dense_rr", "lexical_rr", "phrase", "rare", "figure")
QUESTION = ("top_cosine", "top_coverage", "top_logit", "spread", "top_phrase", "asks_unstated", "asks_figure",
            "asks_current")
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
    X = np.array([f for judged in fit for f in judged[1]])
    y = np.array([label for judged in fit for label in judged[2]])
    from sklearn.linear_model import LogisticRegression

    model = LogisticRegression(C=1.0, max_iter=2000).fit(X, y)
    weights = {"bias": float(model.intercept_[0]), **{n: float(w) for n, w in zip(FEATURES, model.coef_[0],
                                                                                  strict=True)}}
    held_a = [_rows(assistant, item) for item in answerable[cut_a:]]
    held_o = [_rows(assistant, item) for item in outside[cut_o:]]
    # refusals: a question-level logistic over the head as the candidate judge orders it
    Q = np.array([_question(weights, judged) for judged in fit])
    answerable_label = np.array([1] * cut_a + [0] * cut_o)
    asked = LogisticRegression(C=1.0, max_iter=2000).fit(Q, answerable_label)
    refusal = {"bias": float(asked.intercept_[0]), **{n: float(w) for n, w in zip(QUESTION, asked.coef_[0],
                                                                                    strict=True)}}
    cut = settings.retrieval.min_relevance
    scored_a = [_question(weights, judged) for judged in held_a]
    scored_o = [_question(weights, judged) for judged in held_o]
    refusal["bias"] += _refusal_shift(refusal, scored_a, cut, args.max_false_refusals)
    refused_a, refused_o = (_refused(refusal, rows, cut) for rows in (scored_a, scored_o))
    meta["judge"] = {k: round(v, 4) for k, v in weights.items()}
    meta["refusal"] = {k: round(v, 4) for k, v in refusal.items()}
    meta["judge_fit"] = {"candidates": int(len(y)), "positives": int(y.sum()), "fit_questions": len(fit),
                         "calibration": {"answerable": len(held_a), "out_of_corpus": len(held_o),
                                         "false_refusals": round(refused_a, 3), "refusals": round(refused_o, 3),
                                         "hit@1": round(_hit_at_1(weights, held_a), 3)}}
    meta_path.write_text(json.dumps(meta, ensure_ascii=False, indent=1), encoding="utf-8")
    print(json.dumps({"judge": meta["judge"], **meta["judge_fit"]}, ensure_ascii=False))


Judged = tuple[list[Candidate], list[list[float]], list[int], str]


def _rows(assistant: Assistant, item: dict) -> Judged:  # type: ignore[type-arg]
    """A question's judged head: its candidates, each one's evidence and label (an accepted clause?), and the
    normalised question."""
    retrieval = assistant.retrieve(item["question"])
    tokens = tokenize(retrieval.normalized)
    rare = rare_terms(tokens, assistant.retriever.lexical)
    expect = [{"title": e.get("law_name") or e.get("title", ""), "clause": e.get("article_no") or e.get("clause", "")}
              for e in item.get("expect", [])]
    head = retrieval.candidates[:JUDGED]
    features, labels = [], []
    for candidate in head:
        found = evidence(candidate, tokens, passage_text(candidate.clause), rare, retrieval.normalized)
        features.append([found[n] for n in FEATURES])
        labels.append(int(any(clause_matches(candidate.clause, e) for e in expect)))
    return head, features, labels, retrieval.normalized


def _ordered(weights: dict[str, float], judged: Judged) -> list[Candidate]:
    """A question's head as the product orders it with the candidate judge `weights`."""
    head, features, _, _ = judged
    for candidate, values in zip(head, features, strict=True):
        candidate.relevance = judge(dict(zip(FEATURES, values, strict=True)), weights)
    return ordered(list(head))


def _question(weights: dict[str, float], judged: Judged) -> list[float]:
    """`retrieve.question_evidence` of a question's head as the product orders it with the candidate judge
    `weights`."""
    if not judged[0]:
        return [0.0] * len(QUESTION)
    values = question_evidence(_ordered(weights, judged), judged[3])
    return [values[n] for n in QUESTION]


def _hit_at_1(weights: dict[str, float], questions: list[Judged]) -> float:
    """The share of questions whose best candidate, as the judge `weights` order the head, is an accepted one."""
    hits = sum(judged[2][judged[0].index(_ordered(weights, judged)[0])] for judged in questions if judged[0])
    return hits / max(1, len(questions))


def _probability(weights: dict[str, float], values: list[float]) -> float:
    return judge(dict(zip(QUESTION, values, strict=True)), weights)


def _refused(weights: dict[str, float], questions: list[list[float]], cut: float) -> float:
    return sum(1 for values in questions if _probability(weights, values) < cut) / max(1, len(questions))


def _refusal_shift(weights: dict[str, float], answerable: list[list[float]], cut: float, max_false: float) -> float:
    """The bias shift that refuses the most while refusing at most `max_false` of the answerable questions."""
    for shift in np.arange(-10, 10.01, 0.05):  # a lower bias refuses more: the lowest that keeps the bound
        if _refused({**weights, "bias": weights["bias"] + shift}, answerable, cut) <= max_false:
            return float(shift)
    return 10.0


if __name__ == "__main__":
    main()
