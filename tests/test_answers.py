"""Cited extractive answers: every citation retrieved, every sentence from its cited clause, honest refusals."""

import re

import pytest

from assistant.answer.display import render
from assistant.answer.extractive import validity_warning
from assistant.answer.sentences import split_sentences
from assistant.ingest.normalize import is_traditional, normalize
from assistant.ingest.records import Clause

pytestmark = pytest.mark.slow

QUESTIONS = ["政务公开工作要纳入绩效考核吗？", "热线电话太多了打不通怎么办？", "兩微一端是指什麼？",
             "线上线下政务服务要融合吗？", "涉及群众切身利益的决策草案会提前公布吗？"]


FRAME = re.compile(r"^根[据據]\w{1,4}?[\d一二三四五六七八九十、（）.]+(?P<heading>[^，]+)的要求，")


def unpunctuated(text: str) -> str:
    """Text without punctuation: the answer shows Chinese punctuation where the source mixed in ASCII."""
    return re.sub(r"[\W_]", "", normalize(text))


def _bigram_share(sentences: list[str], line: str) -> float:
    def grams(text: str) -> set[str]:
        text = re.sub(r"\W", "", normalize(text))
        return {text[i:i + 2] for i in range(len(text) - 1)}

    new = grams("".join(sentences))
    return len(new & grams(line)) / len(new)


@pytest.mark.parametrize("question", QUESTIONS)
def test_every_sentence_comes_from_the_clause_it_cites(assistant, question):
    answer = assistant.ask(question)
    assert not answer.refused
    retrieved = {c.clause.clause_id for c in assistant.retrieve(question).candidates}
    by_n = {c.n: c for c in answer.citations}
    tagged = re.findall(r"([^\[\]]+?)((?:\[\d+\])+)", answer.body)
    assert tagged
    for sentence, markers in tagged:
        first, *also = [by_n[int(n)] for n in re.findall(r"\d+", markers)]
        source = normalize(first.clause.text).replace("\n", "")
        if frame := FRAME.match(sentence):  # 根据通知7、（一）<the clause's heading>的要求，<its sentence>
            assert first.clause.label in frame.group(0) and normalize(frame.group("heading")) in source
            sentence = sentence[frame.end():]
        assert unpunctuated(sentence) in unpunctuated(source)
        for citation in also:  # an interpreted clause cited beside the interpretation that restates it
            assert citation.role == "interpreted"
            assert citation.clause.clause_id in first.clause.refers_to
            assert _bigram_share(citation.sentences, sentence) >= 0.6
    for citation in answer.citations:
        if citation.role == "retrieved":
            assert citation.clause.clause_id in retrieved
        elif citation.role == "list":  # another item of a retrieved item's list
            assert any(c.clause.path[:-1] == citation.clause.path[:-1] and c.clause.clause_id in retrieved
                       for c in answer.citations)
        else:  # the policy clause an interpretation explains
            assert any(citation.clause.clause_id in c.clause.refers_to for c in answer.citations)
        assert render(f"[{citation.n}] {citation.reference()}", is_traditional(question)) in answer.text


def test_answer_to_a_simplified_question_is_in_simplified(assistant):
    answer = assistant.ask("政务公开考核分值是多少？")
    assert "分值不低于4%" in answer.text
    assert answer.citations[0].clause.text  # the citation keeps the original (Traditional) text
    traditional = assistant.ask("政務公開考核分值是多少？")
    assert "分值不低於4%" in traditional.text


def test_interpretation_answer_also_cites_the_clause_it_interprets(assistant):
    answer = assistant.ask("政务热线电话太多打不通，政府会整合吗？")
    kinds = [(c.clause.metadata["kind"], c.clause.label, c.role) for c in answer.citations]
    interpretations = [i for i, k in enumerate(kinds) if k[0] == "interpretation"]
    assert interpretations, kinds
    following = kinds[interpretations[0] + 1]
    assert following == ("policy", "7、（四）", "interpreted")


@pytest.mark.parametrize("question", ["医保报销比例是多少？", "明天天气怎么样？", "护照在哪里办理？"])
def test_out_of_corpus_is_refused_with_a_referral(assistant, question):
    answer = assistant.ask(question)
    assert answer.refused
    assert answer.citations == []
    assert "没有找到" in answer.text and "12345" in answer.text


def test_refusal_speaks_the_users_script(assistant):
    assert "沒有找到" in assistant.ask("護照在哪裡辦理？").text


def test_sentences_drop_numbering_and_interpretation_questions():
    assert split_sentences("(四)加快整合各類政務熱線電話。針對問題,要進行清理。") == \
        ["加快整合各類政務熱線電話。", "針對問題,要進行清理。"]
    assert split_sentences("问：热线怎么办？\n答：要整合。") == ["要整合。"]


def test_validity_warning_for_repealed_or_expired_documents():
    def clause(**meta):
        return Clause("d#1", "d", ("1",), "第一条", "", "文本", 0, metadata={"title": "某办法", **meta})

    assert "已废止" in validity_warning(clause(status="已废止"))
    assert "到期" in validity_warning(clause(status="现行有效", expiry_date="2020-01-01"))
    assert validity_warning(clause(status="现行有效", expiry_date="2999-01-01")) == ""


@pytest.mark.parametrize("question", ["政务公开考核分值是多少？", "政务热线电话太多打不通，政府会整合吗？",
                                      "政府信息公开申请怎么答复？"])
def test_further_citations_share_the_questions_terms(assistant, question):
    """A clause cited after the first must contain some of the question's words, not merely be similar."""
    from assistant.answer.extractive import EXTRA_COVERAGE

    answer, retrieval = assistant.ask_traced(question)
    coverage = {c.clause.clause_id: c.coverage for c in retrieval.candidates}
    for citation in answer.citations[1:]:
        if citation.role == "retrieved":
            assert coverage[citation.clause.clause_id] >= EXTRA_COVERAGE, citation.reference()


def test_score_question_cites_the_score_clause_and_its_interpretation_only(assistant):
    answer = assistant.ask("政务公开考核分值是多少？")
    assert [c.clause.label for c in answer.citations] == ["问答5", "8、（二）"]


def test_a_distinctive_phrase_that_stands_in_one_clause_is_answered_from_it(assistant):
    answer = assistant.ask("不见面审批是在哪条里提到的？")
    assert not answer.refused
    assert answer.citations[0].clause.label == "5、（一）"
