"""Eval scoring: {title, clause} expectations, ranks over the retrieved candidates, per-script metrics."""

from assistant.answer.records import Answer, Citation
from assistant.evaluation import EvalItem, EvalResult, clause_matches, run_eval
from assistant.ingest.records import Clause
from assistant.retrieve import Candidate, Retrieval


def clause(title: str, label: str, text: str = "") -> Clause:
    return Clause(f"{title}#{label}", title, (label,), label, "", text, 0, {"title": title})


LABOUR = "中华人民共和国劳动合同法"


def test_title_and_article_must_both_match_and_scripts_are_folded():
    article = clause(LABOUR, "第十九条", "试用期不得超过六个月。")
    assert clause_matches(article, {"title": "《中華人民共和國勞動合同法》", "clause": "第十九条"})
    assert not clause_matches(article, {"title": LABOUR, "clause": "第十条"})
    assert not clause_matches(article, {"title": "中华人民共和国劳动法", "clause": "第十九条"})
    assert clause_matches(clause(LABOUR, "第十九条第2段"), {"title": LABOUR, "clause": "第十九条"})
    assert clause_matches(article, "試用期不得超過")


def test_rank_comes_from_the_retrieved_candidates_and_metrics_split_by_script():
    hit = clause(LABOUR, "第十九条")
    other = clause(LABOUR, "第一条")

    def ask(question: str, history: object) -> tuple[Answer, Retrieval]:
        ranked = [other, hit] if "简" in question else [hit]
        retrieval = Retrieval(question, question, [Candidate(c) for c in ranked], relevant=True)
        return Answer(question, "…", refused=False, citations=[Citation(1, ranked[0], 1.0)]), retrieval

    items = [EvalItem("1", "简体问题", "answerable", [{"title": LABOUR, "clause": "第十九条"}]),
             EvalItem("2", "繁體問題", "answerable", [{"title": LABOUR, "clause": "第十九条"}])]
    metrics = EvalResult(rows=list(run_eval(items, ask))).metrics()
    assert metrics["hit@1"] == 0.5 and metrics["hit@3"] == 1.0 and metrics["mrr@5"] == 0.75
    assert metrics["cited"] == 0.5
    assert metrics["simplified"]["hit@1"] == 0.0 and metrics["traditional"]["hit@1"] == 1.0
