"""What the official account says to each message, delivered exactly once within WeChat's 5-second rule.

WeChat delivers a message up to three times, 5 s apart, until a delivery gets a reply. Here the first
delivery of a message starts its answer (once, across processes, through the shared state); any delivery
that finds the answer ready replies with it; a delivery that cannot reply in time holds on past WeChat's
timeout, so that WeChat delivers again, except the last, which replies with a placeholder. The late answer is
then pushed with the customer-service API (verified accounts) or kept for the user's 「继续」.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

from assistant.channels.wechat.customer_service import CustomerService
from assistant.channels.wechat.format import phone_text, split_reply
from assistant.channels.wechat.state import WeChatState, new_owner
from assistant.config import WeChatSettings
from assistant.conversation import Turn
from assistant.errors import InputTooLongError
from assistant.service import Assistant, bound_input

log = logging.getLogger(__name__)

FETCH_WORDS = {"继续", "繼續", "1", "１"}
HELP_WORDS = {"帮助", "幫助", "help", "?", "？", "使用说明"}
PLEASE_TYPE = "暂时只能回答文字问题，请直接输入您想咨询的政策问题。"
NO_VOICE_TEXT = "没有识别出语音内容，请直接输入文字问题。"
PLACEHOLDER = "您的问题正在查询中，请稍后回复「继续」查看答案。"
PLACEHOLDER_PUSH = "您的问题正在查询中，答案稍后发送给您。"
STILL_WORKING = "您的上一个问题还在查询中，请稍后再回复「继续」。"
NOTHING_KEPT = "没有待查看的内容了，请直接输入您的问题。"
RATE_LIMITED = "您发送得太快了，请稍等一分钟再提问。"
BUSY = "当前咨询的人较多，请稍后再试。"
FAILED = "抱歉，系统暂时无法回答这个问题，请稍后再试。"
FINISHED_ELSEWHERE = ("delivered", "mailed", "pushing", "pushed")
KEPT_HINT = "\n（您还有未查看的回答，回复「继续」查看）"


@dataclass
class Incoming:
    """What matters of one WeChat message: its dedupe key, sender and what to do with it."""

    key: str
    openid: str
    kind: str  # "question", "fetch", "instant" (reply fixed now) or "ignore"
    text: str


class WeChatBot:
    """Turns messages into reply texts. Thread pool for answers; state shared with other processes."""

    def __init__(self, assistant: Assistant, settings: WeChatSettings, state: WeChatState,
                 push: CustomerService | None = None) -> None:
        self.assistant = assistant
        self.settings = settings
        self.state = state
        self.push = push if settings.customer_service else None
        self.owner = new_owner()
        self.lease_s = max(1.0, settings.platform_timeout_s * 0.8)
        self._pool = ThreadPoolExecutor(settings.max_concurrent_answers, thread_name_prefix="wechat-answer")
        self._lock = threading.Lock()
        self._working: set[str] = set()
        self._waiters: dict[str, list[tuple[asyncio.AbstractEventLoop, asyncio.Event]]] = {}
        self._queued = 0
        self._stop = threading.Event()
        self._keeper = threading.Thread(target=self._keep_leases, name="wechat-leases", daemon=True)
        self._keeper.start()

    def classify(self, message: Any) -> Incoming:
        """The dedupe key (MsgId; events: FromUserName+CreateTime) and what the message asks for."""
        openid = str(message.source)
        msg_id = getattr(message, "id", None)
        key = f"msg:{msg_id}" if msg_id else f"event:{openid}:{message.create_time}"
        kind, text = "instant", PLEASE_TYPE
        if message.type == "text":
            content = str(message.content or "").strip()
            if content.lower() in HELP_WORDS:
                text = self.help_text()
            elif content in FETCH_WORDS:
                kind, text = "fetch", content
            elif content:
                kind, text = self._question(content)
        elif message.type == "voice":
            recognition = str(getattr(message, "recognition", "") or "").strip()
            kind, text = self._question(recognition) if recognition else ("instant", NO_VOICE_TEXT)
        elif message.type == "event":
            event = str(getattr(message, "event", "")).lower()
            if event in ("subscribe", "subscribe_scan"):
                text = self.settings.welcome.format(examples="\n".join(f"· {q}" for q in self.settings.examples))
            else:
                kind, text = "ignore", ""
        return Incoming(key, openid, kind, text)

    def _question(self, text: str) -> tuple[str, str]:
        """("question", text), or ("instant", why not) for a question over the length limit."""
        try:
            bound_input(text, (), self.assistant.settings.limits)
        except InputTooLongError as e:
            return "instant", e.message
        return "question", text

    def help_text(self) -> str:
        examples = "\n".join(f"· {q}" for q in self.settings.examples)
        return ("直接输入您想了解的政策问题，我会给出答案并注明出处（文件和条款）。\n"
                f"例如：\n{examples}\n回答较长或稍后送达时，回复「继续」查看。")

    async def reply(self, message: Any) -> str | None:
        """The text to reply to this delivery, or None for no reply (the answer was, or will be, given elsewhere)."""
        arrived = time.monotonic()
        incoming = self.classify(message)
        if incoming.kind == "ignore":
            return None
        claim = await asyncio.to_thread(self.state.claim, incoming.key, incoming.openid,
                                        f"{incoming.kind}\t{incoming.text}", self.owner, self.lease_s)
        if claim.status in FINISHED_ELSEWHERE:
            return None  # a late duplicate of a message already answered
        ready = asyncio.Event()  # set when this process finishes the message; other processes are polled
        waiter = (asyncio.get_running_loop(), ready)
        with self._lock:
            self._waiters.setdefault(incoming.key, []).append(waiter)
        try:
            if claim.start:
                await asyncio.to_thread(self._start, incoming, claim.attempt == 1)
            if (first := await self._wait(incoming.key, ready, arrived + self.settings.reply_wait_s)) is not None:
                return first or None
        finally:
            with self._lock:
                self._waiters[incoming.key].remove(waiter)
                if not self._waiters[incoming.key]:
                    del self._waiters[incoming.key]
        if claim.attempt < self.settings.deliveries:
            # no reply in time: stay silent past WeChat's own timeout, so that it delivers the message again
            await asyncio.sleep(max(0.0, arrived + self.settings.platform_timeout_s + 0.5 - time.monotonic()))
            return None
        first = await asyncio.to_thread(self.state.defer, incoming.key)
        return first if first is not None else (PLACEHOLDER_PUSH if self.push else PLACEHOLDER)

    async def _wait(self, key: str, ready: asyncio.Event, deadline: float) -> str | None:
        """The first part of the answer once it is ready; "" when another delivery took it; None at the deadline."""
        while True:
            first = await asyncio.to_thread(self.state.take, key)
            if first is not None:
                return first
            if time.monotonic() >= deadline:
                return None
            if await asyncio.to_thread(self.state.status, key) in FINISHED_ELSEWHERE:
                return ""
            try:
                await asyncio.wait_for(ready.wait(), timeout=min(0.1, max(0.0, deadline - time.monotonic())))
            except TimeoutError:
                pass
            ready.clear()

    def _start(self, incoming: Incoming, new: bool) -> None:
        """Compute the reply of a message this process has claimed: fixed replies now, answers in the pool."""
        if new and self.state.count_message(incoming.openid) > self.settings.rate_limit_per_minute:
            self._finish(incoming, [RATE_LIMITED])
        elif incoming.kind == "instant":
            self._finish(incoming, split_reply(incoming.text, self.settings.max_reply_bytes))
        elif incoming.kind == "fetch":
            waiting = self.state.waiting(incoming.openid)
            self.state.finish_from_mail(incoming.key, STILL_WORKING if waiting else NOTHING_KEPT)
        else:
            with self._lock:
                if self._queued >= self.settings.max_queued_answers:
                    busy = True
                else:
                    busy, self._queued = False, self._queued + 1
                    self._working.add(incoming.key)
            if busy:
                self._finish(incoming, [BUSY])
            else:
                self._pool.submit(self._answer, incoming)

    def _answer(self, incoming: Incoming) -> None:
        try:
            kept = self.state.mail_count(incoming.openid)
            history = [Turn.loads(t) for t in self.state.history(incoming.openid, self.settings.history_ttl_s)]
            answer = self.assistant.ask(incoming.text, history)
            if self.settings.history_turns:  # the question, the reading it became and the clauses it cited
                self.state.remember(incoming.openid, Turn.of(answer).dumps(),
                                    self.settings.history_turns, self.settings.history_ttl_s)
            text = phone_text(answer)
            parts = split_reply(text, self.settings.max_reply_bytes)
            if kept and len(parts) == 1 and len((parts[0] + KEPT_HINT).encode()) <= self.settings.max_reply_bytes:
                parts = [parts[0] + KEPT_HINT]
        except Exception:  # a door: the user gets an apology, the log gets the cause
            log.exception("answering WeChat message %s failed", incoming.key)
            parts = [FAILED]
        finally:
            with self._lock:
                self._queued -= 1
                self._working.discard(incoming.key)
        self._finish(incoming, parts)

    def _finish(self, incoming: Incoming, parts: list[str]) -> None:
        status = self.state.finish(incoming.key, parts, mail_if_deferred=self.push is None)
        with self._lock:
            waiters = list(self._waiters.get(incoming.key, []))
        for loop, ready in waiters:
            loop.call_soon_threadsafe(ready.set)
        if status == "pushing" and self.push is not None:
            self.state.settle_push(incoming.key, self.push.send(incoming.openid, parts))

    def _keep_leases(self) -> None:
        """Renew the leases of answers in progress; take over deferred answers whose worker has gone."""
        while not self._stop.wait(self.lease_s / 3):
            try:
                with self._lock:
                    working = list(self._working)
                self.state.renew(working, self.owner, self.lease_s)
                self.resume()
            except Exception:  # keep renewing: a transient state error must not stop the thread
                log.exception("renewing WeChat answer leases failed")

    def resume(self) -> int:
        """Answer again the deferred messages whose worker stopped (a restart): their users are waiting."""
        resumed = 0
        for stalled in self.state.stalled():
            if self.state.status(stalled.key) != "deferred":
                continue  # pending ones are resumed by their next delivery
            claim = self.state.claim(stalled.key, stalled.openid, stalled.question, self.owner, self.lease_s)
            if claim.start:
                kind, _, text = stalled.question.partition("\t")
                self._start(Incoming(stalled.key, stalled.openid, kind, text), False)
                resumed += 1
        return resumed

    def close(self) -> None:
        self._stop.set()
        self._pool.shutdown(wait=True, cancel_futures=False)
        self.state.close()
