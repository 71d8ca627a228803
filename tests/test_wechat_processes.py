"""/wechat across processes: `serve` with a token, a restart between deliveries (SQLite), and two app
processes sharing a real Redis. Timings scaled as in test_wechat.py (platform waits 1 s)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from assistant.channels.wechat.state import SQLiteState
from tests.test_wechat import QUESTION, msg_id
from tests.wechat_platform import AES_KEY, APP_ID, TOKEN, Platform, free_port, text_xml

pytestmark = pytest.mark.slow
REPO = Path(__file__).resolve().parents[1]
OTHER = "政务公开考核分值是多少？"


def _env(index: Path, state: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, "POLICY_ASSISTANT_INDEX_DIR": str(index), "POLICY_ASSISTANT_STATE_DIR": str(state),
            "POLICY_ASSISTANT_WECHAT__TOKEN": TOKEN, "POLICY_ASSISTANT_WECHAT__APP_ID": APP_ID,
            "POLICY_ASSISTANT_WECHAT__ENCODING_AES_KEY": AES_KEY, "POLICY_ASSISTANT_WECHAT__REPLY_WAIT_S": "0.8",
            "POLICY_ASSISTANT_WECHAT__PLATFORM_TIMEOUT_S": "1.0", **extra}


Launch = Callable[..., tuple[subprocess.Popen[bytes], Platform]]


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launch]:
    """Starts server processes (the test script, or `policy-assistant serve`) and waits until /healthz answers."""
    started: list[subprocess.Popen[bytes]] = []

    def start(env: dict[str, str], serve: bool = False) -> tuple[subprocess.Popen[bytes], Platform]:
        import urllib.request

        port = free_port()
        command = ([sys.executable, "-m", "assistant", "serve", "--port", str(port)] if serve
                   else [sys.executable, "-m", "tests.wechat_server", str(port)])
        log = open(tmp_path / f"server-{port}.log", "wb")  # noqa: SIM115 (closed with the process)
        process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
        started.append(process)
        deadline = time.monotonic() + 300
        while True:
            assert process.poll() is None, (tmp_path / f"server-{port}.log").read_text()
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "the server did not start"
                time.sleep(0.5)
        return process, Platform(f"http://127.0.0.1:{port}/wechat", "safe", timeout_s=1.0)

    yield start
    for process in started:
        if process.poll() is None:
            process.terminate()
            process.wait(timeout=60)


def _asked(path: Path) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines() if path.exists() else []


def test_serve_answers_wechat_whenever_a_token_is_set(launch: Launch, demo_index: Path, tmp_path: Path):
    _, platform = launch(_env(demo_index, tmp_path / "state"), serve=True)
    assert platform.verify("hello") == (200, "hello")
    result = platform.deliver(text_xml("user-s", QUESTION, msg_id()))
    assert result.outcomes == ["replied"] and result.reply and "依据：" in result.reply


def test_a_restart_between_deliveries_loses_nothing(launch: Launch, demo_index: Path, tmp_path: Path):
    state, asked = tmp_path / "state", tmp_path / "asked.txt"
    delays = json.dumps({QUESTION: 1.2, OTHER: 120})
    first, platform = launch(_env(demo_index, state, WECHAT_TEST_DELAYS=delays, WECHAT_TEST_ASKED=str(asked)))
    ready = text_xml("user-r", QUESTION, msg_id())  # answered after its first delivery gave up
    unfinished = text_xml("user-r", OTHER, msg_id())  # still being answered when the process dies
    assert platform.push(ready)[0] == 0 and platform.push(unfinished)[0] == 0  # both time out
    kept = SQLiteState(state / "wechat.sqlite3")
    deadline = time.monotonic() + 30
    while kept.status(f"msg:{_msg_id(ready)}") != "done":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    first.send_signal(signal.SIGKILL)
    first.wait()
    assert sorted(_asked(asked)) == sorted([QUESTION, OTHER])
    asked.unlink()
    _, platform = launch(_env(demo_index, state, WECHAT_TEST_ASKED=str(asked)))
    again = platform.deliver(ready)
    assert again.outcomes == ["replied"] and again.reply and "依据：" in again.reply
    assert _asked(asked) == []  # the kept answer was delivered, not recomputed
    resumed = platform.deliver(unfinished)
    assert resumed.reply and "4%" in resumed.reply
    assert _asked(asked) == [OTHER]


def _msg_id(xml: str) -> str:
    return xml.split("<MsgId>")[1].split("</MsgId>")[0]


def test_two_processes_sharing_redis_answer_a_message_delivered_to_both_once(
        launch: Launch, demo_index: Path, tmp_path: Path, redis_url: str):
    asked = [tmp_path / "asked-a.txt", tmp_path / "asked-b.txt"]
    common = {"POLICY_ASSISTANT_WECHAT__STATE_BACKEND": "redis", "POLICY_ASSISTANT_WECHAT__REDIS_URL": redis_url,
              "WECHAT_TEST_DELAYS": json.dumps({QUESTION: 0.4})}
    platforms = [launch(_env(demo_index, tmp_path / f"state-{n}", WECHAT_TEST_ASKED=str(path), **common))[1]
                 for n, path in enumerate(asked)]
    for round_ in range(3):
        xml = text_xml(f"user-x{round_}", QUESTION, msg_id())
        results: list[Any] = [None, None]

        def deliver(n: int, xml: str = xml, results: list[Any] = results) -> None:
            results[n] = platforms[n].push(xml, timeout_s=5)

        threads = [threading.Thread(target=deliver, args=(n,)) for n in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        shown = [platforms[0].content(body) for status, body in results if status == 200]
        assert [s for s in shown if s] and len([s for s in shown if s]) == 1, results
        assert "依据：" in next(s for s in shown if s)
    assert len(_asked(asked[0])) + len(_asked(asked[1])) == 3
