"""Shared fixtures: every index path points into tmp; the real model and a real demo index are built once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT / "corpus"
EVAL = ROOT / "eval"
SEED = CORPUS / "shandong-2018-zhengwu-gongkai.md"


@pytest.fixture(autouse=True)
def _isolated_index(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Nothing a test does writes into the repository's indexes/."""
    monkeypatch.setenv("POLICY_ASSISTANT_INDEX_DIR", str(tmp_path / "indexes"))


@pytest.fixture(scope="session")
def embedder():  # type: ignore[no-untyped-def]
    """The real bundled embedding model, loaded once."""
    from assistant.config import IndexSettings
    from assistant.index.embedder import load_embedder

    return load_embedder(IndexSettings())


@pytest.fixture(scope="session")
def demo_index(tmp_path_factory: pytest.TempPathFactory, embedder) -> Iterator[Path]:  # type: ignore[no-untyped-def]
    """The shipped demo corpus indexed with the real model into a real embedded Chroma."""
    from assistant.index.build import build_index

    index_dir = tmp_path_factory.mktemp("demo-index")
    build_index([CORPUS], index_dir, embedder)
    yield index_dir


@pytest.fixture(scope="session")
def assistant(demo_index: Path, embedder):  # type: ignore[no-untyped-def]
    from assistant.config import Settings
    from assistant.service import Assistant

    return Assistant(Settings(index_dir=demo_index), embedder=embedder)
