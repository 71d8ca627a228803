"""The JSON API at /api/v1 (OpenAPI schema at /api/v1/openapi.json, docs at /api/v1/docs): ask, search, and the
documents' life cycle, behind API keys. Everything goes through `Assistant`."""

from __future__ import annotations

import json
import logging
import tempfile
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import anyio
from fastapi import Depends, FastAPI, File, Form, Query, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field, field_validator

from assistant.answer.records import Answer, reference
from assistant.channels.api_support import (
    Access,
    Answering,
    ApiError,
    Conversations,
    install_errors,
    refusal,
    unicode_text,
    without_paths,
)
from assistant.config import ApiKey
from assistant.conversation import Conversation
from assistant.errors import AssistantError, IndexNotBuiltError
from assistant.index.build import IndexSummary
from assistant.index.registry import DocumentRow
from assistant.ingest.loaders import SUFFIXES
from assistant.ingest.records import Clause
from assistant.publishing import (
    DOC_ID,
    KINDS,
    MAX_ID_BYTES,
    STATUSES,
    DuplicateDocument,
    FieldError,
    PublishError,
    ReplaceNotConfirmed,
    Upload,
)
from assistant.service import Assistant

log = logging.getLogger(__name__)

CONVERSATION_ID = r"^[\w.:-]{1,100}$"


class HistoryTurn(BaseModel):
    question: str = Field(max_length=10_000, description="An earlier question of the conversation.")


class AskRequest(BaseModel):
    question: str | None = Field(None, min_length=1, max_length=100_000,
                                 description="The question, as the citizen asked it (not needed with `choice`).")
    choice: int | None = Field(None, ge=1, le=9, description="Pick this candidate (from 1) of the conversation's "
                               "last answer, when its outcome was `candidates`: the answer from that clause.")
    conversation_id: str | None = Field(None, pattern=CONVERSATION_ID, description="Continue this conversation: "
                                        "follow-ups are read against its earlier turns (kept by the server).")
    history: list[str | HistoryTurn] | None = Field(None, max_length=1000, description="The conversation's earlier "
                                                    "questions, oldest first (instead of a conversation_id).")
    stream: bool = Field(False, description="Answer as server-sent events: drafts (with an LLM), then the answer.")

    @field_validator("question")
    @classmethod
    def _not_blank(cls, question: str | None) -> str | None:
        if question is not None and not question.strip():
            raise ValueError("the question is blank")
        return question if question is None else unicode_text(question)

    @field_validator("history")
    @classmethod
    def _unicode(cls, history: list[str | HistoryTurn] | None) -> list[str | HistoryTurn] | None:
        for turn in history or []:
            unicode_text(turn if isinstance(turn, str) else turn.question)
        return history


class StatusRequest(BaseModel):
    status: Literal[STATUSES] = Field(description="The document's new status.")  # type: ignore[valid-type]
    replaced_by: str = Field("", max_length=300, description="The document that replaces it (title, 文号 or id).")

    @field_validator("replaced_by")
    @classmethod
    def _unicode(cls, replaced_by: str) -> str:
        return unicode_text(replaced_by)


def summary_json(summary: IndexSummary) -> dict[str, Any]:
    return {"generation": summary.generation, "switched": summary.switched, "added": summary.added,
            "updated": summary.updated, "removed": summary.removed, "unchanged": summary.unchanged,
            "embedded": summary.embedded, "errors": [without_paths(e) for e in summary.errors],
            "documents": summary.documents,
            "clauses": summary.clauses, "seconds": round(summary.seconds, 2)}


def document_json(row: DocumentRow) -> dict[str, Any]:
    meta = row.metadata
    return {"doc_id": row.doc_id, "title": row.title, "doc_number": meta.get("doc_number", ""),
            "issuer": meta.get("issuer", ""), "publish_date": meta.get("publish_date", ""),
            "status": meta.get("status", ""), "kind": meta.get("kind", "policy"), "state": row.state,
            "clauses": row.clauses, "indexed_at": row.indexed_at, "generation": row.generation}


def clause_json(clause: Clause) -> dict[str, Any]:
    return {"clause_id": clause.clause_id, "doc_id": clause.doc_id, "title": clause.title,
            "doc_number": clause.doc_number, "clause": clause.label, "heading": clause.heading, "text": clause.text,
            "status": clause.status, "in_force": clause.in_force(), "citation": reference(clause)}


