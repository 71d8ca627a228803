"""Index generations: the manifest readers follow, the writers' lock, collection names, recovery and cleanup.

A generation is committed in the registry first and then named in `manifest.json` (an atomic rename);
readers follow the manifest. A run killed at any point leaves the previous generation intact: the next
run rolls its leftovers back (or, when the registry had committed, writes the manifest it missed).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import logging
import os
import shutil
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from assistant.errors import AssistantError, IndexNotBuiltError
from assistant.index.registry import Registry
from assistant.index.store import ClauseStore, drop_collection, remove_orphaned_segments

log = logging.getLogger(__name__)

MANIFEST = "manifest.json"
LOCK = "index.lock"
GENERATIONS = "generations"


@dataclass
class Manifest:
    """The generation readers answer from."""

    generation: int
    collection: str
    model: str
    fingerprint: str
    chunking: str
    documents: int
    clauses: int
    built_at: str

    @classmethod
    def read(cls, index_dir: Path) -> Manifest:
        path = index_dir / MANIFEST
        if not path.exists():
            raise IndexNotBuiltError(str(index_dir))
        try:
            manifest = cls(**json.loads(path.read_text(encoding="utf-8")))
            if not isinstance(manifest.generation, int):
                raise TypeError("generation is not a number")
        except (ValueError, TypeError) as e:
            raise AssistantError(f"{path} is not an index manifest of this version ({e})",
                                 "run `policy-assistant index --rebuild`") from e
        return manifest

    def write(self, index_dir: Path) -> None:
        tmp = index_dir / (MANIFEST + ".tmp")
        tmp.write_text(json.dumps(asdict(self), ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp, index_dir / MANIFEST)


def read_manifest(index_dir: Path) -> Manifest | None:
    try:
        return Manifest.read(index_dir)
    except AssistantError:
        return None


def generation_dir(index_dir: Path, generation: int) -> Path:
    return index_dir / GENERATIONS / str(generation)


def collection_name(prefix: str, fingerprint: str, chunking: str, generation: int) -> str:
    """Named by a hash of the embedding model and the chunking, and by the generation that built it."""
    key = hashlib.sha256(f"{fingerprint}|{chunking}".encode()).hexdigest()[:12]
    return f"{prefix}-{key}-g{generation}"


class IndexBusyError(AssistantError):
    """Another process is updating the same index."""


@contextmanager
def index_lock(index_dir: Path) -> Iterator[None]:
    """One writer per index directory; the lock goes with the process, even one that is killed."""
    index_dir.mkdir(parents=True, exist_ok=True)
    path = index_dir / LOCK
    handle = open(path, "a+", encoding="utf-8")  # noqa: SIM115 (held for the whole block)
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise IndexBusyError(f"{index_dir} is being updated by {holder}",
                                 "wait for that run to finish, then try again") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} since {time.strftime('%Y-%m-%d %H:%M:%S')}")
        handle.flush()
        yield
    finally:
        handle.close()


def recover(index_dir: Path, registry: Registry, client: Any) -> None:
    """Bring the index to its last committed generation after a run that did not finish."""
    generation, collection = registry.committed_generation()
    if generation:
        manifest = read_manifest(index_dir)
        if manifest is None or manifest.generation != generation:
            log.warning("completing generation %s, committed by a run that stopped before switching", generation)
            Manifest(**registry.generation_summary(generation)["manifest"]).write(index_dir)
    unfinished = registry.building_generations()
    for number, name in unfinished:
        log.warning("rolling back generation %s, left unfinished by an earlier run", number)
        if name != collection:
            drop_collection(client, name)
        elif collection:
            ClauseStore(client, collection).roll_back(generation)
        registry.drop_generation(number)
    folder = index_dir / GENERATIONS
    if folder.exists():
        for child in folder.iterdir():
            if not child.name.isdigit() or int(child.name) > generation:
                shutil.rmtree(child, ignore_errors=True)


def clean_up(index_dir: Path, registry: Registry, client: Any, previous: int, fingerprint: str,
             embedded: bool) -> None:
    """After a switch: drop what neither the new generation nor the previous one (still being read) uses."""
    generation, collection = registry.committed_generation()
    gone = registry.removed_records(previous)
    if gone and collection:
        ClauseStore(client, collection).delete(gone)
    registry.forget_records(previous)
    keep = {collection, registry.collection_of(previous)}
    dropped = [name for name in registry.collections() if name not in keep]
    for name in dropped:
        drop_collection(client, name)
        registry.forget_collection(name)
    if dropped and embedded:
        remove_orphaned_segments(index_dir / "chroma")
    registry.prune_vectors(fingerprint)
    folder = index_dir / GENERATIONS
    for child in folder.iterdir() if folder.exists() else ():
        if child.name not in (str(generation), str(previous)):
            shutil.rmtree(child, ignore_errors=True)
