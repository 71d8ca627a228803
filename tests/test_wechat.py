"""The /wechat endpoint driven by a simulated WeChat platform (tests/wechat_platform.py) over real HTTP.

WeChat's timings are scaled down: the platform waits 1 s for a reply (WeChat: 5 s) and the server waits
0.8 s for an answer (4.5 s); a delivery that cannot reply holds on until 1.5 s."""

from __future__ import annotations

import itertools
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import pytest

from assistant.answer.records import Answer
from assistant.channels.wechat import bot as replies
from assistant.channels.wechat.format import MORE
from assistant.channels.wechat.state import SQLiteState
from tests.wechat_platform import (
    AES_KEY,
    APP_ID,
    OTHER_KEY,
    TOKEN,
    CustomerServiceAPI,
    Platform,
    event_xml,
    free_port,
    image_xml,
    text_xml,
    voice_xml,
)

pytestmark = pytest.mark.slow

QUESTION = "政务热线电话太多打不通，政府会整合吗？"  # answered by the seed policy
_ids = itertools.count(int(time.time() * 1000))


def msg_id() -> int:
    return next(_ids)


class SlowAssistant:
    """The real assistant, slowed down for chosen questions; records every question it is asked."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.delays: dict[str, float] = {}
        self.answers: dict[str, Answer] = {}
        self.asked: list[str] = []
        self._lock = threading.Lock()

    def ask(self, question: str, history: Sequence[Any] = ()) -> Answer:
        """Records the question as retrieved (a follow-up: as read with the conversation)."""
        with self._lock:
            self.asked.append(self.inner.read(question, list(history)).asked)
        for part, delay in self.delays.items():
            if part in question:
                time.sleep(delay)
        return self.answers.get(question) or self.inner.ask(question, history)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)


Start = Callable[..., tuple[Platform, SlowAssistant, CustomerServiceAPI]]


@pytest.fixture
def wechat(assistant, tmp_path: Path) -> Iterator[Start]:  # type: ignore[no-untyped-def]
    """Starts /wechat (with the real assistant behind a SlowAssistant) and a customer-service API on loopback."""
    import uvicorn
    from fastapi import FastAPI

    from assistant.config import WeChatSettings
    from assistant.server import _wechat

    running: list[tuple[Any, threading.Thread, CustomerServiceAPI]] = []

    def start(mode: str = "plain", platform_key: str = AES_KEY, **overrides: Any) -> tuple[
            Platform, SlowAssistant, CustomerServiceAPI]:
        api = CustomerServiceAPI()
        options: dict[str, Any] = {"token": TOKEN, "app_id": APP_ID, "app_secret": "appsecret",
                                   "encoding_aes_key": AES_KEY, "reply_wait_s": 0.8, "platform_timeout_s": 1.0,
                                   "api_base": api.url, **overrides}
        settings = assistant.settings.model_copy(update={"state_dir": tmp_path / "state",
                                                         "wechat": WeChatSettings(**options)})
        slow = SlowAssistant(assistant)
        app = FastAPI()
        app.include_router(_wechat(settings, slow))
        port = free_port()
        server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
        thread = threading.Thread(target=server.run, daemon=True)
        thread.start()
        while not server.started:
            time.sleep(0.05)
        running.append((server, thread, api))
        platform = Platform(f"http://127.0.0.1:{port}/wechat", mode, key=platform_key, timeout_s=1.0)
        platform.state_dir = tmp_path / "state"  # type: ignore[attr-defined]  # where the test can look
        return platform, slow, api

    yield start
    for server, thread, api in running:
        server.should_exit = True
        thread.join(timeout=10)
        api.close()


def test_url_verification_answers_a_signed_echostr_only(wechat: Start):
    platform, _, _ = wechat()
    assert platform.verify("abc123") == (200, "abc123")
    assert platform.verify("abc123", good=False)[0] == 403


@pytest.mark.parametrize("mode", ["plain", "compat", "safe"])
def test_a_text_question_gets_a_cited_plain_text_answer_in_every_mode(wechat: Start, mode: str):
    platform, slow, _ = wechat(mode)
    result = platform.deliver(text_xml("user-a", QUESTION, msg_id()))
    assert result.outcomes == ["replied"] and result.reply is not None
    assert "依据：" in result.reply and "《" in result.reply and "[1]" in result.reply
    assert "**" not in result.reply and "\n[1]" not in result.reply  # plain text, citations on one line
    assert slow.asked == [QUESTION]


def test_voice_subscribe_image_and_help_get_their_replies(wechat: Start):
    platform, slow, _ = wechat("safe")
    voiced = platform.deliver(voice_xml("user-v", QUESTION, msg_id())).reply
    assert voiced is not None and "依据：" in voiced
    assert platform.deliver(voice_xml("user-v", None, msg_id())).reply == replies.NO_VOICE_TEXT
    welcome = platform.deliver(event_xml("user-v", "subscribe")).reply
    assert welcome is not None and "政策" in welcome and "政务公开考核分值是多少？" in welcome
    assert platform.deliver(image_xml("user-v", msg_id())).reply == replies.PLEASE_TYPE
    help_text = platform.deliver(text_xml("user-v", "帮助", msg_id())).reply
    assert help_text is not None and "继续" in help_text
    assert platform.deliver(event_xml("user-v", "unsubscribe")).outcomes == ["empty"]
    assert slow.asked == [QUESTION]


@pytest.mark.parametrize(("delay", "outcomes"), [
    (0.0, ["replied"]),
    (1.2, ["timeout", "replied"]),
    (2.2, ["timeout", "timeout", "replied"]),
])
def test_one_message_delivered_three_times_is_answered_once_by_the_delivery_that_finds_it_ready(
        wechat: Start, delay: float, outcomes: list[str]):
    platform, slow, _ = wechat()
    slow.delays[QUESTION] = delay
    xml = text_xml("user-b", QUESTION, msg_id())
    result = platform.deliver(xml)
    assert result.outcomes == outcomes
    assert result.reply is not None and "依据：" in result.reply
    assert slow.asked == [QUESTION]
    assert platform.push(xml) == (200, "success")  # a fourth, late delivery: nothing is sent twice
    assert slow.asked == [QUESTION]


def test_an_answer_later_than_the_last_delivery_is_pushed_once_by_the_customer_service_api(wechat: Start):
    platform, slow, api = wechat(customer_service=True)
    slow.delays[QUESTION] = 3.5
    result = platform.deliver(text_xml("user-c", QUESTION, msg_id()))
    assert result.outcomes == ["timeout", "timeout", "replied"] and result.reply == replies.PLACEHOLDER_PUSH
    _wait_for(lambda: api.sent)
    time.sleep(0.5)
    assert len(api.sent) == 1 and api.sent[0][0] == "user-c" and "依据：" in api.sent[0][1]
    assert platform.deliver(text_xml("user-c", "继续", msg_id())).reply == replies.NOTHING_KEPT
    assert slow.asked == [QUESTION] and api.tokens_issued == 1


@pytest.mark.parametrize("account", ["unverified", "refused (48001)"])
def test_a_late_answer_is_kept_for_the_user_who_sends_continue(wechat: Start, account: str):
    platform, slow, api = wechat(customer_service=account != "unverified")
    api.refuse = 48001
    slow.delays[QUESTION] = 3.5
    result = platform.deliver(text_xml("user-d", QUESTION, msg_id()))
    assert result.reply in (replies.PLACEHOLDER, replies.PLACEHOLDER_PUSH)
    assert platform.deliver(text_xml("user-d", "继续", msg_id())).reply == replies.STILL_WORKING
    kept = SQLiteState(platform_state(platform))
    _wait_for(lambda: kept.mail_count("user-d") > 0)
    fetched = platform.deliver(text_xml("user-d", "继续", msg_id())).reply
    assert fetched is not None and "依据：" in fetched
    assert platform.deliver(text_xml("user-d", "继续", msg_id())).reply == replies.NOTHING_KEPT
    assert api.sent == [] and slow.asked == [QUESTION]


def platform_state(platform: Platform) -> Path:
    return Path(platform.state_dir) / "wechat.sqlite3"  # type: ignore[attr-defined]


def test_a_new_question_after_a_deferred_one_is_answered_not_swallowed(wechat: Start):
    platform, slow, _ = wechat()
    slow.delays[QUESTION] = 3.5
    platform.deliver(text_xml("user-e", QUESTION, msg_id()))  # placeholder
    other = "政务公开考核分值是多少？"
    answered = platform.deliver(text_xml("user-e", other, msg_id())).reply
    assert answered is not None and "4%" in answered
    kept = SQLiteState(platform_state(platform))
    _wait_for(lambda: kept.mail_count("user-e") > 0)  # the first answer is ready and kept
    first = platform.deliver(text_xml("user-e", "继续", msg_id())).reply
    assert first is not None and "依据：" in first and first != answered
    assert sorted(slow.asked) == sorted([QUESTION, other])


def test_a_long_answer_is_split_under_2000_bytes_and_fully_retrievable(wechat: Start, assistant):  # type: ignore[no-untyped-def]
    platform, slow, _ = wechat()
    sentence = "申请人可以通过互联网、信函、传真等方式提出政府信息公开申请，行政机关应当依法答复。"
    long_text = sentence * 42  # about 5,300 bytes
    assert len(long_text.encode()) > 5000
    slow.answers["请给我一个很长的回答"] = Answer("请给我一个很长的回答", long_text, refused=True)
    parts = [platform.deliver(text_xml("user-f", "请给我一个很长的回答", msg_id())).reply]
    while parts[-1] is not None and parts[-1].endswith(MORE):
        parts.append(platform.deliver(text_xml("user-f", "继续", msg_id())).reply)
    assert len(parts) >= 3 and all(p is not None and len(p.encode()) <= 2000 for p in parts)
    joined = "".join(p.removesuffix(MORE) for p in parts if p)
    assert joined == long_text
    assert all(p.removesuffix(MORE).endswith("。") for p in parts if p)  # cut after sentences


def test_bad_requests_are_rejected_and_nothing_is_answered(wechat: Start):
    platform, slow, _ = wechat("safe")
    xml = text_xml("user-g", QUESTION, msg_id())
    assert platform.push(xml, good_signature=False)[0] == 403
    assert platform.push(xml, timestamp=int(time.time()) - 3600)[0] == 403
    doctype = '<!DOCTYPE xml [<!ENTITY e SYSTEM "file:///etc/passwd">]><xml><Content>&e;</Content></xml>'
    plain = Platform(platform.url, "plain", timeout_s=5)
    assert plain.push(doctype)[0] == 400
    assert plain.push("x", raw_body=b"<xml>" + b"a" * 70000 + b"</xml>")[0] == 413
    assert plain.push("<xml><MsgType>text</MsgType>")[0] == 400  # malformed
    wrong_key = Platform(platform.url, "safe", key=OTHER_KEY, timeout_s=5)
    assert wrong_key.push(xml)[0] == 400
    wrong_app = Platform(platform.url, "safe", app_id="wxsomeoneelse", timeout_s=5)
    assert wrong_app.push(xml)[0] == 400
    assert slow.asked == []
    assert platform.deliver(xml).outcomes == ["replied"]  # and the server still answers


def test_the_previous_aes_key_is_accepted_during_a_key_change(wechat: Start):
    platform, _, _ = wechat("safe", platform_key=OTHER_KEY, encoding_aes_key=AES_KEY,
                            previous_encoding_aes_key=OTHER_KEY)
    result = platform.deliver(text_xml("user-h", QUESTION, msg_id()))
    assert result.outcomes == ["replied"] and result.reply and "依据：" in result.reply


def test_users_over_the_rate_limit_get_a_friendly_reply(wechat: Start):
    platform, slow, _ = wechat(rate_limit_per_minute=2)
    got = [platform.deliver(text_xml("user-i", QUESTION, msg_id())).reply for _ in range(3)]
    assert got[2] == replies.RATE_LIMITED and got[0] and "依据：" in got[0]
    assert len(slow.asked) == 2
    other = platform.deliver(text_xml("user-j", QUESTION, msg_id())).reply
    assert other and "依据：" in other  # another user is not limited


def test_a_follow_up_is_read_with_the_previous_question_until_the_conversation_expires(wechat: Start):
    platform, slow, _ = wechat(history_ttl_s=60)
    platform.deliver(text_xml("user-k", "政务公开考核分值是多少？", msg_id()))
    follow = platform.deliver(text_xml("user-k", "那市里呢？", msg_id())).reply
    assert slow.asked[-1] == "政务公开考核分值是多少？ 那市里呢？" and follow
    platform.deliver(text_xml("user-l", "那市里呢？", msg_id()))
    assert slow.asked[-1] == "那市里呢？"  # another user's conversation is their own


def test_a_three_turn_conversation_keeps_the_topic_and_refuses_a_switch_out(wechat: Start):
    platform, slow, _ = wechat()
    first = platform.deliver(text_xml("user-m", "政务热线电话太多打不通，政府会整合吗？", msg_id())).reply
    deadline = platform.deliver(text_xml("user-m", "最晚啥时候要弄好？", msg_id())).reply
    prices = platform.deliver(text_xml("user-m", "那明年房价会涨吗？", msg_id())).reply
    assert first and "7、（四）" in first
    assert deadline and "年底前" in deadline and "7、（四）" in deadline
    assert slow.asked[-2].endswith("最晚啥时候要弄好？") and slow.asked[-2] != "最晚啥时候要弄好？"
    assert prices and "12345" in prices and "依据：" not in prices


def _wait_for(condition: Callable[[], Any], timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_a_burst_beyond_the_answer_queue_is_asked_to_try_later(wechat: Start):
    platform, slow, _ = wechat(max_concurrent_answers=1, max_queued_answers=1)
    slow.delays[QUESTION] = 0.6
    replies_seen: list[str | None] = [None, None]

    def first() -> None:
        replies_seen[0] = platform.deliver(text_xml("user-m", QUESTION, msg_id())).reply

    thread = threading.Thread(target=first)
    thread.start()
    time.sleep(0.2)  # the first answer is being computed: the queue is full
    replies_seen[1] = platform.deliver(text_xml("user-n", "政务公开考核分值是多少？", msg_id())).reply
    thread.join()
    assert replies_seen[1] == replies.BUSY
    assert replies_seen[0] and "依据：" in replies_seen[0]
    assert slow.asked == [QUESTION]
