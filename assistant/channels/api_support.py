"""What the HTTP doors for other systems share: JSON errors that name the field, the key check (401, 403, 429 with
Retry-After), answers computed a few at a time off the event loop (streamed as they are written), and the
conversations clients continue by `conversation_id`."""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

import anyio
from fastapi import FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from assistant.answer.records import Answer
from assistant.channels.guard import error_body
from assistant.channels.keys import KeyStore, RateLimiter, allows
from assistant.channels.wechat.state import WeChatState
from assistant.config import ApiKey, ApiSettings
from assistant.conversation import Conversation, Turn
from assistant.errors import AssistantError, IndexNotBuiltError, InputTooLongError
from assistant.service import Assistant

log = logging.getLogger(__name__)


class ApiError(HTTPException):
    """A request refused with a JSON error: `message` for people, `param` the field at fault, `code` for programs."""

    def __init__(self, status: int, message: str, param: str | None = None, code: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(status, message, headers)
        self.message, self.param, self.code = message, param, code


def install_errors(app: FastAPI) -> None:
    """Every refusal of `app` (ours, FastAPI's validation, Starlette's 404/405) as a JSON error naming the field."""

    @app.exception_handler(ApiError)
    async def api_error(_: Request, e: ApiError) -> JSONResponse:
        return JSONResponse(error_body(e.status_code, e.message, e.param, e.code), e.status_code, e.headers)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, e: StarletteHTTPException) -> JSONResponse:
        message = "no such endpoint" if e.status_code == 404 else str(e.detail)
        return JSONResponse(error_body(e.status_code, message), e.status_code, getattr(e, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, e: RequestValidationError) -> JSONResponse:
        first = e.errors()[0] if e.errors() else {"loc": (), "msg": "invalid request"}
        sent = request.headers.get("content-type", "")
        if tuple(first.get("loc", ())) == ("body",) and "json" not in sent and "multipart" not in sent:
            return JSONResponse(error_body(415, f"the body must be JSON (Content-Type: application/json), not "
                                           f"{sent[:60] or 'nothing'}", None, "unsupported_content_type"), 415)
        where = [str(part) for part in first.get("loc", ()) if part not in ("body", "query", "path", "form")]
        param = ".".join(where) if where and first.get("type") != "json_invalid" else None
        message = f"{param}: {first.get('msg')}" if param else str(first.get("msg"))
        if first.get("type") in ("model_attributes_type", "json_invalid"):
            message = "the body must be a JSON object: " + str(first.get("msg"))
        return JSONResponse(error_body(422, message, param, "invalid_field"), 422)


def refusal(e: AssistantError, param: str | None = None) -> ApiError:
    """The API's answer to an error of the core: too long → 422 naming the field; no index → 503; other → 409."""
    if isinstance(e, InputTooLongError):
        return ApiError(422, e.message, param, "too_long")
    if isinstance(e, IndexNotBuiltError):
        return ApiError(503, "the index is not built yet", None, "index_not_built")
    return ApiError(409, without_paths(e.message), param, "conflict")


# an absolute path in a message: '/' not inside a word, a URL or a path, then folders
_SERVER_PATH = re.compile(r"(?<![\w.:/~-])/(?:[^\s/:;,'\"()（）：；，]+/)+")


def without_paths(message: str) -> str:
    """A message as a client may read it: an absolute path in it named by its last part (where the server keeps
    its files is none of a client's business)."""
    return _SERVER_PATH.sub("", message)


def unicode_text(value: str) -> str:
    """A pydantic validator: text that is Unicode (JSON may carry a lone surrogate, "\\ud800", which is not)."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as e:
        raise ValueError(f"holds a lone surrogate (U+{ord(value[e.start]):04X}) at character {e.start + 1}, "
                         "which is not Unicode text") from None
    return value


class Access:
    """Checks a request's key: 401 without a valid one, 403 when its scope does not allow the action, 429 (with
    Retry-After) past its rate limit. Keys are never logged: a key is named by its `name`."""

    def __init__(self, keys: KeyStore, limiter: RateLimiter) -> None:
        self.keys, self.limiter = keys, limiter

    def check(self, authorization: str, needed: str) -> ApiKey:
        scheme, _, token = authorization.partition(" ")
        key = self.keys.find(token.strip()) if scheme.lower() == "bearer" else None
        if key is None:
            raise ApiError(401, "a valid API key is needed: send 'Authorization: Bearer <key>'", None,
                           "invalid_api_key", {"WWW-Authenticate": "Bearer"})
        if not allows(key.scope, needed):
            log.warning("api: key %r (scope %s) refused a %s request", key.name, key.scope, needed)
            raise ApiError(403, f"this key's scope ({key.scope}) does not allow {needed}", None, "insufficient_scope")
        wait = self.limiter.wait(key)
        if wait > 0:
            raise ApiError(429, "too many requests for this key; try again later", None, "rate_limited",
                           {"Retry-After": str(int(wait) + 1)})
        return key

    def needs(self, scope: str) -> Callable[[Request], ApiKey]:
        """A FastAPI dependency: the request's key, allowed `scope`."""
        def dependency(request: Request) -> ApiKey:
            return self.check(request.headers.get("authorization", ""), scope)
        return dependency


