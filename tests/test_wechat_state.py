"""The WeChat state contract, on SQLite and on a real Redis: each message answered once and delivered once."""

from __future__ import annotations

import threading
import time
import uuid
from pathlib import Path

import pytest

from assistant.channels.wechat.state import SQLiteState, WeChatState


@pytest.fixture(params=["sqlite", pytest.param("redis", marks=pytest.mark.needs("redis-server"))])
def state(request: pytest.FixtureRequest, tmp_path: Path) -> WeChatState:
    if request.param == "sqlite":
        return SQLiteState(tmp_path / "wechat.sqlite3")
    from assistant.channels.wechat.redis_state import RedisState

    return RedisState(str(request.getfixturevalue("redis_url")), prefix=f"t{uuid.uuid4().hex[:8]}:")


def test_a_message_is_claimed_once_and_taken_once(state: WeChatState):
    first = state.claim("m1", "u1", "question\t问", "a", 30)
    again = state.claim("m1", "u1", "question\t问", "b", 30)
    assert (first.attempt, first.start) == (1, True) and (again.attempt, again.start) == (2, False)
    assert state.take("m1") is None
    assert state.finish("m1", ["答"], mail_if_deferred=True) == "done"
    assert state.finish("m1", ["又答"], mail_if_deferred=True) == "done"  # a second worker changes nothing
    assert state.take("m1") == "答" and state.take("m1") is None
    assert state.claim("m1", "u1", "question\t问", "c", 30).status == "delivered"


def test_many_threads_racing_for_one_message_start_it_once_and_deliver_it_once(state: WeChatState):
    starts, taken = [], []
    barrier = threading.Barrier(8)

    def delivery() -> None:
        barrier.wait()
        if state.claim("race", "u", "question\tq", "w", 30).start:
            starts.append(1)
            state.finish("race", ["answer"], mail_if_deferred=True)
        for _ in range(50):
            if (got := state.take("race")) is not None:
                taken.append(got)
                return
            time.sleep(0.01)

    threads = [threading.Thread(target=delivery) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(starts) == 1 and taken == ["answer"]


def test_a_lapsed_lease_lets_the_next_delivery_start_again(state: WeChatState):
    state.claim("m2", "u1", "question\t问", "dead", 0.05)
    time.sleep(0.1)
    assert [s.key for s in state.stalled()] == ["m2"]
    assert state.claim("m2", "u1", "question\t问", "alive", 30).start
    state.renew(["m2"], "alive", 30)
    assert state.stalled() == []


def test_a_deferred_answer_is_kept_in_order_and_long_answers_keep_their_rest(state: WeChatState):
    state.claim("late", "u2", "question\t问", "a", 30)
    assert state.defer("late") is None and state.waiting("u2") == 1
    assert state.finish("late", ["一", "二"], mail_if_deferred=True) == "mailed"
    state.claim("long", "u2", "question\t问", "a", 30)
    state.finish("long", ["三", "四"], mail_if_deferred=True)
    assert state.take("long") == "三"  # the rest of it is kept
    assert state.mail_count("u2") == 3 and state.waiting("u2") == 0
    fetched = []
    for n in range(4):
        state.claim(f"fetch{n}", "u2", "fetch\t继续", "a", 30)
        state.finish_from_mail(f"fetch{n}", "没有了")
        fetched.append(state.take(f"fetch{n}"))
    assert fetched == ["一", "二", "四", "没有了"]


def test_a_push_that_fails_keeps_what_was_not_sent(state: WeChatState):
    state.claim("p", "u3", "question\t问", "a", 30)
    state.defer("p")
    assert state.finish("p", ["甲", "乙"], mail_if_deferred=False) == "pushing"
    state.settle_push("p", ["乙"])
    assert state.status("p") == "mailed" and state.mail_count("u3") == 1
    state.claim("q", "u3", "question\t问", "a", 30)
    state.defer("q")
    state.finish("q", ["丙"], mail_if_deferred=False)
    state.settle_push("q", [])
    assert state.status("q") == "pushed" and state.mail_count("u3") == 1


def test_conversations_keep_the_last_turns_and_counters_count(state: WeChatState):
    for q in ("一问", "二问", "三问", "四问"):
        state.remember("u4", q, keep=3, ttl_s=60)
    assert state.history("u4", 60) == ["二问", "三问", "四问"]
    assert state.history("u4", 0) == [] and state.history("nobody", 60) == []
    assert [state.count_message("u4") for _ in range(3)] == [1, 2, 3]
    state.cache("access_token", "T", 60)
    assert state.cached("access_token") == "T" and state.cached("other") is None