def checked_id(doc_id: str, upload: bool = False) -> str:
    """A document id from a URL: never a path outside the corpus (.., absolute, hidden), and for an upload a plain
    file name."""
    parts = doc_id.split("/")
    if not doc_id or len(doc_id) > 300 or any(not p or p.startswith(".") or not DOC_ID.match(p) for p in parts) \
            or (upload and len(parts) > 1):
        raise ApiError(422, f"not a document id: {doc_id[:100]!r} (letters, digits, '-', '_', '.'; not hidden"
                       + ("; no folders)" if upload else ")"), "doc_id", "invalid_doc_id")
    if upload and len(doc_id.encode("utf-8")) > MAX_ID_BYTES:
        raise ApiError(422, f"doc_id: {len(doc_id.encode('utf-8'))} bytes long, over the limit of {MAX_ID_BYTES} "
                       f"bytes (a Chinese character takes 3)", "doc_id", "invalid_doc_id")
    return doc_id


def answer_json(answer: Answer, conversation_id: str | None) -> dict[str, Any]:
    data = answer.to_json()
    return {**data, "conversation_id": conversation_id} if conversation_id else data


def sse(event: str, data: Any) -> str:
    return f"event: {event}\ndata: {json.dumps(data, ensure_ascii=False)}\n\n"


