"""An OpenAI-compatible chat endpoint at /v1 (`POST /v1/chat/completions`, `GET /v1/models`), behind the API keys,
for chat platforms that speak that protocol (Dify, FastGPT, Open WebUI …). The conversation is the messages array;
the answer is the cited answer text, and the extra field `citations` carries the cited clauses."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from typing import Any, Literal

from fastapi import Depends, FastAPI
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, ConfigDict, Field, field_validator

from assistant.answer.records import Answer
from assistant.channels.api_support import Access, Answering, ApiError, install_errors, unicode_text
from assistant.config import ApiKey, ApiSettings

CREATED = int(time.time())
CHUNK_CHARS = 40  # a streamed answer is sent in pieces of about this many characters


class TextPart(BaseModel):
    type: Literal["text"]
    text: str = Field(max_length=100_000)


class Message(BaseModel):
    model_config = ConfigDict(extra="allow")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[TextPart] | None = Field(None, max_length=100_000)

    @field_validator("content")
    @classmethod
    def _unicode(cls, content: str | list[TextPart] | None) -> str | list[TextPart] | None:
        unicode_text(content if isinstance(content, str) else "".join(part.text for part in content or []))
        return content

    @property
    def text(self) -> str:
        if isinstance(self.content, list):
            return "".join(part.text for part in self.content)
        return self.content or ""


class ChatRequest(BaseModel):
    """OpenAI's chat request; sampling options (temperature, max_tokens …) are accepted and have no effect."""

    model_config = ConfigDict(extra="allow")
    model: str = Field(max_length=200)
    messages: list[Message] = Field(min_length=1, max_length=1000)
    stream: bool = False


def extra(answer: Answer) -> dict[str, Any]:
    """What a chat completion carries beyond OpenAI's fields: the structured citations, how sure it is (outcome,
    confidence, the candidates offered) and whether it refused."""
    data = answer.to_json()
    return {key: data[key] for key in ("citations", "refused", "warnings", "mode", "outcome", "confidence",
                                       "candidates", *(("chosen",) if "chosen" in data else ()))}


def build_openai(access: Access, answering: Answering, settings: ApiSettings) -> FastAPI:
    """The /v1 app (to be mounted there)."""
    app = FastAPI(title="policy-assistant OpenAI-compatible API", docs_url=None, redoc_url=None, openapi_url=None)
    install_errors(app)
    asker = Depends(access.needs("ask"))
    model = settings.model_name

    @app.get("/models")
    async def models(_: ApiKey = asker) -> Any:
        return {"object": "list", "data": [{"id": model, "object": "model", "created": CREATED,
                                            "owned_by": "policy-assistant"}]}

    @app.post("/chat/completions")
    async def completions(body: ChatRequest, _: ApiKey = asker) -> Any:
        if body.model != model:
            raise ApiError(404, f"the model {body.model!r} does not exist; use {model!r}", "model", "model_not_found")
        asked = [m for m in body.messages if m.role == "user"]
        if body.messages[-1].role != "user" or not body.messages[-1].text.strip():
            raise ApiError(422, "the last message must be the user's question", "messages", "invalid_field")
        answer = await answering.ask(asked[-1].text, [m.text for m in asked[:-1]], "messages")
        name, created = f"chatcmpl-{uuid.uuid4().hex}", int(time.time())
        if not body.stream:
            return {"id": name, "object": "chat.completion", "created": created, "model": model,
                    "choices": [{"index": 0, "message": {"role": "assistant", "content": answer.text},
                                 "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": len(asked[-1].text), "completion_tokens": len(answer.text),
                              "total_tokens": len(asked[-1].text) + len(answer.text)},
                    **extra(answer)}

        def chunk(delta: dict[str, Any], finish: str | None = None, **more: Any) -> str:
            data = {"id": name, "object": "chat.completion.chunk", "created": created, "model": model,
                    "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **more}
            return f"data: {json.dumps(data, ensure_ascii=False)}\n\n"

        async def events() -> AsyncIterator[str]:
            # the answer is sent once it is final (an LLM's draft may still fall back to the extractive answer)
            yield chunk({"role": "assistant", "content": ""})
            for start in range(0, len(answer.text), CHUNK_CHARS):
                yield chunk({"content": answer.text[start:start + CHUNK_CHARS]})
            yield chunk({}, "stop", **extra(answer))
            yield "data: [DONE]\n\n"
        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    return app

