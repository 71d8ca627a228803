"""The bundled model's tuning: the shipped weights load, reproduce the vectors recorded when they were trained,
name themselves in the index fingerprint, and can be turned off."""

import numpy as np
import pytest

from assistant.config import IndexSettings
from assistant.index import tuned_model
from assistant.index.embedder import fingerprint_for, load_embedder, model_label

pytestmark = pytest.mark.skipif(not tuned_model.available(), reason="no tuned weights in this checkout")


def test_the_shipped_weights_reproduce_the_vectors_recorded_at_training():
    embedder = load_embedder(IndexSettings(quantize=False))
    for probe, recorded in tuned_model.meta()["probes"].items():
        assert float(np.dot(embedder.embed_query(probe), recorded)) >= 0.999, probe


def test_the_tuning_is_part_of_the_fingerprint_and_can_be_turned_off():
    tuned, plain = IndexSettings(), IndexSettings(tuned=False)
    assert model_label(tuned) == f"{plain.model}+tuned-{tuned_model.adapter_id()}"
    assert model_label(plain) == plain.model
    assert fingerprint_for(tuned) != fingerprint_for(plain)
    assert "judge" in tuned_model.meta() and set(tuned_model.meta()["judge"]) >= {"bias", "cosine"}


def test_the_weights_are_small_and_licensed_as_the_base():
    assert (tuned_model.folder() / tuned_model.WEIGHTS).stat().st_size < 8_000_000
    assert tuned_model.meta()["licence"] == "MIT"


def test_the_int8_tuned_model_ranks_like_its_fp32_self(embedder):
    plain = load_embedder(IndexSettings(quantize=False))
    passages = ["各市、各部門也要將政務公開納入績效考核體系,分值不低於4%。",
                "加快整合各类政务热线电话，年底前将清理整合情况报上一级政府办公厅备案。",
                "第十九条　劳动合同期限三个月以上不满一年的，试用期不得超过一个月。"]
    ours, theirs = np.asarray(embedder.embed_documents(passages)), np.asarray(plain.embed_documents(passages))
    for question in ("政务公开考核分值是多少？", "试用期最长多久？", "热线电话怎么整合？"):
        assert int(np.argmax(ours @ embedder.embed_query(question))) == \
            int(np.argmax(theirs @ plain.embed_query(question))), question


def test_a_question_for_today_s_figures_or_an_unstated_day_counts_against_answering():
    from assistant.ingest.records import Clause
    from assistant.retrieve import Candidate, question_evidence

    clause = Clause("law#1", "law", ("第二条",), "第二条", "", "县级以上人民政府应当公开财政预算、决算。", 1)
    head = [Candidate(clause, dense=0.9, relevance=0.8)]
    today = question_evidence(head, "今年我们县的财政预算是多少钱？")
    plain = question_evidence(head, "县政府的财政预算要公开吗？")
    assert today["asks_current"] == 1.0 and today["asks_figure"] == 1.0
    assert plain["asks_current"] == 0.0 and plain["asks_figure"] == 0.0
    stated = Clause("law#2", "law", ("第三条",), "第三条", "", "公园每日六时开园，二十二时闭园。", 2)
    assert question_evidence([Candidate(stated, dense=0.9, relevance=0.8)], "公园几点开门？")["asks_figure"] == 0.0
    refusal = tuned_model.meta()["refusal"]
    assert refusal["asks_current"] < 0 and refusal["asks_figure"] < 0  # fitted: each makes an answer less likely
