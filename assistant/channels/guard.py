"""The HTTP guard in front of every door (a pure ASGI middleware): which of Gradio's routes answer here, how large a
request may be, which origins may change state, how often a login may fail, and what an anonymous visitor of a
page behind a login sees."""

from __future__ import annotations

import asyncio
import contextlib
import html
import ipaddress
import json
import logging
import os
import re
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qs, urlsplit

from assistant.channels.throttle import LoginThrottle
from assistant.errors import AssistantError

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

# Gradio routes no page here uses: file proxies, streams, recordings, its code editor, run history, profiling.
_NEVER = re.compile(r"^/gradio_api/(proxy=|file/|stream/|process_recording|vibe|undo-vibe|run-history|runs|"
                    r"dev/|profiling|custom_component|mcp)|^/(file=|proxy=|upload|mcp)")
# A page that takes no files also serves none and accepts no uploads.
_FILES = re.compile(r"^/gradio_api/(file=|upload)")
_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}


@dataclass
class Mount:
    """One Gradio app as the guard sees it: its path prefix, whether it takes uploads, and its login (the
    Gradio app whose session tokens say who is logged in; None: the page is open)."""

    prefix: str
    uploads: bool = False
    login: Any = None
    title: str = "登录"

    def logged_in(self, scope: Scope) -> bool:
        if self.login is None:
            return True
        cookies = _cookies(scope)
        cookie_id = self.login.cookie_id
        tokens = self.login.tokens
        return any(cookies.get(f"{name}-{cookie_id}") in tokens for name in ("access-token", "access-token-unsecure"))


@dataclass
class GuardSettings:
    max_request_bytes: int
    max_upload_bytes: int
    max_api_upload_bytes: int = 0  # a document published through the API (PUT /api/v1/documents/…)
    allowed_origins: list[str] = field(default_factory=list)
    login_delay_s: float = 0.5
    upload_folder: str = ""
    max_upload_folder_bytes: int = 0  # 0: unbounded


