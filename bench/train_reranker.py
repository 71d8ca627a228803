"""Train a cross-encoder from the tuned e5-small on `train/`, with the product's own hard negatives (CPU).

    pip install -e '.[train]'
    python bench/train_reranker.py --laws bench/data/laws --index bench/data/laws-index [--limit N]
    python bench/rerank_eval.py                      # what it does to the judged head, and what it costs

A candidate for the top rank: the judge orders the head with a logistic over cosine, coverage, ranks and
phrases, and on laws it never saw it is right first about 0.41 of the time while the right clause is among the
first five about 0.82 of the time. The cross-encoder reads the question and the clause together.

Data: the answerable questions of `train/questions.jsonl` that the tuned encoder was trained on (its judge split,
`judge_questions` in tuned.json, stays unseen, so the judge can be fitted on it). For each, the accepted clause the
product ranks highest is the positive, and the product's three best-ranked clauses that are not accepted are the
hard negatives (never a clause of a held-out law); one more comes from another question of the batch. Model: the
tuned e5-small as a `BertForSequenceClassification` (pooler and one-logit head new), LoRA rank 16 on every
encoder layer's attention and feed-forward, pooler and head trained whole, sentence-transformers'
`CrossEncoderTrainer` with its `MultipleNegativesRankingLoss`, one epoch, 128 tokens. Writes the merged model to
`bench/data/reranker` (a CrossEncoder folder: `POLICY_ASSISTANT_RETRIEVAL__RERANKER=bench/data/reranker` uses
it through the reranker setting).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

from train_model import TRAIN, accepted, held_out, load_passages, read_jsonl  # noqa: E402

from assistant.index import tuned_model  # noqa: E402
from assistant.index.build import passage_text  # noqa: E402
from assistant.ingest.normalize import normalize  # noqa: E402

NEGATIVES = 3
MAX_LENGTH = 128
# every encoder layer's attention and feed-forward (not the pooler: it is new, and trained whole)
TARGET = (r".*encoder\.layer\.\d+\.(attention\.self\.(query|key|value)|attention\.output\.dense"
          r"|intermediate\.dense|output\.dense)")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", type=Path, default=HERE / "data" / "laws")
    parser.add_argument("--index", type=Path, default=HERE / "data" / "laws-index",
                        help="the law corpus and tests/data/real indexed with the tuned model")
    parser.add_argument("--out", type=Path, default=HERE / "data" / "reranker")
    parser.add_argument("--limit", type=int, default=0, help="use only this many questions (a quick check)")
    parser.add_argument("--batch", type=int, default=16)
    args = parser.parse_args()
    random.seed(13)
    started = time.time()
    rows = _rows(args.laws, args.index, args.limit)
    print(f"{len(rows)} questions with hard negatives ({time.time() - started:.0f} s)", file=sys.stderr)
    model = _train(rows, args.batch)
    model.save_pretrained(str(args.out))
    record = {"questions": len(rows), "negatives": NEGATIVES, "max_length": MAX_LENGTH, "batch": args.batch,
              "seconds": round(time.time() - started)}
    (args.out / "training.json").write_text(json.dumps(record, indent=1), encoding="utf-8")
    print(json.dumps(record), file=sys.stderr)


def _rows(laws: Path, index: Path, limit: int) -> list[tuple[str, ...]]:
    """(question, positive, hard negatives …) over the encoder's training split, as the product retrieves them."""
    from assistant.config import Settings
    from assistant.retrieve import JUDGED
    from assistant.service import Assistant

    passages = load_passages([laws, HERE.parent / "tests" / "data" / "real"])
    unseen = set(tuned_model.meta()["judge_questions"])
    held = held_out()
    pairs = [(item, found) for item in read_jsonl(TRAIN / "questions.jsonl") if item["question"] not in unseen
             if (found := accepted(item, passages))]
    random.shuffle(pairs)
    pairs = pairs[:limit] if limit else pairs
    assistant = Assistant(Settings(index_dir=index))
    rows = []
    for n, (item, found) in enumerate(pairs):
        ids = {cid for cid, _ in found}
        retrieval = assistant.retrieve(item["question"])
        head = [c.clause for c in retrieval.candidates[:JUDGED]]
        positive = next((passage_text(c) for c in head if c.clause_id in ids), found[0][1])
        negatives = [passage_text(c) for c in head if c.clause_id not in ids and normalize(c.title) not in held]
        if len(negatives) >= NEGATIVES:
            rows.append((retrieval.normalized, positive, *negatives[:NEGATIVES]))
        if n % 500 == 0:
            print(f"  mined {n}/{len(pairs)}", file=sys.stderr)
    return rows


def _train(rows: list[tuple[str, ...]], batch: int) -> Any:
    from datasets import Dataset
    from peft import LoraConfig, get_peft_model
    from sentence_transformers.cross_encoder import CrossEncoder, CrossEncoderTrainer, CrossEncoderTrainingArguments
    from sentence_transformers.cross_encoder.losses import MultipleNegativesRankingLoss

    from assistant.config import IndexSettings
    from assistant.index.embedder import resolve_model_path

    model = CrossEncoder(resolve_model_path(IndexSettings()), num_labels=1, max_length=MAX_LENGTH, device="cpu")
    model[0].model = get_peft_model(model[0].model, LoraConfig(
        r=16, lora_alpha=32, target_modules=TARGET, lora_dropout=0.05, modules_to_save=["classifier", "pooler"]))
    columns = {"query": [r[0] for r in rows], "positive": [r[1] for r in rows]}
    columns.update({f"negative_{i}": [r[2 + i] for r in rows] for i in range(NEGATIVES)})
    arguments = CrossEncoderTrainingArguments(
        output_dir=str(HERE / "data" / "reranker-run"), num_train_epochs=1, per_device_train_batch_size=batch,
        learning_rate=2e-4, warmup_ratio=0.1, seed=13, logging_steps=10, save_strategy="no", report_to=[],
        use_cpu=True, dataloader_num_workers=0)
    trainer = CrossEncoderTrainer(model=model, args=arguments, train_dataset=Dataset.from_dict(columns),
                                  loss=MultipleNegativesRankingLoss(model, num_negatives=1))
    trainer.train()
    model[0].model = model[0].model.merge_and_unload()
    return model


if __name__ == "__main__":
    main()
