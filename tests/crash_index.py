"""Run one reindex and kill this process with SIGKILL at a chosen point, as `kill -9` would.

    python -m tests.crash_index INDEX_DIR CORPUS POINT COLLECTION_PREFIX [CHROMA_URL]
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path
from typing import Any

from assistant.index import build, generations, lexical, registry, store
from assistant.index.build import Indexer
from tests.fakes import CountingEmbedder

# point → (owner, attribute, whether to die before or after the call)
POINTS: dict[str, tuple[Any, str, str]] = {
    "embedding": (registry.Registry, "cache_vectors", "after"),  # some vectors cached, nothing else written
    "storing": (store.ClauseStore, "add", "after"),  # new records in the store, old ones not yet marked
    "marking": (store.ClauseStore, "mark_removed", "after"),  # old records marked removed
    "lexical": (lexical.LexicalIndex, "save", "after"),  # the generation's BM25 files written
    "commit": (registry.Registry, "activate_generation", "after"),  # inside the transaction, before COMMIT
    "switch": (generations.Manifest, "write", "before"),  # committed, manifest not switched yet
    "cleanup": (registry.Registry, "forget_records", "before"),  # switched; old records half cleaned up
}


def die_at(point: str) -> None:
    owner, name, when = POINTS[point]
    original = getattr(owner, name)

    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if when == "before":
            os.kill(os.getpid(), signal.SIGKILL)
        result = original(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGKILL)
        return result

    setattr(owner, name, wrapper)


def main() -> None:
    index_dir, corpus, point, prefix = sys.argv[1:5]
    url = sys.argv[5] if len(sys.argv) > 5 else ""
    die_at(point)
    embedder = CountingEmbedder()
    Indexer(Path(index_dir), lambda: embedder, fingerprint=embedder.fingerprint, model=embedder.name,
            chroma_url=url, collection_prefix=prefix).sync([Path(corpus)])
    assert build  # the module under test
    sys.exit(f"reached the end without dying at {point}")


if __name__ == "__main__":
    main()
