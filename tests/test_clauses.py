from pathlib import Path

from assistant.ingest.clauses import parse_clauses
from assistant.ingest.loaders import build_document, load_document
from tests.conftest import CORPUS, SEED

SEED_ITEMS = {1: 3, 2: 4, 3: 6, 4: 3, 5: 3, 6: 5, 7: 4, 8: 2}
CN = "一二三四五六七八九十"


def seed_clauses():
    return parse_clauses(load_document(SEED, CORPUS))


def test_every_seed_section_and_item_is_a_clause():
    labels = [c.label for c in seed_clauses()]
    expected = ["前言"] + [f"{s}、（{CN[i]}）" for s, n in SEED_ITEMS.items() for i in range(n)]
    assert labels == expected


def test_hotline_clause_is_7_4_with_its_path():
    clause = next(c for c in seed_clauses() if "政務熱線電話" in c.text)
    assert clause.label == "7、（四）"
    assert clause.clause_id == "shandong-2018-zhengwu-gongkai#7、/（四）"
    assert clause.path[0].startswith("7、加強平臺建設")
    assert clause.heading.startswith("7、")
    assert clause.text.startswith("(四)加快整合各類政務熱線電話")


def test_clause_ids_are_unique_and_deterministic():
    first, second = seed_clauses(), seed_clauses()
    assert [c.clause_id for c in first] == [c.clause_id for c in second]
    assert len({c.clause_id for c in first}) == len(first)


def test_scrape_debris_is_removed_and_content_kept():
    doc = load_document(SEED, CORPUS)
    assert "山東發文部署政務公開工作" not in doc.text
    assert doc.extra["headline"] == "山東發文部署政務公開工作,這幾大領域重點推進!"
    assert "分享到" not in doc.text and "相關文章" not in doc.text
    assert doc.text.rstrip().endswith("分值不低於4%。")
    raw = Path(SEED).read_text(encoding="utf-8")
    for clause in seed_clauses():
        assert clause.text.replace("\n", "") in raw.replace("\n", "")


def test_raw_scrape_keeps_its_headline_once_as_the_title():
    raw = SEED.read_text(encoding="utf-8").split("---\n", 2)[2]
    doc = build_document("seed", raw, {})
    assert doc.title == "山東發文部署政務公開工作,這幾大領域重點推進!"
    assert doc.text.count("山東發文部署政務公開工作") == 1
    assert parse_clauses(doc)[0].label == "前言"


def test_preamble_is_a_clause():
    preamble = seed_clauses()[0]
    assert preamble.label == "前言"
    assert "國辦發〔2018〕23號" in preamble.text


LAW = """# 某某条例

## 第一章 总则

第一条　为了规范政府信息公开，制定本条例。

第二条　本条例所称政府信息，是指行政机关制作或者获取的信息。
行政机关应当及时、准确地公开政府信息。

第二条之一　新增的条款。

## 第二章 公开的主体和范围

### 第一节 一般规定

第十条　行政机关应当主动公开下列政府信息：
（一）机构职能；
（二）行政法规、规章；
（三）国民经济和社会发展规划。

第一百零二条　本条例自2019年5月15日起施行。
"""


def test_law_structure_articles_with_chinese_numerals_and_zhiyi():
    clauses = parse_clauses(build_document("law", LAW, {"title": "某某条例"}))
    labels = [c.label for c in clauses]
    assert labels == ["第一条", "第二条", "第二条之一", "第十条", "第一百零二条"]
    article10 = clauses[3]
    assert "（三）国民经济" in article10.text
    assert article10.path[:2] == ("第二章 公开的主体和范围", "第一节 一般规定")
    assert clauses[1].text.count("\n") == 1  # the article keeps its two paragraphs (款)


def test_long_clause_is_split_at_sentence_ends_keeping_its_label():
    sentence = "这是一个用来测试超长条款拆分的句子，内容没有实际意义。"
    text = "一、总体要求\n（一）工作目标。" + sentence * 30 + "\n（二）短条款。"
    clauses = parse_clauses(build_document("long", text, {"title": "测试"}), max_chars=200)
    long = [c for c in clauses if c.label.startswith("一、（一）")]
    assert len(long) > 1
    assert [c.label for c in long] == [f"一、（一）第{i}段" for i in range(1, len(long) + 1)]
    assert all(len(c.text) <= 200 for c in long)
    assert all(c.text.endswith("。") for c in long)
    assert "".join(c.text for c in long) == "（一）工作目标。" + sentence * 30
    short = [c for c in clauses if c.label == "一、（二）"]
    assert len(short) == 1 and short[0].text == "（二）短条款。"  # tiny clauses are not merged


def test_other_numbering_forms():
    text = ("一、总则\n1. 第一点内容。\n2. 第二点内容。\n二、措施\n（1）甲项。\n（2）乙项。\n"
            "附件1\n申请表格式说明。\n")
    labels = [c.label for c in parse_clauses(build_document("forms", text, {"title": "测试"}))]
    assert labels == ["一、1.", "一、2.", "二、（1）", "二、（2）", "附件1"]


def test_question_and_answer_pairs_of_an_interpretation():
    text = "问：热线太多怎么办？\n答：通知7、（四）要求整合热线。\n问：考核怎么算？\n答：分值不低于4%。\n"
    clauses = parse_clauses(build_document("jd", text, {"title": "解读", "kind": "interpretation"}))
    assert [c.label for c in clauses] == ["问答1", "问答2"]
    assert clauses[0].heading == "问：热线太多怎么办？"
    assert "答：通知7、（四）" in clauses[0].text