class Conversations:
    """The turns of each conversation a client continues by id, per key (one key cannot read another's), kept in the
    state store (SQLite in the state folder, or the Redis that WeChat uses: every worker sees them), forgotten after
    `api.conversation_ttl_s` idle. Its calls block: make them in a worker thread."""

    def __init__(self, state: WeChatState, keep_turns: int, ttl_s: float) -> None:
        self.state, self.keep, self.ttl = state, keep_turns, ttl_s

    def get(self, key: ApiKey, conversation_id: str) -> list[Turn]:
        return [Turn.loads(t) for t in self.state.history(self._id(key, conversation_id), self.ttl)]

    def add(self, key: ApiKey, conversation_id: str, answer: Answer) -> None:
        self.state.remember(self._id(key, conversation_id), Turn.of(answer).dumps(), self.keep, self.ttl)

    @staticmethod
    def _id(key: ApiKey, conversation_id: str) -> str:
        # the key's own id (its hash), not its name: a new key given a revoked key's name starts afresh; WeChat's
        # OpenIDs hold no ':'
        return f"api:{key.sha256}:{conversation_id}"


class Answering:
    """Answers computed in worker threads, at most `max_concurrent_answers` at once across the API's doors."""

    def __init__(self, assistant: Assistant, settings: ApiSettings) -> None:
        self.assistant = assistant
        self.limiter = anyio.CapacityLimiter(settings.max_concurrent_answers)

    async def run(self, work: Callable[[], Any]) -> Any:
        return await anyio.to_thread.run_sync(work, limiter=self.limiter)

    async def ask(self, question: str, history: Conversation, param: str = "question") -> Answer:
        try:
            return await self.run(lambda: self.assistant.ask(question, history))  # type: ignore[no-any-return]
        except AssistantError as e:
            raise refusal(e, param) from e

    async def pick(self, choice: int, history: Conversation) -> Answer:
        """The answer from candidate `choice` of the conversation's last answer (409 when it offered none such)."""
        try:
            return await self.run(lambda: self.assistant.pick(choice, history))  # type: ignore[no-any-return]
        except AssistantError as e:
            raise refusal(e, "choice") from e

    async def stream(self, question: str, history: Conversation) -> AsyncIterator[tuple[str, Any]]:
        """("draft", text so far) while an LLM writes, then ("answer", Answer) or ("error", ApiError)."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[tuple[str, Any]] = asyncio.Queue()

        def drafted(text: str) -> None:
            loop.call_soon_threadsafe(queue.put_nowait, ("draft", text))

        async def work() -> None:
            try:
                answer = await self.run(lambda: self.assistant.ask(question, history, drafted))
                queue.put_nowait(("answer", answer))
            except AssistantError as e:
                queue.put_nowait(("error", refusal(e, "question")))
            except Exception:
                log.exception("api: a streamed answer failed")
                queue.put_nowait(("error", ApiError(500, "the answer failed; try again")))

        task = asyncio.create_task(work())
        try:
            while True:
                kind, value = await queue.get()
                yield kind, value
                if kind != "draft":
                    break
        finally:
            await task
