"""Phone formatting and follow-up reading, without a server."""

from __future__ import annotations

from assistant.answer.records import Answer, Citation
from assistant.channels.wechat.format import MORE, phone_text, split_reply
from assistant.ingest.records import Clause


def _citation(n: int, label: str) -> Citation:
    clause = Clause(f"d#{n}", "d", (label,), label, "", "正文。", n,
                    metadata={"title": "关于进一步做好全省政务公开工作的通知", "doc_number": "鲁政办发〔2018〕1号"})
    return Citation(n, clause, 0.9)


def test_an_answer_reads_first_and_its_citations_follow_on_one_line():
    citations = [_citation(1, "7、（四）"), _citation(2, "8、（二）")]
    text = "**加快整合**各类政务热线。[1][2]\n\n依据：\n[1] 《…》 7、（四）\n[2] 《…》 8、（二）"
    phone = phone_text(Answer("q", text, refused=False, citations=citations))
    assert phone.startswith("加快整合各类政务热线。[1][2]")
    assert phone.endswith("依据：[1]《关于进一步做好全省政务公开工作的通知》（鲁政办发〔2018〕1号） 7、（四）；"
                          "[2]《关于进一步做好全省政务公开工作的通知》（鲁政办发〔2018〕1号） 8、（二）")
    traditional = phone_text(Answer("熱線怎麼辦？", text, refused=False, citations=citations))
    assert "[1]《關於進一步做好全省政務公開工作的通知》（魯政辦發〔2018〕1號） 7、（四）" in traditional
    refusal = Answer("q", "语料中没有找到相关规定。建议拨打12345。", refused=True)
    assert phone_text(refusal) == refusal.text


def test_replies_are_cut_after_sentences_within_the_byte_budget():
    text = "".join(f"第{i}句话说明一项规定。" for i in range(300))
    parts = split_reply(text, 2000)
    assert all(len(p.encode()) <= 2000 for p in parts)
    assert all(p.endswith(MORE) for p in parts[:-1]) and not parts[-1].endswith(MORE)
    assert "".join(p.removesuffix(MORE) for p in parts) == text
    assert split_reply("短回答。", 2000) == ["短回答。"]
    unbroken = "字" * 1500  # no sentence end at all: cut at characters
    assert "".join(p.removesuffix(MORE) for p in split_reply(unbroken, 2000)) == unbroken
