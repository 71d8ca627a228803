# ruff: noqa: E501 — law text is quoted verbatim, one article per line
"""Validity on real law text: a version in force outranks the superseded one; a cited clause that is no
longer in force carries a warning at the top that names its replacement."""

import pytest

from assistant.config import Settings
from assistant.index.build import build_index
from assistant.service import Assistant

pytestmark = pytest.mark.slow

OLD_ARBITRATION = """---
title: 中华人民共和国仲裁法
publish_date: 2017-09-01
status: 历史版本
---
# 中华人民共和国仲裁法

## 第一章　总则

第四条　当事人采用仲裁方式解决纠纷，应当双方自愿，达成仲裁协议。没有仲裁协议，一方申请仲裁的，仲裁委员会不予受理。

第九条　仲裁实行一裁终局的制度。裁决作出后，当事人就同一纠纷再申请仲裁或者向人民法院起诉的，仲裁委员会或者人民法院不予受理。
裁决被人民法院依法裁定撤销或者不予执行的，当事人就该纠纷可以根据双方重新达成的仲裁协议申请仲裁，也可以向人民法院起诉。

第十三条　仲裁委员会应当从公道正派的人员中聘任仲裁员。
"""

NEW_ARBITRATION = """---
title: 中华人民共和国仲裁法
publish_date: 2025-09-12
status: 现行有效
---
# 中华人民共和国仲裁法

## 第一章　总则

第四条　当事人选择仲裁方式解决纠纷，应当遵循自愿原则，达成仲裁协议。没有仲裁协议，一方申请仲裁的，仲裁机构不予受理。

第十条　仲裁实行一裁终局的制度。裁决作出后，当事人就同一纠纷再申请仲裁或者向人民法院提起诉讼的，仲裁机构或者人民法院不予受理。
裁决被人民法院依法裁定撤销或者不予执行的，当事人就该纠纷可以根据双方重新达成的仲裁协议申请仲裁，也可以向人民法院提起诉讼。
"""

TOWNSHIP = """---
title: 中华人民共和国乡镇企业法
publish_date: 1996-10-29
status: 已废止
replaced_by: 中华人民共和国中小企业促进法
---
第十五条　国家鼓励有条件的地区建立、健全乡镇企业职工社会保险制度。

第二十二条　乡镇企业发展基金专门用于扶持乡镇企业发展，其使用范围如下：
（一）支持少数民族地区、边远地区和贫困地区发展乡镇企业；
（七）支持乡镇企业职工的职业教育和技术培训。
"""

SMALL_BUSINESS = """---
title: 中华人民共和国中小企业促进法
publish_date: 2017-09-01
---
第四十条　国家支持中小企业开展职业技能培训，提高从业人员素质。
"""


@pytest.fixture(scope="module")
def laws(tmp_path_factory, embedder):
    root = tmp_path_factory.mktemp("laws")
    corpus = root / "corpus"
    corpus.mkdir()
    for name, text in {"arbitration-2017": OLD_ARBITRATION, "arbitration-2025": NEW_ARBITRATION,
                       "township": TOWNSHIP, "small-business": SMALL_BUSINESS}.items():
        (corpus / f"{name}.md").write_text(text, encoding="utf-8")
    build_index([corpus], root / "index", embedder)
    return Assistant(Settings(index_dir=root / "index"), embedder=embedder)


def test_the_version_in_force_outranks_the_superseded_one(laws):
    answer, retrieval = laws.ask_traced("仲裁输了还能再去法院起诉吗？")
    top = retrieval.candidates[0].clause
    assert (top.doc_id, top.label) == ("arbitration-2025", "第十条")
    assert answer.citations[0].clause.doc_id == "arbitration-2025"
    assert not answer.text.startswith("注意")


def test_superseded_version_names_the_newer_one_with_the_same_title(laws):
    answer, retrieval = laws.ask_traced("仲裁员要从什么样的人里面聘请？")
    assert retrieval.candidates[0].clause.doc_id == "arbitration-2017"
    assert not answer.refused
    assert answer.text.startswith("注意：《中华人民共和国仲裁法》的状态为“历史版本”")
    assert "现行版本为《中华人民共和国仲裁法》（2025-09-12公布）" in answer.warnings[0]


def test_repealed_law_warns_and_names_its_replacement(laws):
    answer = laws.ask("乡镇企业的职工有没有社会保险？")
    assert not answer.refused
    cited = answer.to_json()["citations"][0]
    assert (cited["title"], cited["clause"], cited["status"]) == ("中华人民共和国乡镇企业法", "第十五条", "已废止")
    assert cited["in_force"] is False
    assert cited["replaced_by"] == "中华人民共和国中小企业促进法"
    assert answer.text.startswith("注意：《中华人民共和国乡镇企业法》的状态为“已废止”")
    assert "现行文件为《中华人民共和国中小企业促进法》（2017-09-01公布）" in answer.text.split("\n")[0]


def test_traditional_question_gets_the_warning_in_traditional(laws):
    answer = laws.ask("鄉鎮企業的職工有沒有社會保險？")
    assert answer.text.startswith("注意：《中華人民共和國鄉鎮企業法》的狀態為“已廢止”")


def test_clause_in_force_has_no_warning(laws):
    answer = laws.ask("国家支持中小企业搞职业技能培训吗？")
    assert answer.citations[0].clause.doc_id == "small-business"
    assert answer.warnings == []
