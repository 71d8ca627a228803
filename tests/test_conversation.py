"""Reading a question against its conversation, on the real demo index: an implicit follow-up keeps to the clause
just cited, a follow-up that names a new subject goes to its own clause, a switch to a subject the corpus does not
know is refused, and the conversation file eval scores turns by position."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from assistant.conversation import Turn, own_terms
from assistant.evaluation import EvalResult, read_eval_file, run_eval
from assistant.service import Assistant
from tests.conftest import EVAL


def converse(assistant: Assistant, *questions: str) -> list:  # type: ignore[type-arg]
    history: list[Turn] = []
    answers = []
    for question in questions:
        answer = assistant.ask(question, history)
        history.append(Turn.of(answer))
        answers.append(answer)
    return answers


def labels(answer) -> list[str]:  # type: ignore[no-untyped-def]
    return [c.clause.label for c in answer.citations]


def test_an_implicit_follow_up_is_answered_from_the_clause_just_cited(assistant: Assistant):
    first, deadline = converse(assistant, "政务热线电话太多打不通，政府会整合吗？", "最晚啥时候要弄好？")
    assert "7、（四）" in labels(first)
    assert not deadline.refused and "7、（四）" in labels(deadline) and "年底前" in deadline.body
    assert deadline.asked  # staff see how it was read


def test_the_same_question_asked_alone_is_not_read_with_any_earlier_topic(assistant: Assistant):
    alone = assistant.ask("最晚啥时候要弄好？")
    assert not alone.asked  # nothing to read it with


def test_a_follow_up_that_names_a_new_subject_is_answered_from_its_own_clause(assistant: Assistant):
    budget, hospitals = converse(assistant, "县里的预算决算要公开吗？", "那医院学校的信息呢？")
    assert "3、（一）" in labels(budget)
    assert "6、（五）" in labels(hospitals) and "3、（一）" not in labels(hospitals)


def test_a_switch_to_a_subject_the_corpus_does_not_know_is_refused(assistant: Assistant):
    rural, prices = converse(assistant, "乡村振兴的政策会公开吗？", "那明年房价会涨吗？")
    assert "1、（一）" in labels(rural)
    assert prices.refused and not prices.citations


def test_a_corrected_question_is_read_as_what_was_meant(assistant: Assistant):
    _, meant = converse(assistant, "政务公开考核分值是多少？", "不是，我问的是政府网站怎么集约化建设")
    assert labels(meant)[0] == "7、（一）" and meant.asked == "政府网站怎么集约化建设"


def test_own_terms_are_the_question_s_subject_not_its_aspect(assistant: Assistant):
    lexical = assistant.retriever.lexical
    assert own_terms("什么时候之前要弄好？", lexical) == []
    assert own_terms("那市里呢？", lexical) == []
    assert "养老金" in own_terms("那今年养老金涨多少？", lexical)


def test_a_turn_round_trips_through_the_state_store_and_old_rows_still_read():
    turn = Turn("那市里呢？", "政务公开考核分值是多少？ 那市里呢？", ("seed#8/2",))
    assert Turn.loads(turn.dumps()) == turn
    assert Turn.loads("政务公开考核分值是多少？") == Turn("政务公开考核分值是多少？")  # kept before turns were


def test_conversation_files_are_scored_by_turn(assistant: Assistant, tmp_path: Path):
    hotline = ["加快整合各類政務熱線電話"]
    dialogue = {"id": "c1", "turns": [
        {"question": "政务热线电话太多打不通，政府会整合吗？", "kind": "answerable", "expect": hotline},
        {"question": "最晚啥时候要弄好？", "kind": "answerable", "expect": hotline, "facts": ["年底前"]},
        {"question": "那明年房价会涨吗？", "kind": "out_of_corpus"}]}
    path = tmp_path / "dialogue.jsonl"
    path.write_text(json.dumps(dialogue, ensure_ascii=False) + "\n", encoding="utf-8")
    items = read_eval_file(path)
    assert [(i.id, i.conversation, i.turn) for i in items] == [("c1#1", "c1", 1), ("c1#2", "c1", 2), ("c1#3", "c1", 3)]
    metrics = EvalResult(rows=list(run_eval(items, assistant.ask_traced))).metrics()
    assert metrics["conversations"] == 1 and metrics["turn_accuracy"] == 1.0
    assert metrics["by_turn"] == {"1": 1.0, "2": 1.0, "3": 1.0} and metrics["fact_recall"] == 1.0


def test_a_bad_conversation_line_names_the_turn(tmp_path: Path):
    path = tmp_path / "bad.jsonl"
    path.write_text(json.dumps({"id": "c", "turns": [{"question": "政务公开吗？", "kind": "answerable"}]}) + "\n",
                    encoding="utf-8")
    from assistant.errors import AssistantError

    with pytest.raises(AssistantError, match=r"bad.jsonl:1 turn 1: an answerable question needs 'expect'"):
        read_eval_file(path)


@pytest.mark.slow
def test_the_demo_dialogue_set_meets_its_targets(assistant: Assistant):
    metrics = EvalResult(rows=list(run_eval(read_eval_file(EVAL / "dialogues_demo.jsonl"),
                                            assistant.ask_traced))).metrics()
    # measured: turn accuracy 0.910, out-of-corpus turns refused 0.923, first turns 0.885 (as asked alone)
    assert metrics["turn_accuracy"] >= 0.85 and metrics["out_of_corpus_turns_refused"] >= 0.85
    assert metrics["by_turn"]["2"] >= 0.85