class Guard:
    """Wraps the whole app; see the module docstring. `mounts` longest prefix first."""

    def __init__(self, app: ASGIApp, mounts: list[Mount], settings: GuardSettings, throttle: LoginThrottle,
                 open_paths: tuple[str, ...] = ("/healthz", "/wechat"),
                 api_prefixes: tuple[str, ...] = ()) -> None:
        self.app = app
        self.mounts = sorted(mounts, key=lambda m: len(m.prefix), reverse=True)
        self.settings = settings
        self.throttle = throttle
        self.open_paths = open_paths
        self.api_prefixes = api_prefixes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope.get("path", "")
        method = scope.get("method", "GET")
        if path in self.open_paths:  # WeChat checks its own signatures and caps its own body
            await self.app(scope, receive, send)
            return
        if method in _UNSAFE and not self._same_origin(scope):
            log.warning("refused a cross-origin %s %s from %s (Origin %s)", method, path, _client(scope),
                        _header(scope, "origin"))
            await respond(send, 403, {"error": "cross-origin request refused"})
            return
        if any(path == p or path.startswith(p + "/") for p in self.api_prefixes):
            await self._api(scope, receive, send, path, method)
            return
        mount = next((m for m in self.mounts if path == m.prefix or path.startswith(m.prefix + "/")), None)
        if mount is None:
            await self.app(scope, receive, send)
            return
        rest = path[len(mount.prefix):] or "/"
        if mount.prefix and path == mount.prefix:  # /editors → /editors/
            await respond(send, 307, None, [(b"location", (mount.prefix + "/").encode())])
            return
        if _NEVER.search(rest) or (not mount.uploads and _FILES.search(rest)):
            await respond(send, 403, {"error": "not available"})
            return
        if rest.rstrip("/") == "/login" and method == "POST":
            await self._login(scope, receive, send)
            return
        if not mount.logged_in(scope) and rest not in ("/logout", "/favicon.ico"):
            if method == "GET" and rest == "/":
                await _respond_html(send, _login_page(mount.title))
            else:
                await respond(send, 401, {"error": "Not authenticated"})
            return
        uploading = rest == "/gradio_api/upload"
        if uploading and self._upload_folder_full():
            log.warning("refused an upload: the upload folder %s is full", self.settings.upload_folder)
            await respond(send, 507, {"error": "the upload cache is full; try again later"})
            return
        limit = self.settings.max_upload_bytes if uploading else self.settings.max_request_bytes
        body = await _read_body(scope, receive, limit)
        if body is None:
            await respond(send, 413, {"error": f"request body over {limit:,} bytes"})
            return
        await self.app(scope, _replay(body, receive), send)

    async def _api(self, scope: Scope, receive: Receive, send: Send, path: str, method: str) -> None:
        """The doors for other systems (`api_prefixes`) check their own keys; here their bodies are bounded (a
        published document by the upload limit)."""
        publishing = method == "PUT" and path.startswith("/api/v1/documents/")
        limit = self.settings.max_api_upload_bytes if publishing else self.settings.max_request_bytes
        body = await _read_body(scope, receive, limit)
        if body is None:
            await respond(send, 413, error_body(413, f"request body over {limit:,} bytes", code="too_large"))
            return
        await self.app(scope, _replay(body, receive), send)

    def _upload_folder_full(self) -> bool:
        """Uploads wait in Gradio's folder until they are published or deleted by age; past the bound, no more."""
        if not self.settings.max_upload_folder_bytes or not self.settings.upload_folder:
            return False
        total = 0
        for folder, _, files in os.walk(self.settings.upload_folder):
            for name in files:
                with contextlib.suppress(OSError):
                    total += os.stat(os.path.join(folder, name)).st_size
        return total >= self.settings.max_upload_folder_bytes

    def _same_origin(self, scope: Scope) -> bool:
        """A state-changing request must come from this server's own pages (or a configured origin)."""
        if _header(scope, "sec-fetch-site") == "cross-site":
            return False
        origin = _header(scope, "origin")
        if not origin or origin in self.settings.allowed_origins:
            return True
        host = _header(scope, "x-forwarded-host") or _header(scope, "host")
        return origin != "null" and urlsplit(origin).netloc == host

    async def _login(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Gradio's login, behind the failure limits: refused (429) while the client or account is locked out;
        each failure is logged (never the password) and answered after a short delay."""
        body = await _read_body(scope, receive, 4096)
        if body is None:
            await respond(send, 413, {"error": "login form too large"})
            return
        account = (parse_qs(body.decode("utf-8", "replace")).get("username") or [""])[0].strip()[:100]
        client = _client(scope)
        wait = self.throttle.retry_after(client, account)
        if wait > 0:
            log.warning("login refused for %r from %s: too many failed attempts (%.0f s left)", account, client, wait)
            await respond(send, 429, {"error": "too many failed logins; try again later"},
                           [(b"retry-after", str(int(wait) + 1).encode())])
            return
        status: list[int] = []

        async def watch(message: Message) -> None:
            if message["type"] == "http.response.start":
                status.append(int(message["status"]))
                if status[0] != 200:
                    self.throttle.failed(client, account)
                    log.warning("failed login for %r from %s", account, client)
                    await asyncio.sleep(self.settings.login_delay_s)
                else:
                    self.throttle.succeeded(client)
            await send(message)

        await self.app(scope, _replay(body, receive), watch)


async def _read_body(scope: Scope, receive: Receive, limit: int) -> bytes | None:
    """The whole body, or None as soon as it passes `limit` bytes (a declared length over it is refused at once)."""
    declared = _header(scope, "content-length")
    if declared.isdigit() and int(declared) > limit:
        return None
    chunks, size = [], 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            break
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return None
        chunks.append(chunk)
        if not message.get("more_body", False):
            break
    return b"".join(chunks)


def _replay(body: bytes, receive: Receive) -> Receive:
    """The body read already, then the client's own messages (a streaming response waits on them for the
    disconnect)."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replayed


def _header(scope: Scope, name: str) -> str:
    wanted = name.encode()
    for key, value in scope.get("headers", []):
        if key.lower() == wanted:
            return str(value.decode("latin-1")).strip()
    return ""


