"""What a cross-encoder does to the judged head, and what it costs: hit@1 of the head as the judge orders it,
against the head's first K reordered by the cross-encoder (alone, and added to the judge's log-odds), on
`eval/laws_dev.jsonl` (laws no training touches) and on the tuned model's judge split (questions the encoder and
the cross-encoder never saw, about laws they did); and the milliseconds to score K clauses (int8, as the product
runs its models).

    python bench/train_reranker.py
    python bench/rerank_eval.py [--model bench/data/reranker] [--index bench/data/laws-index]
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

from assistant.config import Settings  # noqa: E402
from assistant.evaluation import first_hit, read_eval_file  # noqa: E402
from assistant.index import tuned_model  # noqa: E402
from assistant.index.build import passage_text  # noqa: E402
from assistant.retrieve import logit  # noqa: E402
from assistant.service import Assistant  # noqa: E402

HEADS = (5, 8)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(HERE / "data" / "reranker"))
    parser.add_argument("--index", type=Path, default=HERE / "data" / "laws-index")
    parser.add_argument("--split", type=int, default=150, help="questions of the judge split to measure on")
    args = parser.parse_args()
    import torch
    from sentence_transformers.cross_encoder import CrossEncoder

    model = CrossEncoder(args.model, max_length=128, device="cpu")
    model[0].model = torch.ao.quantization.quantize_dynamic(model[0].model, {torch.nn.Linear}, dtype=torch.qint8)
    assistant = Assistant(Settings(index_dir=args.index))
    dev = [(i.question, i.expect) for i in read_eval_file(HERE.parent / "eval" / "laws_dev.jsonl")
           if i.kind == "answerable"]
    unseen = set(tuned_model.meta()["judge_questions"])
    split = [(item["question"], [{"title": e.get("law_name") or e.get("title", ""),
                                  "clause": e.get("article_no") or e.get("clause", "")} for e in item["expect"]])
             for line in (HERE.parent / "train" / "questions.jsonl").read_text(encoding="utf-8").splitlines()
             if (item := json.loads(line))["question"] in unseen]
    random.seed(5)
    random.shuffle(split)
    seconds: dict[int, list[float]] = {k: [] for k in HEADS}
    for name, questions in (("laws_dev", dev), ("judge split", split[:args.split])):
        hits: dict[str, list[bool]] = {"judge": []}
        for question, expect in questions:
            retrieval = assistant.retrieve(question)
            head = retrieval.candidates[:max(HEADS)]
            hits["judge"].append(first_hit([c.clause for c in head[:1]], expect) == 1)
            for k in HEADS:
                started = time.perf_counter()
                scores = model.predict([(retrieval.normalized, passage_text(c.clause)) for c in head[:k]],
                                       show_progress_bar=False, batch_size=k)
                seconds[k].append(time.perf_counter() - started)
                alone = max(range(len(scores)), key=lambda i: scores[i])
                mixed = max(range(len(scores)), key=lambda i: scores[i] + 0.5 * logit(head[i].relevance, 1e-6))
                hits.setdefault(f"cross-encoder, first {k}", []).append(first_hit([head[alone].clause], expect) == 1)
                hits.setdefault(f"cross-encoder + judge, first {k}", []).append(
                    first_hit([head[mixed].clause], expect) == 1)
        print(f"{name} ({len(questions)} questions), hit@1: "
              + ", ".join(f"{system} {sum(v) / len(v):.3f}" for system, v in hits.items()))
    for k in HEADS:
        print(f"scoring {k} clauses: median {1000 * statistics.median(seconds[k]):.0f} ms, "
              f"p95 {1000 * sorted(seconds[k])[int(0.95 * len(seconds[k]))]:.0f} ms")


if __name__ == "__main__":
    main()
