"""WeChat, when no clause clearly answers: a numbered list of candidates, then 「2」 answers from candidate 2 — on
one worker (SQLite), across two worker processes sharing Redis, and not once the conversation has expired or
when no list is pending. Driven by the simulated platform (tests/wechat_platform.py) over real HTTP."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.test_outcome import heating  # noqa: F401 (the demo corpus and the heating notice, indexed)
from tests.test_wechat import msg_id, wechat  # noqa: F401 (/wechat on loopback)
from tests.test_wechat_processes import _env, launch  # noqa: F401 (server processes)
from tests.wechat_platform import text_xml

pytestmark = pytest.mark.slow
VAGUE = "农村清洁取暖补贴每户一个采暖季最多补多少钱？"  # names neither 煤改电 nor 煤改气


@pytest.fixture
def assistant(heating):  # type: ignore[no-untyped-def]  # noqa: F811 (the wechat fixture answers from it)
    return heating


def _candidates(reply: str | None) -> list[str]:
    assert reply is not None and "回复序号查看条款" in reply, reply
    return [line for line in reply.splitlines() if line[:2] in ("1.", "2.", "3.")]


def test_a_numbered_list_then_a_number_answers_from_that_candidate(wechat):  # noqa: F811
    platform, _, _ = wechat(history_ttl_s=60)
    listed = _candidates(platform.deliver(text_xml("user-c", VAGUE, msg_id())).reply)
    assert len(listed) >= 2 and "二、（" in listed[1]
    label = listed[1].split("） ", 1)[1].split("：", 1)[0]  # 「2. 《…》（文号） 二、（二）：…」
    picked = platform.deliver(text_xml("user-c", "2", msg_id())).reply
    assert picked is not None and "依据：" in picked and label in picked.split("依据：")[1]
    assert ("900元" in picked) != ("1000元" in picked)  # the one clause's figure, not both


def test_a_number_with_no_list_or_after_the_conversation_expired_is_an_ordinary_question(wechat):  # noqa: F811
    platform, slow, _ = wechat(history_ttl_s=1)
    alone = platform.deliver(text_xml("user-n", "2", msg_id())).reply
    assert alone is not None and "依据：" not in alone  # not a pick: nothing was offered to this user
    _candidates(platform.deliver(text_xml("user-e", VAGUE, msg_id())).reply)
    time.sleep(1.5)
    late = platform.deliver(text_xml("user-e", "2", msg_id())).reply
    assert late is not None and "回复序号" not in late and "二、（二）" not in late


def test_two_workers_sharing_redis_pick_from_the_list_either_one_offered(
        launch, heating, tmp_path: Path, redis_url: str):  # noqa: F811
    index = heating.index_dir
    common = {"POLICY_ASSISTANT_WECHAT__STATE_BACKEND": "redis", "POLICY_ASSISTANT_WECHAT__REDIS_URL": redis_url}
    first = launch(_env(index, tmp_path / "state-a", WECHAT_TEST_ASKED=str(tmp_path / "a.txt"), **common))[1]
    second = launch(_env(index, tmp_path / "state-b", WECHAT_TEST_ASKED=str(tmp_path / "b.txt"), **common))[1]
    listed = _candidates(first.deliver(text_xml("user-r", VAGUE, msg_id())).reply)
    label = listed[1].split("） ", 1)[1].split("：", 1)[0]
    picked = second.deliver(text_xml("user-r", "2", msg_id())).reply
    assert picked is not None and "依据：" in picked and label in picked.split("依据：")[1]
