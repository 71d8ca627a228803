"""The CLI contract, through the real entry point (other tools drive it)."""

import hashlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from assistant.cli import app
from tests.conftest import CORPUS, EVAL
from tests.serve import get_json, serving

pytestmark = pytest.mark.slow
CITATION_KEYS = {"n", "doc_id", "title", "doc_number", "clause", "text", "status", "score"}
CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f]")  # what a terminal acts on: \r, ESC …; not \n or \t


def run(*args: str, stdin: str | None = None, index_dir: Path,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(index_dir), **(env or {})}
    return subprocess.run([sys.executable, "-m", "assistant", *args], input=stdin, capture_output=True,
                          text=True, env=env, timeout=600)


@pytest.fixture(scope="module")
def cli_index(tmp_path_factory) -> Path:
    index_dir = tmp_path_factory.mktemp("cli-index")
    done = run("index", str(CORPUS), index_dir=index_dir)
    assert done.returncode == 0, done.stderr
    assert "2 added" in done.stdout and "2 documents / 37 clauses served" in done.stdout
    # stderr is a pipe here, as in a log file: whole progress lines, no bars
    assert not CONTROL.search(done.stderr) and "embedding: 37/37 clauses (100%)" in done.stderr.splitlines()
    return index_dir


def test_ask_json_contract(cli_index):
    done = run("ask", "--json", "政务热线电话太多打不通怎么办？", index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.strip().splitlines()
    assert len(lines) == 1
    answer = json.loads(lines[0])
    assert "加载模型" in done.stderr and "policy-assistant chat" in done.stderr  # the wait is explained, off stdout
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
    assert done.stderr.count("加载模型") == 1  # once, not per question


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
    # the file's Traditional questions are all answerable: no refusal figure for them, rather than 0
    assert metrics["traditional"]["refusal_accuracy"] is None and metrics["simplified"]["refusal_accuracy"] >= 0.75


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
    assert "政策文件 · 检索中 ·" in shown.stdout and "status" not in shown.stdout and "clauses" not in shown.stdout
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
    assert len(rows) == 2 and rows[0].split()[0] == "2" and "（当前）" in rows[0] and "2 条" in rows[1]
    reverted = run("docs", "revert", "parks", "1", index_dir=index)
    assert reverted.returncode == 0 and "1 updated" in reverted.stdout, reverted.stderr
    assert policy.read_text(encoding="utf-8") == first
    assert "第二条" in run("docs", "show", "parks", index_dir=index).stdout
    assert len(run("docs", "history", "parks", index_dir=index).stdout.strip().splitlines()) == 3
    missing = run("docs", "revert", "parks", "9", index_dir=index)
    assert missing.returncode == 2 and "no version 9" in missing.stderr


@pytest.mark.parametrize("args, stdin", [(("ask",), ""), (("ask",), "\n  \n"), (("ask", " "), None)])
def test_ask_with_nothing_to_ask_says_how_and_exits_2(tmp_path, args, stdin):
    done = run(*args, stdin=stdin, index_dir=tmp_path / "never-built")
    assert done.returncode == 2 and done.stdout == ""
    assert '用法：policy-assistant ask "问题"' in done.stderr and "policy-assistant chat" in done.stderr


def test_config_lists_every_variable_with_its_value_default_and_description(tmp_path):
    env = {"POLICY_ASSISTANT_LIMITS__MAX_QUESTION_CHARS": "300", "POLICY_ASSISTANT_WEB__EDITOR_PASSWORD": "s3cret-pw",
           "POLICY_ASSISTANT_LLM__API_KEY": "sk-secret-key"}
    done = run("config", index_dir=tmp_path / "idx", env=env)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    at = lines.index("POLICY_ASSISTANT_LIMITS__MAX_QUESTION_CHARS=300  (default: 500)")
    assert lines[at + 1].strip() == "Longer questions are refused with a message."
    assert f'POLICY_ASSISTANT_INDEX_DIR="{tmp_path / "idx"}"  (default: "indexes")' in lines
    assert "POLICY_ASSISTANT_WEB__EDITOR_PASSWORD=********  (default: \"\")" in lines
    assert 'POLICY_ASSISTANT_WECHAT__TOKEN=""  (default: "")' in lines  # an unset secret is shown as unset
    assert "s3cret-pw" not in done.stdout and "sk-secret-key" not in done.stdout
    named = {line.split("=", 1)[0] for line in lines if line.startswith("POLICY_ASSISTANT_")}
    assert {"POLICY_ASSISTANT_CHROMA_URL", "POLICY_ASSISTANT_INDEX__MODEL", "POLICY_ASSISTANT_RETRIEVAL__MIN_RELEVANCE",
            "POLICY_ASSISTANT_ANSWER__REFERRAL", "POLICY_ASSISTANT_WECHAT__APP_SECRET",
            "POLICY_ASSISTANT_LLM__BASE_URL"} <= named and len(named) > 60
    as_json = run("config", "--json", index_dir=tmp_path / "idx", env=env)
    assert json.loads(as_json.stdout)["limits"]["max_question_chars"] == 300 and "s3cret-pw" not in as_json.stdout


def test_docs_list_speaks_one_language(cli_index):
    done = run("docs", "list", index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    text = done.stdout + done.stderr
    titles_and_ids = re.compile(r"^[a-z0-9-]+$|《[^》]*》")
    english = [word for line in text.splitlines() for word in re.findall(r"[A-Za-z]{3,}", titles_and_ids.sub("", line))]
    assert english == [], english
    assert " 条 · 索引于 " in done.stdout and "共 2 个文件" in done.stderr


def test_eval_prints_a_dash_for_a_figure_without_questions(tmp_path, cli_index):
    questions = [{"question": "政务公开考核分值是多少？", "kind": "answerable", "expect": ["考核"]},
                 {"question": "今天油价多少？", "kind": "out_of_corpus"},
                 {"question": "兩微一端是指什麼？", "kind": "answerable", "expect": ["两微一端"]}]
    file = tmp_path / "mixed.jsonl"
    file.write_text("".join(json.dumps(q, ensure_ascii=False) + "\n" for q in questions), encoding="utf-8")
    done = run("eval", str(file), index_dir=cli_index)
    assert done.returncode == 0, done.stderr
    scripts = {line.split(":")[0].strip(): line for line in done.stdout.splitlines()
               if line.strip().startswith(("simplified:", "traditional:"))}
    assert "refusal_accuracy —" in scripts["traditional"]  # no out-of-corpus question written in Traditional
    assert re.search(r"refusal_accuracy \d\.\d{3}", scripts["simplified"])


def _command_paths(command: Any, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    paths = [prefix]
    for name, sub in getattr(command, "commands", {}).items():
        paths += _command_paths(sub, (*prefix, name)) if hasattr(sub, "commands") else [(*prefix, name)]
    return paths


def test_every_help_reads_in_one_language_with_an_example():
    paths = _command_paths(typer.main.get_command(app))
    assert ("docs", "revert") in paths and ("keys", "create") in paths and ("mcp",) in paths and len(paths) == 22
    for path in paths:
        shown = CliRunner().invoke(app, [*path, "--help"], prog_name="policy-assistant", env={"COLUMNS": "80"})
        help_text = shown.output
        assert shown.exit_code == 0, (path, help_text)
        assert not re.search(r"<(bool|str|int|float|path|text)[^>]*>", help_text), (path, help_text)
        assert not re.search(r"Usage|Options|Arguments|Commands|Show this message|default:", help_text), path
        assert "…" not in help_text, (path, help_text)  # nothing cut off
        examples = help_text.split("示例：", 1)[1] if "示例：" in help_text else ""
        assert " ".join(("policy-assistant", *path)) in examples, (path, help_text)


def test_a_usage_error_shows_the_usage_and_exits_2(tmp_path):
    done = run("ask", "--no-such-option", index_dir=tmp_path / "idx")
    assert done.returncode == 2
    assert done.stderr.startswith("用法：policy-assistant ask") and "policy-assistant ask --help" in done.stderr
    assert "Traceback" not in done.stderr


def test_serve_on_first_start_writes_a_plain_log(tmp_path):
    log = tmp_path / "serve.log"
    with serving({"POLICY_ASSISTANT_INDEX_DIR": str(tmp_path / "index")}, log=log) as (base, _):
        status, health = get_json(f"{base}/healthz")
        assert status == 200 and health["documents"] == 2
    text = log.read_text(encoding="utf-8")
    assert not CONTROL.search(text), repr(text)
    lines = text.splitlines()
    assert "(first start)" in lines[0]
    for phase in ("reading: 2/2 documents (100%)", "embedding: 37/37 clauses (100%)",
                  "storing: 37/37 clauses (100%)"):
        assert phase in lines, text  # a whole line of its own
    assert any(line.startswith("generation 1: 2 added") for line in lines), text
    assert text.endswith("\n")


def test_keys_are_made_listed_and_revoked_and_only_their_hashes_kept(tmp_path):
    env = {"POLICY_ASSISTANT_STATE_DIR": str(tmp_path / "state")}
    made = run("keys", "create", "--name", "portal", "--scope", "publish", "--rate", "30", index_dir=tmp_path, env=env)
    assert made.returncode == 0, made.stderr
    key = made.stdout.strip()
    assert key.startswith("pa-") and len(key) > 40 and "只显示这一次" in made.stderr
    assert key not in (tmp_path / "state" / "api_keys.sqlite3").read_bytes().decode("latin-1")
    listed = run("keys", "list", index_dir=tmp_path, env=env)
    assert "portal\tpublish\t30/分钟" in listed.stdout and key not in listed.stdout
    again = run("keys", "create", "--name", "portal", index_dir=tmp_path, env=env)
    assert again.returncode == 2 and "exists already" in again.stderr
    wrong = run("keys", "create", "--name", "x", "--scope", "admin", index_dir=tmp_path, env=env)
    assert wrong.returncode == 2 and "scope" in wrong.stderr
    hashed = run("keys", "hash", stdin=key + "\n", index_dir=tmp_path, env=env)
    assert hashed.stdout.strip() == hashlib.sha256(key.encode()).hexdigest()
    assert run("keys", "revoke", "--name", "portal", index_dir=tmp_path, env=env).returncode == 0
    assert "portal" not in run("keys", "list", index_dir=tmp_path, env=env).stdout
    assert run("keys", "revoke", "--name", "portal", index_dir=tmp_path, env=env).returncode == 1