def build_api(assistant: Assistant, access: Access, answering: Answering, conversations: Conversations) -> FastAPI:
    """The /api/v1 app (to be mounted there)."""
    api = FastAPI(title="policy-assistant API", version="1",
                  description="Cited answers from the policy corpus, search over its clauses, and publishing. "
                  "Send `Authorization: Bearer <key>` (`policy-assistant keys create --scope ask|publish`).")
    install_errors(api)
    asker, publisher = Depends(access.needs("ask")), Depends(access.needs("publish"))
    # changes to the index go one at a time (as on the editors' page), in threads of their own: a long publish
    # takes no answer slot
    changing = anyio.Lock()

    async def index_work(work: Callable[[], Any]) -> Any:
        async with changing:
            return await anyio.to_thread.run_sync(work)

    async def conversation(request: AskRequest, key: ApiKey) -> Conversation:
        if request.history is not None:
            return [h if isinstance(h, str) else h.question for h in request.history]
        if not request.conversation_id:
            return []
        return await anyio.to_thread.run_sync(conversations.get, key, request.conversation_id)  # type: ignore[no-any-return]

    async def remember(request: AskRequest, key: ApiKey, answer: Answer) -> None:
        if request.conversation_id:
            await anyio.to_thread.run_sync(conversations.add, key, request.conversation_id, answer)

    @api.post("/ask", summary="A cited answer to a question (or a refusal when the corpus has none)")
    async def ask(body: AskRequest, key: ApiKey = asker) -> Any:
        history = await conversation(body, key)
        if body.choice is not None:
            answer = await answering.pick(body.choice, history)
            await remember(body, key, answer)
            if body.stream:
                return StreamingResponse(iter([sse("answer", answer_json(answer, body.conversation_id))]),
                                         media_type="text/event-stream", headers={"Cache-Control": "no-store"})
            return answer_json(answer, body.conversation_id)
        if body.question is None:
            raise ApiError(422, "field 'question' is required (or 'choice', to pick a candidate)", "question",
                           "missing")
        question = body.question
        if not body.stream:
            answer = await answering.ask(question, history)
            await remember(body, key, answer)
            return answer_json(answer, body.conversation_id)

        async def events() -> AsyncIterator[str]:
            async for kind, value in answering.stream(question, history):
                if kind == "draft":
                    yield sse("draft", {"text": value})
                elif kind == "answer":
                    await remember(body, key, value)
                    yield sse("answer", answer_json(value, body.conversation_id))
                else:
                    yield sse("error", {"error": {"message": value.message, "code": value.code}})
        return StreamingResponse(events(), media_type="text/event-stream", headers={"Cache-Control": "no-store"})

    @api.get("/search", summary="The clauses that best match a query, ranked and scored")
    async def search(q: Annotated[str, Query(min_length=1, max_length=100_000, description="The query.")],
                     k: Annotated[int, Query(ge=1, le=100, description="How many clauses.")] = 5,
                     _: ApiKey = asker) -> Any:
        k = min(k, assistant.settings.api.max_search_results)
        try:
            retrieval = await answering.run(lambda: assistant.search(q, k))
        except AssistantError as e:
            raise refusal(e, "q") from e
        return {"query": q, "relevant": retrieval.relevant,
                "clauses": [{"rank": i + 1, **clause_json(c.clause), "relevance": round(c.relevance, 4),
                             "scores": c.scores()} for i, c in enumerate(retrieval.candidates)]}

    @api.get("/documents", summary="The documents in the index")
    async def documents(all: Annotated[bool, Query(description="Also those removed from the index.")] = False,
                        _: ApiKey = asker) -> Any:
        rows = await anyio.to_thread.run_sync(known, assistant)
        return {"documents": [document_json(r) for r in rows if all or r.state != "removed"]}

    @api.post("/documents/{doc_id:path}/withdraw", summary="Stop answering from a document (it stays indexed)")
    async def withdraw(doc_id: str, _: ApiKey = publisher) -> Any:
        return await change("withdraw", doc_id)

    @api.post("/documents/{doc_id:path}/restore", summary="Answer from a withdrawn or removed document again")
    async def restore(doc_id: str, _: ApiKey = publisher) -> Any:
        return await change("restore", doc_id)

    @api.post("/documents/{doc_id:path}/status", summary="Change a document's status (已废止 …)")
    async def status(doc_id: str, body: StatusRequest, _: ApiKey = publisher) -> Any:
        return await change("set_status", doc_id, body.status, body.replaced_by)

    @api.delete("/documents/{doc_id:path}", summary="Remove a document from the index (its file stays)")
    async def remove(doc_id: str, _: ApiKey = publisher) -> Any:
        return await change("remove", doc_id)

    @api.get("/documents/{doc_id:path}", summary="A document and its clauses")
    async def document(doc_id: str, _: ApiKey = asker) -> Any:
        found, clauses = await known_document(assistant.document, checked_id(doc_id))
        return {**document_json(found), "clauses": [clause_json(c) for c in clauses]}

    @api.put("/documents/{doc_id:path}", summary="Publish a file as this document (replace=true to replace it)")
    async def publish(doc_id: str, file: Annotated[UploadFile, File(description=f"The policy ({' '.join(SUFFIXES)}).")],
                      title: Annotated[str, Form(max_length=300)] = "",
                      doc_number: Annotated[str, Form(max_length=100)] = "",
                      issuer: Annotated[str, Form(max_length=200)] = "",
                      publish_date: Annotated[str, Form(pattern=r"^(\d{4}-\d{2}-\d{2})?$")] = "",
                      status: Annotated[Literal["", *STATUSES], Form()] = "",  # type: ignore[valid-type]
                      kind: Annotated[Literal["", *KINDS], Form()] = "",  # type: ignore[valid-type]
                      interprets: Annotated[str, Form(max_length=300)] = "",
                      replaced_by: Annotated[str, Form(max_length=300)] = "",
                      replace: Annotated[bool, Form(description="Replace a published document of this id.")] = False,
                      key: ApiKey = publisher) -> Any:
        checked_id(doc_id, upload=True)
        suffix = Path(file.filename or "").suffix.lower()
        if suffix not in SUFFIXES:
            raise ApiError(422, f"file: {file.filename!r} is not a supported type ({' '.join(SUFFIXES)})", "file",
                           "unsupported_file")
        fields = {"title": title, "doc_number": doc_number, "issuer": issuer, "publish_date": publish_date,
                  "status": status, "kind": kind, "interprets": interprets, "replaced_by": replaced_by}
        with tempfile.TemporaryDirectory(prefix="policy-upload-") as folder:
            path = Path(folder) / f"{doc_id}{suffix}"
            path.write_bytes(await file.read())
            try:
                summary, titles = await index_work(
                    lambda: assistant.publish([Upload(path, path.name)], fields, replace=replace))
            except ReplaceNotConfirmed as e:
                raise ApiError(409, f"{doc_id} is published already: {e.replacing[doc_id]}; send replace=true to "
                               "replace it (the old version stays in its history)", "replace", "exists") from e
            except DuplicateDocument as e:
                raise ApiError(409, f"{doc_id} has the same text as the published document "
                               f"{e.duplicates[doc_id]!r}; nothing was published (publish it under that id to "
                               "update it)", "file", "duplicate") from e
            except FieldError as e:
                raise ApiError(422, f"{e.field}: {e.message}", e.field, "invalid_field") from e
            except PublishError as e:
                raise ApiError(422, without_paths(e.message), "file", "unreadable_file") from e
            except AssistantError as e:
                raise refusal(e) from e
        log.info("api: key %r published %s (generation %s)", key.name, doc_id, summary.generation)
        return {"doc_id": doc_id, "title": titles.get(doc_id, ""), "summary": summary_json(summary)}

    async def known_document(read: Callable[[str], Any], doc_id: str) -> Any:
        """What `read` gives for a document of the index; 404 when there is none of that id."""
        try:
            return await anyio.to_thread.run_sync(read, doc_id)
        except IndexNotBuiltError as e:
            raise refusal(e) from e
        except AssistantError as e:
            raise ApiError(404, f"no document {doc_id!r} in the index", "doc_id", "unknown_document") from e

    async def change(action: str, doc_id: str, *args: str) -> Any:
        await known_document(assistant.row, checked_id(doc_id))
        try:
            summary = await index_work(lambda: getattr(assistant, action)(doc_id, *args))
        except AssistantError as e:
            raise refusal(e, "doc_id") from e
        after = await known_document(assistant.row, doc_id)
        return {"doc_id": doc_id, "state": after.state, "status": after.metadata.get("status", ""),
                "summary": summary_json(summary)}

    return api


def known(assistant: Assistant) -> list[DocumentRow]:
    return assistant.documents() if assistant.has_index() else []

