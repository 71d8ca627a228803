"""A cross-encoder set as the reranker scores the judged candidates, feeds the judge and reorders them; a
reranker that cannot be loaded is a clear error."""

from pathlib import Path

import pytest

from assistant.config import IndexSettings, Settings
from assistant.errors import AssistantError
from assistant.index.embedder import resolve_model_path
from assistant.retrieve import JUDGED, Retriever

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def cross_encoder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small cross-encoder built from the bundled e5-small (its scoring head freshly initialised)."""
    from sentence_transformers import CrossEncoder

    folder = tmp_path_factory.mktemp("reranker")
    CrossEncoder(resolve_model_path(IndexSettings(tuned=False)), num_labels=1, device="cpu").save(str(folder))
    return folder


def test_the_reranker_feeds_the_judge_and_orders_the_head(demo_index: Path, embedder, cross_encoder: Path):
    plain = Retriever(demo_index, embedder, Settings(index_dir=demo_index)).retrieve("热线电话太多了怎么办？")
    settings = Settings(index_dir=demo_index, retrieval={"reranker": str(cross_encoder)})
    reranked = Retriever(demo_index, embedder, settings).retrieve("热线电话太多了怎么办？")
    head = reranked.candidates[:JUDGED]
    assert all(c.rerank is not None and 0 < c.rerank < 1 for c in head)
    judged = {c.clause.clause_id: c.relevance for c in plain.candidates[:JUDGED]}
    for candidate in head:
        assert candidate.relevance == pytest.approx((judged[candidate.clause.clause_id] + candidate.rerank) / 2)
    order = [c.relevance for c in head if not c.exact]
    assert all(later <= earlier + 0.01 for earlier, later in zip(order, order[1:], strict=False))  # ties by rule


def test_a_reranker_that_cannot_be_loaded_is_named(demo_index: Path, embedder, tmp_path: Path):
    settings = Settings(index_dir=demo_index, retrieval={"reranker": str(tmp_path / "no-such-model")})
    with pytest.raises(AssistantError, match="no-such-model"):
        Retriever(demo_index, embedder, settings).retrieve("热线电话太多了怎么办？")