def _cookies(scope: Scope) -> dict[str, str]:
    from http.cookies import SimpleCookie

    jar: SimpleCookie = SimpleCookie()
    try:
        jar.load(_header(scope, "cookie"))
    except Exception:  # a malformed cookie header is no login
        return {}
    return {key: morsel.value for key, morsel in jar.items()}


def _client(scope: Scope) -> str:
    client = scope.get("client")
    return str(client[0]) if client else "?"


def forwarding(trusted_proxies: list[str]) -> dict[str, Any]:
    """uvicorn's options for X-Forwarded-For: believed only from `trusted_proxies` (addresses or networks), and
    from no one when that is empty. uvicorn's own default believes any loopback client, so that a local process,
    or a proxy passing on a client's header, could name any address and escape the per-client login limit."""
    for entry in trusted_proxies:
        try:
            ipaddress.ip_network(entry.strip(), strict=False)
        except ValueError as e:
            raise AssistantError(f"POLICY_ASSISTANT_WEB__TRUSTED_PROXIES: {entry!r} is no address or network",
                                 "list addresses or networks, e.g. [\"127.0.0.1\", \"10.0.0.0/8\"]") from e
    if not trusted_proxies:
        return {"proxy_headers": False}
    return {"proxy_headers": True, "forwarded_allow_ips": [entry.strip() for entry in trusted_proxies]}


# the error types of the doors for other systems, as OpenAI's API names them (its clients read them)
API_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                   404: "not_found_error", 405: "invalid_request_error", 409: "conflict_error",
                   413: "invalid_request_error", 415: "invalid_request_error", 422: "invalid_request_error",
                   429: "rate_limit_error", 503: "service_unavailable"}


def error_body(status: int, message: str, param: str | None = None, code: str | None = None) -> dict[str, Any]:
    """The error object of the doors for other systems (/api/v1, /v1, /mcp), shaped as OpenAI's API shapes it."""
    return {"error": {"message": message, "type": API_ERROR_TYPES.get(status, "api_error"), "param": param,
                      "code": code or API_ERROR_TYPES.get(status, "api_error")}}


async def respond(send: Send, status: int, payload: Any, headers: list[tuple[bytes, bytes]] | None = None) -> None:
    body = json.dumps(payload, ensure_ascii=False).encode() if payload is not None else b""
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            *(headers or [])]})
    await send({"type": "http.response.body", "body": body})


async def _respond_html(send: Send, page: str) -> None:
    body = page.encode()
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8"),
                            (b"content-length", str(len(body)).encode()), (b"cache-control", b"no-store")]})
    await send({"type": "http.response.body", "body": body})


def _login_page(title: str) -> str:
    """A bare login form: it names no function of the page behind it (Gradio's own login page embeds its API)."""
    return f"""<!doctype html>
<html lang="zh-CN"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>{html.escape(title)}</title>
<style>body{{font-family:system-ui,"Noto Sans CJK SC","WenQuanYi Zen Hei",sans-serif;background:#f6f7f9;margin:0}}
form{{max-width:320px;margin:12vh auto;background:#fff;padding:24px 28px;border-radius:10px;box-shadow:0 1px 4px #0002}}
label{{display:block;margin:12px 0 4px}}input{{width:100%;padding:8px;box-sizing:border-box;font-size:1em}}
button{{margin-top:18px;width:100%;padding:9px;font-size:1em;background:#ea580c;color:#fff;border:0;border-radius:6px}}
#error{{color:#c62828;min-height:1.4em}}</style></head>
<body><form id="login"><h3>{html.escape(title)}</h3>
<label for="username">用户名</label><input id="username" name="username" autocomplete="username" required>
<label for="password">密码</label><input id="password" name="password" type="password"
 autocomplete="current-password" required>
<button type="submit">登录</button><p id="error" role="alert"></p></form>
<script>
document.getElementById("login").addEventListener("submit", async (event) => {{
  event.preventDefault();
  const error = document.getElementById("error");
  error.textContent = "";
  const response = await fetch("login", {{method: "POST", body: new URLSearchParams(new FormData(event.target))}});
  if (response.ok) {{ location.reload(); return; }}
  document.getElementById("password").value = "";
  error.textContent = response.status === 429 ? "失败次数过多，请稍后再试。" : "用户名或密码不正确。";
}});
</script></body></html>
"""
