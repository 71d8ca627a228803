"""The answer a citizen reads: what was asked, in one short paragraph — the substance, not the heading; the asked
fact first; whole sentences; nothing from clauses that do not address the question; Chinese punctuation."""

from pathlib import Path

import pytest

from assistant.answer.display import punctuate
from assistant.answer.sentences import sentence_units, split_sentences
from assistant.evaluation import EvalItem, judge_answer

pytestmark = pytest.mark.slow


def test_a_heading_frames_the_answer_and_is_never_all_of_it(assistant):
    answer = assistant.ask("政府网站要怎么集约化建设？")
    assert answer.body.startswith("根据通知7、（一）推进政府网站集约化建设的要求，")
    assert "统一技术平台" in answer.body and "政府网站发展指引" in answer.body
    assert not judge_answer(EvalItem("1", answer.question, "answerable", ["推進政府網站集約化建設"]),
                            answer)["heading_only"]


def test_only_clauses_that_address_the_question_are_cited(assistant):
    answer = assistant.ask("政務公開工作在考核裡佔多少分？")
    assert "分值不低於4%" in answer.body
    assert [c.clause.label for c in answer.citations] == ["问答5", "8、（二）"]  # not 2、（三） or 7、（二）
    assert "實施步驟" not in answer.body and "移動客戶端" not in answer.body


def test_an_unrelated_clause_adds_nothing(assistant):
    answer = assistant.ask("政务微博微信要怎么用？")
    assert [c.clause.label for c in answer.citations] == ["7、（二）"]
    assert "信息发布" in answer.body and "热线" not in answer.body
    training = assistant.ask("政务公开培训怎么安排？")  # once answered with the hotline clause appended
    assert "热线" not in training.body  # no clause clearly answers it: at most one cited, or candidates and no claim
    assert len(training.citations) == 1 or (training.outcome == "candidates" and not training.citations)


def test_a_follow_up_gets_the_asked_fact_first_and_only(assistant):
    first = assistant.ask("政务热线电话太多打不通，政府会整合吗？")
    follow_up = assistant.ask("那要在什么时候之前完成？", ["政务热线电话太多打不通，政府会整合吗？"])
    assert follow_up.body != first.body
    assert "年底前" in follow_up.body.split("。")[0]
    assert "加快整合各类政务热线电话。" not in follow_up.body  # the deadline answers it; nothing else is added


def test_a_list_item_stays_in_its_sentence(embedder, tmp_path: Path):
    from assistant.config import Settings
    from assistant.index.build import build_index
    from assistant.service import Assistant

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "jiuzhu.md").write_text(
        "---\ntitle: 某市临时救助实施办法\ndoc_number: 某民发〔2026〕3号\n---\n"
        "一、救助对象\n（一）对象范围。临时救助的对象包括：\n（1）最低生活保障家庭；\n（2）特困供养人员和低保边缘家庭。\n"
        "（二）申请方式。申请人向户籍所在地乡镇人民政府提出申请。\n", encoding="utf-8")
    build_index([corpus], tmp_path / "index", embedder)
    helper = Assistant(Settings(index_dir=tmp_path / "index", state_dir=tmp_path / "state"), embedder=embedder)
    answer = helper.ask("临时救助的对象有哪些？")
    # each item is a clause of its own: the sentence is quoted whole, each item tagged with its clause
    assert "临时救助的对象包括：（1）最低生活保障家庭；[1]（2）特困供养人员和低保边缘家庭。[2]" in answer.body
    assert [c.clause.label for c in answer.citations] == ["一、（一）（1）", "一、（一）（2）"]
    assert split_sentences("对象包括：\n（1）甲；\n（2）乙。") == ["对象包括：（1）甲；（2）乙。"]
    assert [u.heading for u in sentence_units("（一）对象范围。对象包括：\n（1）甲。")] == [True, False]


def test_punctuation_is_chinese_in_the_body_and_the_citations(assistant):
    answer = assistant.ask("政务热线号码太多，省里打算怎么办？")
    assert "（室）" in answer.body and "(室)" not in answer.text
    assert "," not in answer.body and "《关于进一步做好全省政务公开工作的通知》 7、（四）" in answer.text
    assert punctuate("报上一级政府办公厅(室)备案,共1,000元 (鲁政办发〔2026〕12号)") == \
        "报上一级政府办公厅（室）备案，共1,000元 （鲁政办发〔2026〕12号）"
    assert "(室)" in answer.citations[-1].clause.text  # the sources panel shows the clause as written
