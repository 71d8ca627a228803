"""`/wechat`: URL verification (GET) and message pushes (POST), checked before anything is parsed."""

from __future__ import annotations

import asyncio
import hashlib
import logging
import secrets
import time

from fastapi import APIRouter, Request
from fastapi.responses import PlainTextResponse, Response

from assistant.channels.wechat import protocol
from assistant.channels.wechat.bot import WeChatBot
from assistant.config import WeChatSettings

log = logging.getLogger(__name__)


def wechat_router(bot: WeChatBot, settings: WeChatSettings) -> APIRouter:
    """A FastAPI router serving `/wechat` for `bot` (FastAPI reads the handlers' annotations, so its types are
    imported at module level)."""
    router = APIRouter()
    token = settings.token.get_secret_value()
    ciphers = protocol.ciphers(settings)

    def rejected(e: protocol.RejectedRequest, request: Request) -> Response:
        log.warning("rejected WeChat request from %s: %s", request.client.host if request.client else "?", e.reason)
        return PlainTextResponse("", status_code=e.status)

    @router.get("/wechat")
    def verify(request: Request, signature: str = "", timestamp: str = "", nonce: str = "",
               echostr: str = "") -> Response:
        """WeChat checks the server URL: a signed echostr is answered with itself."""
        try:
            protocol.check_signature(token, signature, timestamp, nonce, settings.timestamp_window_s)
        except protocol.RejectedRequest as e:
            return rejected(e, request)
        return PlainTextResponse(echostr)

    @router.post("/wechat")
    async def receive(request: Request, signature: str = "", timestamp: str = "", nonce: str = "",
                      encrypt_type: str = "", msg_signature: str = "") -> Response:
        try:
            protocol.check_signature(token, signature, timestamp, nonce, settings.timestamp_window_s)
            body = await _read_body(request, settings.max_body_bytes)
            protocol.check_body(body)
            # in plaintext mode the signature does not cover the body: one signed (timestamp, nonce) carries one
            # body only (WeChat's own re-deliveries repeat the same body)
            digest = hashlib.sha256(body).hexdigest()
            first = await asyncio.to_thread(bot.state.cache_first, f"nonce:{timestamp}:{nonce}", digest,
                                            2 * settings.timestamp_window_s)
            if first != digest:
                raise protocol.RejectedRequest(403, "signed URL replayed with another body")
            cipher = None
            if encrypt_type.lower() == "aes":
                encrypted = protocol.encrypted_part(body)
                protocol.check_signature(token, msg_signature, timestamp, nonce, settings.timestamp_window_s,
                                         extra=encrypted)
                xml, cipher = protocol.decrypt(encrypted, ciphers)
            else:
                xml = body.decode("utf-8", errors="strict")
            message = protocol.parse(xml)
        except protocol.RejectedRequest as e:
            return rejected(e, request)
        except UnicodeDecodeError:
            return rejected(protocol.RejectedRequest(400, "body is not UTF-8"), request)
        try:
            text = await bot.reply(message)
        except Exception:  # a door: WeChat gets an apology, never a stack trace
            log.exception("WeChat message could not be handled")
            text = "抱歉，系统暂时无法回答，请稍后再试。"
        if text is None:
            return PlainTextResponse("success")  # WeChat: nothing to show, do not retry
        now = int(time.time())
        xml = protocol.text_reply(str(message.source), str(message.target), text, now)
        if cipher is not None:
            xml = protocol.encrypted_reply(xml, cipher, token, secrets.token_hex(8), str(now))
        return Response(xml, media_type="application/xml")

    return router


async def _read_body(request: Request, limit: int) -> bytes:
    """The body, read no further than `limit` + 1 bytes (a declared length over the limit is refused at once)."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise protocol.RejectedRequest(413, "body too large")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        chunks.append(chunk)
        size += len(chunk)
        if size > limit:
            raise protocol.RejectedRequest(413, "body too large")
    return b"".join(chunks)
