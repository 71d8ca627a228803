"""A local OpenAI-compatible server for tests: POST /v1/chat/completions answers with scripted completions,
as one JSON response or as a server-sent-event stream (`"stream": true`), the way the real API does."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Reply:
    """What the server does with one request: send `content` (in `chunks` pieces when streaming), after
    `delay` seconds; or answer HTTP `status`; or send `raw` bytes instead of a completion."""

    content: str = ""
    delay: float = 0.0
    status: int = 200
    raw: bytes | None = None
    chunks: int = 4


class FakeLLM:
    """`script(request_json) -> Reply` decides each reply; every request is kept in `requests`."""

    def __init__(self, script: Callable[[dict[str, Any]], Reply]) -> None:
        self.script = script
        self.requests: list[dict[str, Any]] = []
        llm = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                if self.path.rstrip("/") != "/v1/chat/completions":
                    self.send_error(404)
                    return
                llm.requests.append(body)
                reply = llm.script(body)
                time.sleep(reply.delay)
                if reply.status != 200:
                    self._send(reply.status, json.dumps({"error": {"message": "scripted failure",
                                                                   "type": "server_error"}}).encode())
                elif reply.raw is not None:
                    self._send(200, reply.raw)
                elif body.get("stream"):
                    self._stream(body, reply)
                else:
                    self._send(200, json.dumps(_completion(body, reply.content)).encode())

            def _send(self, status: int, data: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, body: dict[str, Any], reply: Reply) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Transfer-Encoding", "chunked")
                self.end_headers()
                size = max(1, -(-len(reply.content) // reply.chunks))
                pieces = [reply.content[i:i + size] for i in range(0, len(reply.content), size)]
                events = [_chunk(body, {"role": "assistant", "content": ""}, None)]
                events += [_chunk(body, {"content": piece}, None) for piece in pieces]
                events.append(_chunk(body, {}, "stop"))
                for event in [*(f"data: {json.dumps(e, ensure_ascii=False)}\n\n" for e in events), "data: [DONE]\n\n"]:
                    data = event.encode()
                    self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
                    self.wfile.flush()
                self.wfile.write(b"0\r\n\r\n")

            def log_message(self, *args: Any) -> None:
                pass

        class Server(ThreadingHTTPServer):
            def handle_error(self, request: Any, client_address: Any) -> None:
                pass  # a client that gave up (the timeout tests) closes the connection before the reply

        self.server = Server(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.server.server_address[1]}/v1"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()


def _completion(body: dict[str, Any], content: str) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion", "created": int(time.time()), "model": body["model"],
            "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 10, "total_tokens": 20}}


def _chunk(body: dict[str, Any], delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {"id": "chatcmpl-test", "object": "chat.completion.chunk", "created": int(time.time()),
            "model": body["model"], "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}
