"""Assemble and check the training data in train/: every answerable question's articles or clauses exist (in
the law corpus export or in tests/data/real/), no question touches a held-out law (by title, inside a title such
as its 修正案, or by name in the question) or the seed policy, no question repeats an evaluation question, no
duplicates.

    python bench/train_data.py --laws bench/data/laws [BATCH.jsonl ...]   # merges batches in, then checks
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent
sys.path.insert(0, str(HERE))

from train_model import TRAIN, accepted, load_passages, read_jsonl  # noqa: E402

from assistant.ingest.normalize import normalize  # noqa: E402

SEED_TITLES = ("关于进一步做好全省政务公开工作的通知", "關於進一步做好全省政務公開工作的通知")


def touches(held: set[str], titles: set[str], question: str) -> bool:
    """A held-out law is named: as a title, inside one (its 修正案, a 关于《…》的解释 of it: all versions of a
    law are held out), or by its short name in the question (宪法里…)."""
    short = {h.removeprefix("中华人民共和国") for h in held}
    return any(h in t for h in held for t in titles) or any(name in question for name in short)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--laws", type=Path, default=HERE / "data" / "laws")
    parser.add_argument("batches", nargs="*", type=Path)
    args = parser.parse_args()
    questions, outside = read_jsonl(TRAIN / "questions.jsonl"), read_jsonl(TRAIN / "out_of_corpus.jsonl")
    for batch in args.batches:
        for item in read_jsonl(batch):
            (outside if item.get("kind") == "out_of_corpus" else questions).append(item)
    held = {normalize(line.strip()) for line in (REPO.parent / "shared" / "eval" / "heldout_laws.txt").read_text(
        encoding="utf-8").splitlines() if line.strip() and not line.startswith("#")}
    evaluated = {normalize(item["question"]) for path in (REPO / "eval").glob("*.jsonl")
                 for item in read_jsonl(path)}
    passages = load_passages([args.laws, REPO / "tests" / "data" / "real"])
    seen: set[str] = set()
    kept: list[dict] = []  # type: ignore[type-arg]
    dropped: Counter[str] = Counter()
    for item in questions:
        key = normalize(item["question"])
        titles = {normalize(e.get("law_name") or e.get("title", "")) for e in item["expect"]}
        seed = titles & {normalize(t) for t in SEED_TITLES}
        reason = ("duplicate" if key in seen else "an evaluation question" if key in evaluated
                  else "a held-out law" if touches(held, titles, key) else "the seed policy" if seed
                  else "no such article" if not accepted(item, passages) else "")
        if reason:
            dropped[reason] += 1
            continue
        seen.add(key)
        kept.append(item)
    kept_outside = []
    for item in outside:
        key = normalize(item["question"])
        if key in seen or key in evaluated or touches(held, {normalize(item.get("near", ""))} - {""}, key):
            dropped["duplicate, evaluated or near a held-out law (out of corpus)"] += 1
            continue
        seen.add(key)
        kept_outside.append(item)
    for name, rows in (("questions.jsonl", kept), ("out_of_corpus.jsonl", kept_outside)):
        (TRAIN / name).write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    documents = Counter(normalize(r["expect"][0].get("law_name") or r["expect"][0].get("title", "")) for r in kept)
    policy = sum(1 for r in kept if "title" in r["expect"][0])
    traditional = sum(1 for r in kept if r.get("script") == "traditional")
    print(f"{len(kept)} answerable questions over {len(documents)} documents ({policy} on policy documents, "
          f"{traditional} in Traditional), {len(kept_outside)} out of corpus; dropped: {dict(dropped)}")


if __name__ == "__main__":
    main()
