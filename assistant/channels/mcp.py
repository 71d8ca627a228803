"""MCP tools for AI assistants (the official `mcp` SDK): `ask_policy`, `search_clauses` and `get_document`, each
returning cited clauses with their labels and status. Served over stdio (`policy-assistant mcp`) and over streamable
HTTP at /mcp behind the API keys."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

from mcp.server.mcpserver import MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from assistant.channels.api import clause_json, document_json
from assistant.channels.api_support import Access, Answering, ApiError
from assistant.channels.guard import error_body, respond
from assistant.errors import AssistantError
from assistant.service import Assistant

INSTRUCTIONS = ("Answers questions about the government policies in this assistant's corpus, with citations to "
                "the exact clause (《文件》（文号） 条款). Ask in Chinese as a citizen would; a refusal means the "
                "corpus holds nothing relevant. Cite the clauses returned; never state what they do not say.")


def build_mcp(assistant: Assistant, answering: Answering) -> MCPServer:
    """The MCP server and its three tools."""
    server: MCPServer = MCPServer(name="policy-assistant", title="政策解读助手", instructions=INSTRUCTIONS)

    async def run(work: Callable[[], Any]) -> Any:
        try:
            return await answering.run(work)
        except AssistantError as e:
            raise ToolError(e.message) from e

    @server.tool(title="回答政策问题")
    async def ask_policy(question: str) -> dict[str, Any]:
        """A cited answer to a question about the policies in the corpus (or a refusal when none applies). The
        answer text ends with its sources; `citations` gives each cited clause with its label, text and status.
        `outcome` says how sure it is: `answered`; `candidates` (no clause clearly answers: `candidates` lists up to
        three that may, each with its citation and gist; present them as possibilities, not as the answer); or
        `refused`. `confidence` is the probability that the first cited clause answers the question."""
        answer = await run(lambda: assistant.ask(question))
        return answer.to_json()  # type: ignore[no-any-return]

    @server.tool(title="检索条款")
    async def search_clauses(query: str, k: int = 5) -> dict[str, Any]:
        """The clauses that best match a query, ranked, with their labels, text, status and relevance (0–1)."""
        k = max(1, min(k, assistant.settings.api.max_search_results))
        retrieval = await run(lambda: assistant.search(query, k))
        return {"query": query, "relevant": retrieval.relevant,
                "clauses": [{"rank": i + 1, **clause_json(c.clause), "relevance": round(c.relevance, 4)}
                            for i, c in enumerate(retrieval.candidates)]}

    @server.tool(title="查看文件")
    async def get_document(doc_id: str) -> dict[str, Any]:
        """A document of the corpus (by the doc_id a citation gives) with its metadata and every clause."""
        row, clauses = await run(lambda: assistant.document(doc_id))
        return {**document_json(row), "clauses": [clause_json(c) for c in clauses]}

    return server


Scope = MutableMapping[str, Any]
ASGIApp = Callable[[Scope, Any, Any], Awaitable[None]]


class Keyed:
    """The MCP endpoint behind the API keys (scope `ask`): 401, 403 or 429 as JSON before the SDK sees a request.
    (A class, not a function: Starlette calls a function endpoint with a request rather than as an ASGI app.)"""

    def __init__(self, app: ASGIApp, access: Access) -> None:
        self.app, self.access = app, access

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] == "http":
            headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
            try:
                self.access.check(headers.get("authorization", ""), "ask")
                if scope["method"] != "POST":  # stateless: no stream to GET, no session to DELETE
                    raise ApiError(405, "send MCP requests with POST", None, "method_not_allowed", {"Allow": "POST"})
            except ApiError as e:
                await respond(send, e.status_code, error_body(e.status_code, e.message, e.param, e.code),
                              [(k.lower().encode(), v.encode()) for k, v in (e.headers or {}).items()])
                return
        await self.app(scope, receive, send)


def http_app(server: MCPServer, access: Access) -> tuple[Keyed, Any]:
    """(the /mcp endpoint, its session manager, to be run in the server's lifespan). Stateless, JSON responses: any
    worker can answer any request. DNS-rebinding checks are off: a browser page cannot send the key."""
    from mcp.server.transport_security import TransportSecuritySettings

    starlette = server.streamable_http_app(
        streamable_http_path="/mcp", stateless_http=True, json_response=True,
        transport_security=TransportSecuritySettings(enable_dns_rebinding_protection=False))
    endpoint = next(route.app for route in starlette.routes  # type: ignore[attr-defined]
                    if getattr(route, "path", "") == "/mcp")
    return Keyed(endpoint, access), server.session_manager
