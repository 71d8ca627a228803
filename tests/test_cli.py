"""The CLI contract, through the real entry point (other tools drive it)."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import CORPUS, EVAL

pytestmark = pytest.mark.slow
CITATION_KEYS = {"n", "doc_id", "title", "doc_number", "clause", "text", "status", "score"}


def run(*args: str, stdin: str | None = None, index_dir: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(index_dir)}
    return subprocess.run([sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory) -> Path:
    index_dir = tmp_path_factory.mktemp("cli-index")
    done = run("index", str(CORPUS), index_dir=index_dir)
    assert done.returncode == 0, done.stderr
    assert "2 added" in done.stdout and "2 documents / 37 clauses served" in done.stdout
    return index_dir


def test_ask_json_contract(cli_index):
    done = run("ask", "--json", "政务热线电话太多打不通怎么办？", index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert answer["question"] == "政务热线电话太多打不通怎么办？"
    assert answer["refused"] is False
    assert answer["citations"] and answer["answer"]
    for position, citation in enumerate(answer["citations"], 1):
        assert CITATION_KEYS <= citation.keys()
        assert citation["n"] == position
        assert citation["status"] == "现行有效"
    assert "7、（四）" in [c["clause"] for c in answer["citations"]]


def test_ask_json_reads_questions_from_stdin(cli_index):
    questions = ["政务公开考核分值是多少？", "", "今天油价多少？", "兩微一端是指什麼？"]
    done = run("ask", "--json", stdin="\n".join(questions) + "\n", index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    answers = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [a["question"] for a in answers] == [q for q in questions if q]
    assert [a["refused"] for a in answers] == [False, True, False]
    assert answers[1]["citations"] == []


def test_ask_for_people_prints_answer_and_sources(cli_index):
    done = run("ask", "政务公开考核分值是多少？", index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    assert "[1]" in done.stdout and "依据：" in done.stdout and "8、（二）" in done.stdout


def test_eval_prints_the_metrics(cli_index):
    done = run("eval", str(EVAL / "seed_dev.jsonl"), "--json", index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    metrics = json.loads(done.stdout)
    assert metrics["questions"] == 24
    assert metrics["hit@1"] >= 0.85 and metrics["refusal_accuracy"] >= 0.75


def test_ask_without_an_index_says_what_to_do(tmp_path):
    done = run("ask", "任何问题", index_dir=tmp_path / "empty")
    assert done.returncode == 2
    assert "policy-assistant index" in done.stderr
    assert "Traceback" not in done.stderr


def test_index_reports_failed_files_and_keeps_the_rest(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "good.txt").write_text("关于测试的通知\n一、测试内容要公开。\n", encoding="utf-8")
    (corpus / "broken.pdf").write_bytes(b"%PDF-1.4 broken")
    done = run("index", str(corpus), index_dir=tmp_path / "idx")
    assert done.returncode == 3
    assert "broken.pdf" in done.stderr
    assert "1 added" in done.stdout and "1 documents" in done.stdout


def test_bad_eval_file_names_the_line(tmp_path, cli_index):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"question": "好问题", "kind": "answerable", "expect": ["x"]}\n{"kind": "answerable"}\n',
                   encoding="utf-8")
    done = run("eval", str(bad), index_dir=cli_index)
    assert done.returncode == 2
    assert "bad.jsonl:2" in done.stderr and "question" in done.stderr


def test_docs_list_and_show_preview_what_is_indexed(cli_index):
    listed = run("docs", "list", "--json", index_dir=cli_index)
    assert listed.returncode == 0, listed.stderr
    docs = {d["doc_id"]: d for d in map(json.loads, listed.stdout.splitlines())}
    seed = docs["shandong-2018-zhengwu-gongkai"]
    assert seed["title"] == "關於進一步做好全省政務公開工作的通知" and seed["status"] == "现行有效"
    assert seed["state"] == "active" and seed["clauses"] > 20
    assert docs["shandong-2018-zhengwu-gongkai-jiedu"]["kind"] == "interpretation"
    shown = run("docs", "show", "shandong-2018-zhengwu-gongkai", index_dir=cli_index)
    assert shown.returncode == 0, shown.stderr
    assert "[7、（四）]" in shown.stdout and "政務熱線" in shown.stdout
    missing = run("docs", "show", "no-such-doc", index_dir=cli_index)
    assert missing.returncode == 2 and "no document 'no-such-doc'" in missing.stderr and "docs list" in missing.stderr


def test_a_second_index_run_is_turned_away_while_one_holds_the_lock(cli_index):
    from assistant.index.generations import index_lock

    with index_lock(cli_index):
        done = run("index", str(CORPUS), index_dir=cli_index)
    assert done.returncode == 2
    assert "is being updated by pid" in done.stderr and "Traceback" not in done.stderr


def test_chat_reads_a_follow_up_with_the_question_before(cli_index):
    done = run("chat", stdin="政务公开考核分值是多少？\n那市里呢？\n再见\n", index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    assert "（理解为：政务公开考核分值是多少？ 那市里呢？）" in done.stdout
    assert done.stdout.count("答：") == 2 and "4%" in done.stdout


def test_chat_keeps_the_topic_over_three_turns_and_refuses_a_switch_out(cli_index):
    done = run("chat", stdin="政务热线电话太多打不通，政府会整合吗？\n最晚啥时候要弄好？\n那明年房价会涨吗？\n再见\n",
               index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    answers = done.stdout.split("答：")[1:]
    assert len(answers) == 3 and "7、（四）" in answers[0]
    assert "年底前" in answers[1] and "7、（四）" in answers[1] and "（理解为：" in answers[0] + answers[1]
    assert "12345" in answers[2] and "依据：" not in answers[2]


def test_an_over_long_question_on_stdin_is_refused_and_the_others_answered(cli_index):
    questions = ["政务公开考核分值是多少？", "政务公开" * 200, "兩微一端是指什麼？"]
    done = run("ask", "--json", stdin="\n".join(questions) + "\n", index_dir=cli_index)
    assert done.returncode == 2
    lines = [json.loads(line) for line in done.stdout.strip().splitlines()]
    assert [("error" in line) for line in lines] == [False, True, False]
    assert "问题过长（800 字）" in lines[1]["error"] and "500" in lines[1]["error"]
    assert lines[2]["citations"]


def test_a_replaced_version_is_kept_and_can_be_reverted(tmp_path):
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    policy = corpus / "parks.md"
    first = "---\ntitle: 示例市公园管理办法\n---\n第一条　公园每日六时开放。\n\n第二条　公园二十二时关闭。\n"
    policy.write_text(first, encoding="utf-8")
    index = tmp_path / "index"
    assert run("index", str(corpus), index_dir=index).returncode == 0
    policy.write_text("---\ntitle: 示例市公园管理办法\n---\n第一条　公园全天开放。\n", encoding="utf-8")
    assert "1 updated" in run("index", str(corpus), index_dir=index).stdout
    history = run("docs", "history", "parks", index_dir=index)
    assert history.returncode == 0, history.stderr
    rows = history.stdout.strip().splitlines()
    assert len(rows) == 2 and rows[0].split()[0] == "2" and "(current)" in rows[0] and "2 clauses" in rows[1]
    reverted = run("docs", "revert", "parks", "1", index_dir=index)
    assert reverted.returncode == 0 and "1 updated" in reverted.stdout, reverted.stderr
    assert policy.read_text(encoding="utf-8") == first
    assert "第二条" in run("docs", "show", "parks", index_dir=index).stdout
    assert len(run("docs", "history", "parks", index_dir=index).stdout.strip().splitlines()) == 3
    missing = run("docs", "revert", "parks", "9", index_dir=index)
    assert missing.returncode == 2 and "no version 9" in missing.stderr
