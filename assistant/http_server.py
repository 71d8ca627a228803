"""The HTTP server `serve` runs: uvicorn's h11 protocol with request headers bounded in size and count, and slow
clients (headers that never end, a body that stops arriving) timed out."""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

import h11
from uvicorn.protocols.http.h11_impl import H11Protocol

from assistant.config import WebSettings
from assistant.rare_log import RareLog

log = RareLog(logging.getLogger(__name__))
ASGIApp = Any


@dataclass(frozen=True)
class HttpLimits:
    max_header_bytes: int = 65536
    max_headers: int = 100
    header_timeout_s: float = 10.0
    body_timeout_s: float = 30.0


class BoundedH11Protocol(H11Protocol):
    """uvicorn's h11 protocol with bounds: httptools, uvicorn's default parser, takes headers of any size (a 100 MB
    header was answered 200) and neither protocol times out a client that sends its request slowly.

    - Headers: h11 keeps at most `max_header_bytes` of a request's unfinished head; past it the request is
      answered 431 and the connection closed.
    - Headers must be complete `header_timeout_s` after the connection opens or the request's first byte comes
      (a deadline, not an idle timer: a client sending one byte a second is still cut off).
    - A body that stops arriving for `body_timeout_s` is abandoned: the connection is closed, and the app sees
      the client disconnect.
    """

    limits = HttpLimits()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._head_timer: asyncio.TimerHandle | None = None
        self._body_timer: asyncio.TimerHandle | None = None

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)

    def data_received(self, data: bytes) -> None:
        if self.conn.their_state is h11.IDLE and self._head_timer is None:  # a request's head starts
            self._head_timer = self.loop.call_later(self.limits.header_timeout_s, self._headers_late)
        super().data_received(data)
        if self.transport.is_closing():
            self._stop_timers()
            return
        state = self.conn.their_state
        if state is not h11.IDLE:  # the head is complete
            self._cancel_head_timer()
        if state is h11.SEND_BODY:
            self._arm_body_timer()
        elif self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None

    def connection_lost(self, exc: Exception | None) -> None:
        self._stop_timers()
        super().connection_lost(exc)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        # the next request's head is timed from its first byte; until then uvicorn's keep-alive timer runs
        self._cancel_head_timer()

    def send_400_response(self, msg: str) -> None:
        """h11 refuses a head over its bound as any malformed request; it is answered 431, as RFC 6585 says."""
        if len(self.conn.trailing_data[0]) > self.limits.max_header_bytes:
            log.warning("refused a request from %s: headers over %d bytes", _who(self.client),
                        self.limits.max_header_bytes)
            self._refuse(431, b"Request Header Fields Too Large")
            return
        self._stop_timers()
        super().send_400_response(msg)

    def handle_websocket_upgrade(self, event: h11.Request) -> None:
        self._stop_timers()  # the connection is the WebSocket protocol's from now on
        super().handle_websocket_upgrade(event)

    def _headers_late(self) -> None:
        self._head_timer = None
        if self.conn.their_state is h11.IDLE and not self.transport.is_closing():
            if self.conn.trailing_data[0]:  # part of a head came (a connection opened ahead and left idle is normal)
                log.warning("closed a connection from %s: no complete request headers within %.0f s",
                            _who(self.client), self.limits.header_timeout_s)
            self._refuse(408, b"Request Timeout")

    def _arm_body_timer(self) -> None:
        if self._body_timer is not None:
            self._body_timer.cancel()
        self._body_timer = self.loop.call_later(self.limits.body_timeout_s, self._body_late)

    def _body_late(self) -> None:
        self._body_timer = None
        if self.conn.their_state is not h11.SEND_BODY or self.transport.is_closing():
            return
        if self.flow is not None and self.flow.read_paused:  # the app is slow to read, not the client to send
            self._arm_body_timer()
            return
        log.warning("closed a connection from %s: its request body stopped for %.0f s", _who(self.client),
                    self.limits.body_timeout_s)
        self.transport.close()

    def _refuse(self, status: int, reason: bytes) -> None:
        """Answer `status` and close, for a request whose head never became a request."""
        self._stop_timers()
        body = reason + b"\n"
        self.transport.write(b"HTTP/1.1 %d %s\r\ncontent-type: text/plain; charset=utf-8\r\ncontent-length: %d\r\n"
                             b"connection: close\r\n\r\n%s" % (status, reason, len(body), body))
        self.transport.close()

    def _cancel_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _stop_timers(self) -> None:
        self._cancel_head_timer()
        if self._body_timer is not None:
            self._body_timer.cancel()
            self._body_timer = None


def _who(client: tuple[str, int] | None) -> str:
    return client[0] if client else "?"


class HeaderCount:
    """Refuses (431) a request with more than `max_headers` headers, before any app sees it."""

    def __init__(self, app: ASGIApp, max_headers: int) -> None:
        self.app, self.max_headers = app, max_headers

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] in ("http", "websocket") and len(scope.get("headers", ())) > self.max_headers:
            if scope["type"] == "websocket":
                await send({"type": "websocket.close", "code": 1009})
                return
            body = f"more than {self.max_headers} request headers\n".encode()
            await send({"type": "http.response.start", "status": 431,
                        "headers": [(b"content-type", b"text/plain; charset=utf-8"),
                                    (b"content-length", str(len(body)).encode()), (b"connection", b"close")]})
            await send({"type": "http.response.body", "body": body})
            return
        await self.app(scope, receive, send)


def limits_of(web: WebSettings) -> HttpLimits:
    return HttpLimits(web.max_header_bytes, web.max_headers, web.header_timeout_s, web.body_timeout_s)


def options(limits: HttpLimits) -> dict[str, Any]:
    """uvicorn's options for a server within `limits` (its app wrapped by `HeaderCount`)."""
    protocol = type("BoundedH11Protocol", (BoundedH11Protocol,), {"limits": limits})
    return {"http": protocol, "h11_max_incomplete_event_size": limits.max_header_bytes}


def run(app: ASGIApp, host: str, port: int, limits: HttpLimits, **extra: Any) -> None:
    """Serve `app` within `limits` until stopped (Ctrl+C)."""
    import uvicorn

    uvicorn.run(HeaderCount(app, limits.max_headers), host=host, port=port, **options(limits), **extra)
