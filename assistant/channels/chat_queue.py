"""Bounds on what anonymous visitors may put into the web chat's Gradio queue: how many events wait or run in all
and from one client address, and how much one event may send, each checked before Gradio queues the event or keeps
anything of it in the browser session's state."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from typing import Any

from fastapi import HTTPException

from assistant.rare_log import RareLog

log = logging.getLogger(__name__)

BUSY = "当前提问的人较多，请稍等片刻再试。"
CLIENT_BUSY = "您还有问题正在处理，请等答复出来后再提问。"
TOO_LONG = "发送的内容过长（{chars} 字，上限 {limit} 字）。对话过长时请先点“清空”，再重新提问。"


def bound_queue(blocks: Any, max_events: int, per_client: int, max_input_chars: int) -> None:
    """Bound `blocks`'s queue: at most `max_events` events waiting or running, `per_client` of them from one client
    address, and `max_input_chars` characters of input (as JSON) in one event. A refusal is a 429 or 413 whose
    `detail` Gradio's page shows the asker (its own 503 "queue full" text is English)."""
    blocks.queue(max_size=max_events)  # Gradio's own bound stays as a backstop
    queue = blocks._queue
    push = queue.push
    refusals = RareLog(log)

    async def bounded_push(body: Any, request: Any, username: str | None) -> Any:
        chars = _input_chars(getattr(body, "data", None))
        if chars > max_input_chars:
            raise HTTPException(413, TOO_LONG.format(chars=f"{chars:,}", limit=f"{max_input_chars:,}"))
        client = _address(request)
        events = list(_events(queue))
        if len(events) >= max_events:
            refusals.warning("refused a chat event: the queue is full (%d events)", max_events)
            raise HTTPException(429, BUSY, headers={"Retry-After": "5"})
        if sum(_address(event.request) == client for event in events) >= per_client:
            refusals.warning("refused a chat event from %s: %d of its events are queued already", client, per_client)
            raise HTTPException(429, CLIENT_BUSY, headers={"Retry-After": "5"})
        return await push(body, request, username)

    queue.push = bounded_push


def _events(queue: Any) -> Iterator[Any]:
    """The events waiting in the queue and those running."""
    for waiting in list(queue.event_queue_per_concurrency_id.values()):
        yield from list(waiting.queue)
    for job in list(queue.active_jobs):
        yield from job or ()


def _address(request: Any) -> str:
    client = getattr(request, "client", None)
    return str(client.host) if client else "?"


def _input_chars(data: Any) -> int:
    try:
        return len(json.dumps(data, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return 0
