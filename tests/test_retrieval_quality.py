"""Retrieval quality on the demo corpus with the real model and the real Chroma: the tests that tell the truth."""

import pytest

from assistant.evaluation import EvalResult, read_eval_file, run_eval
from tests.conftest import EVAL

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("name", ["seed_dev.jsonl", "extra_dev.jsonl"])
def test_eval_targets(assistant, name):
    result = EvalResult(rows=list(run_eval(read_eval_file(EVAL / name), assistant.ask_traced)))
    metrics = result.metrics()
    misses = [(r["id"], r["rank"], r["refused"], r["top"]) for r in result.rows
              if (r["kind"] == "answerable" and r["rank"] != 1) or (r["kind"] != "answerable" and not r["refused"])]
    assert metrics["hit@1"] >= 0.85, misses
    assert metrics["hit@3"] >= 0.95, misses
    assert metrics["refusal_accuracy"] >= 0.75, misses
    assert metrics["false_refusal_rate"] <= 0.05, misses
    assert metrics["cited"] >= 0.85, misses


def test_simplified_question_finds_traditional_clause_7_4(assistant):
    answer = assistant.ask("政务热线电话号码太多、打不通，政府会怎么整合？")
    labels = [c.clause.label for c in answer.citations]
    assert "7、（四）" in labels
    assert not answer.refused


def test_traditional_and_simplified_questions_agree(assistant):
    simplified = assistant.retrieve("政务公开考核分值是多少？").candidates[0].clause.clause_id
    traditional = assistant.retrieve("政務公開考核分值是多少？").candidates[0].clause.clause_id
    assert simplified == traditional


def test_doc_number_in_any_bracket_form_is_matched_exactly(assistant):
    for question in ("国发[2016]55号是什么？", "國發〔2016〕55號是什麼？", "国发（2016）55号"):
        top = assistant.retrieve(question).candidates[0]
        assert top.exact, question
        assert "55號" in top.clause.text
