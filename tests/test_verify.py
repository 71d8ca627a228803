"""Sentence-level verification of generated answers, without a model."""

from __future__ import annotations

from assistant.answer.verify import chinese_to_int, facts, verify

CLAUSES = {
    1: "8、（二）各市、各部門也要將政務公開納入績效考核體系，分值不低於4%。",
    2: "依申请公开的，行政机关应当自收到申请之日起15个工作日内予以答复；依据鲁政办发〔2018〕12号执行。",
}


def test_chinese_numerals_read_as_numbers():
    assert [chinese_to_int(t) for t in ("十五", "二十三", "一百零五", "三万", "二〇一八", "两")] == [
        15, 23, 105, 30000, 2018, 2]


def test_figures_are_compared_across_scripts_widths_and_numerals():
    assert {"4", "15", "鲁政办发〔2018〕12号"} <= facts("分值不低於４％，十五个工作日，鲁政办发[2018]12号")
    checked = verify("政务公开纳入绩效考核，分值不低于4%。[1]申请后十五个工作日内答复。[2]", CLAUSES)
    assert checked.verified and [s.cited for s in checked.sentences] == [[1], [2]]


def test_a_wrong_figure_an_unknown_citation_and_an_uncited_sentence_are_each_caught():
    checked = verify("分值不低于5%。[1]答复期限是15个工作日。[2][9]这项改革意义重大。", CLAUSES)
    first, second, third = checked.sentences
    assert not first.kept and first.missing == ["5"]
    assert second.kept and second.cited == [2] and checked.unknown_citations == [9]
    assert not third.kept and third.cited == []
    assert not checked.verified
    assert checked.checks({1: "[1]", 2: "[2]"})[0] == {"n": 1, "clause": "[1]", "sentences": 1,
                                                      "facts_found": False, "missing": ["5"]}


def test_a_figure_is_checked_against_the_clauses_the_sentence_cites_not_all_of_them():
    checked = verify("依申请公开的，应当在4个工作日内答复。[2]", CLAUSES)  # 4 is in clause 1, not in clause 2
    assert not checked.sentences[0].kept and checked.sentences[0].missing == ["4"]
