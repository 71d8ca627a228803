"""One ASGI app: the staff chat at `/`, the editors' page at `/editors/` (behind a login), `/healthz`, the WeChat
official account at `/wechat` when a token is set, and the doors for other systems behind API keys: the JSON API at
`/api/v1`, the OpenAI-compatible endpoint at `/v1` and MCP at `/mcp`."""

from __future__ import annotations

import hmac
import importlib.util
import logging
import os
import sys
from pathlib import Path
from typing import Any

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.service import Assistant

log = logging.getLogger(__name__)


def _login(username: str, password: str) -> Any:
    """A Gradio auth check against one configured account (constant-time comparison)."""
    def check(given_user: str, given_password: str) -> bool:
        return (hmac.compare_digest(given_user.encode(), username.encode())
                and hmac.compare_digest(given_password.encode(), password.encode()))
    return check


def _lighten_gradio_events() -> None:
    """Remove two per-event costs of Gradio's queue that grow with use and matter under load.

    - Its monitoring summary rebuilds a pandas DataFrame of up to 10,000 past events after every event;
      it is refreshed every 500 events instead (the setting is read when a queue is created).
    - It tries to import matplotlib around every event; when matplotlib is not installed each failed import
      searches the whole `sys.path`. Marking it absent makes those imports fail at once.
    Together they were about 10 ms of CPU per answer with 20 users asking.
    """
    os.environ.setdefault("GRADIO_ANALYTICS_CACHE_FREQUENCY", "500")
    os.environ.setdefault("GRADIO_ANALYTICS_MAX_EVENTS", "1000")  # the summary's event history, kept in memory
    if "matplotlib" not in sys.modules and importlib.util.find_spec("matplotlib") is None:
        sys.modules["matplotlib"] = None  # type: ignore[assignment]


def create_app(settings: Settings, assistant: Assistant | None = None) -> Any:
    """The FastAPI app serving `assistant` (built from `settings` when not given)."""
    _lighten_gradio_events()
    from fastapi import FastAPI
    from fastapi.middleware.cors import CORSMiddleware
    from fastapi.responses import JSONResponse
    from gradio.utils import get_upload_folder

    from assistant.channels.chat_queue import bound_queue
    from assistant.channels.editors import build_editors, locked_page
    from assistant.channels.guard import Guard, GuardSettings, Mount
    from assistant.channels.throttle import LoginThrottle
    from assistant.channels.web import build_ui
    from assistant.feedback import FeedbackStore

    assistant = assistant or Assistant(settings)
    feedback = FeedbackStore(Path(settings.state_dir) / "feedback.sqlite3")
    doors, lifespan = _doors(settings, assistant)
    app = FastAPI(title="policy-assistant", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    for door in doors:
        app.router.routes.append(door)

    @app.get("/healthz")
    def healthz() -> Any:
        """The generation being served, with its document and clause counts and model."""
        try:
            manifest = assistant.manifest()
        except AssistantError as e:
            return JSONResponse({"status": "unavailable", "reason": e.message}, status_code=503)
        return {"status": "ok", "generation": manifest.generation, "documents": manifest.documents,
                "clauses": manifest.clauses, "model": manifest.model, "built_at": manifest.built_at}

    if settings.wechat.token.get_secret_value():
        app.include_router(_wechat(settings, assistant))  # before the chat page takes every other path
    web = settings.web
    # CORS: only the configured origins; with its own CORSMiddleware in place, Gradio adds none of its own
    # (which would let any http://localhost:* page read responses with the user's cookies); a configured site's
    # page may also call the API doors with its key
    app.add_middleware(CORSMiddleware, allow_origins=web.allowed_origins, allow_credentials=True,
                       allow_methods=["GET", "POST", "PUT", "DELETE"], allow_headers=["content-type", "authorization"])
    upload_limit = f"{settings.index.max_file_bytes}b"
    mounts: list[Mount] = []
    editor_password = web.editor_password.get_secret_value()
    if web.editor_username and editor_password:
        editors = build_editors(assistant, feedback, delete_cache=(min(web.upload_max_age_s, 600),
                                                                   web.upload_max_age_s))
        app = _mount(app, editors, "/editors", web.max_sessions, max_file_size=upload_limit,
                     auth=_login(web.editor_username, editor_password), auth_message="编辑登录")
        mounts.append(Mount("/editors", uploads=True, login=_gradio_app(app, "/editors"),
                            title="政策解读助手 · 编辑登录"))
    else:
        log.warning("no editor login configured: the editors' page is off")
        app = _mount(app, locked_page(), "/editors", 10)
        mounts.append(Mount("/editors"))
    chat_password = web.chat_password.get_secret_value()
    chat_auth = _login(web.chat_username, chat_password) if web.chat_username and chat_password else None
    chat = build_ui(assistant, feedback, editors=bool(web.editor_username and editor_password))
    bound_queue(chat, web.max_queued_events, web.max_queued_per_client, web.max_event_input_chars)
    app = _mount(app, chat, "/", web.max_sessions, auth=chat_auth, max_file_size=0)
    mounts.append(Mount("", login=_gradio_app(app, "") if chat_auth else None, title="政策解读助手 · 登录"))
    guard = GuardSettings(max_request_bytes=web.max_request_bytes,
                          max_upload_bytes=web.max_upload_files * (settings.index.max_file_bytes + 4096),
                          max_api_upload_bytes=settings.index.max_file_bytes + 65536,
                          allowed_origins=web.allowed_origins, upload_folder=get_upload_folder(),
                          max_upload_folder_bytes=web.max_upload_folder_bytes)
    throttle = LoginThrottle(web.login_max_failures, web.login_max_account_failures, web.login_window_s)
    app.add_middleware(Guard, mounts=mounts, settings=guard, throttle=throttle,
                       api_prefixes=tuple(door.path for door in doors))
    return app


def _doors(settings: Settings, assistant: Assistant) -> tuple[list[Any], Any]:
    """The routes of the doors for other systems (the JSON API at /api/v1, the OpenAI-compatible endpoint at /v1,
    MCP at /mcp), all behind the API keys, and the lifespan that runs MCP's session manager."""
    import contextlib

    from starlette.routing import Mount as Mounted
    from starlette.routing import Route

    from assistant.channels.api import build_api
    from assistant.channels.api_support import Access, Answering, Conversations
    from assistant.channels.keys import KeyStore, RateLimiter
    from assistant.channels.mcp import build_mcp, http_app
    from assistant.channels.openai_api import build_openai
    from assistant.channels.wechat.state import open_state

    api = settings.api
    access = Access(KeyStore(Path(settings.state_dir), api.keys), RateLimiter(api))
    answering = Answering(assistant, api)
    conversations = Conversations(open_state(settings.wechat, Path(settings.state_dir), "api"),
                                  settings.wechat.history_turns, api.conversation_ttl_s)
    mcp_endpoint, sessions = http_app(build_mcp(assistant, answering), access)

    @contextlib.asynccontextmanager
    async def lifespan(_: Any) -> Any:
        async with sessions.run():
            yield

    routes = [Mounted("/api/v1", build_api(assistant, access, answering, conversations)),
              Mounted("/v1", build_openai(access, answering, api)),
              Route("/mcp", mcp_endpoint, methods=["GET", "POST", "DELETE"])]
    return routes, lifespan


def _mount(app: Any, blocks: Any, path: str, sessions: int, **options: Any) -> Any:
    """Mount a Gradio app as launched apps are: Gradio checks that a file a client sends was uploaded by a
    user only once `has_launched` is set, which `launch()` does and `mount_gradio_app` does not. Without it,
    a file part naming /etc/passwd would be copied into Gradio's cache and served. Gradio keeps each browser
    session's state (about 40 KB, every API call being a session of its own) for the `sessions` most recent."""
    import gradio as gr

    from assistant.channels.web import css

    blocks.state_session_capacity = sessions
    mounted = gr.mount_gradio_app(app, blocks, path=path, css=css(), footer_links=[], show_error=False, **options)
    blocks.has_launched = True
    _without_deep_links(_gradio_app(mounted, path.rstrip("/")))
    return mounted


def _without_deep_links(gradio_app: Any) -> None:
    """Gradio's deep links are off: no page here has a share button, and its route wrote any session's state (an
    anonymous visitor's up to 1 MB of input) into the upload folder, filling the folder editors upload to. What
    earlier versions wrote there is deleted."""
    import shutil

    gradio_app.router.routes = [route for route in gradio_app.router.routes
                                if getattr(route, "path", "") != "/gradio_api/deep_link"]
    shutil.rmtree(Path(gradio_app.uploaded_file_dir) / "deep_links", ignore_errors=True)


def _gradio_app(app: Any, prefix: str) -> Any:
    """The Gradio app mounted at `prefix` (its session tokens say who is logged in)."""
    from starlette.routing import Mount as Mounted

    return next(route.app for route in app.routes if isinstance(route, Mounted) and route.path == prefix)


def _wechat(settings: Settings, assistant: Assistant) -> Any:
    """The /wechat router with its bot, state and customer-service client."""
    from assistant.channels.wechat.bot import WeChatBot
    from assistant.channels.wechat.customer_service import CustomerService
    from assistant.channels.wechat.endpoint import wechat_router
    from assistant.channels.wechat.state import open_state

    wechat = settings.wechat
    for name in ("encoding_aes_key", "previous_encoding_aes_key"):
        key = getattr(wechat, name).get_secret_value()
        if key and len(key) != 43:
            raise AssistantError(f"POLICY_ASSISTANT_WECHAT__{name.upper()} is {len(key)} characters, not 43",
                                 "copy the EncodingAESKey from the official account's server configuration")
    try:
        state = open_state(wechat, Path(settings.state_dir))
    except Exception as e:
        raise AssistantError(f"the WeChat state store ({wechat.state_backend}) cannot be opened: {e}",
                             "check POLICY_ASSISTANT_WECHAT__REDIS_URL or POLICY_ASSISTANT_STATE_DIR") from e
    bot = WeChatBot(assistant, wechat, state, CustomerService(wechat, state))
    resumed = bot.resume()
    log.info("WeChat endpoint at /wechat (state: %s%s)", wechat.state_backend,
             f", {resumed} deferred answers resumed" if resumed else "")
    return wechat_router(bot, wechat)


def warm_up(app: Any) -> None:
    """Route one request through every mounted app in-process, so that the first visitors do not wait for
    FastAPI to prepare its routes (it does so lazily, about 0.6 s on the first request into Gradio's API)."""
    from fastapi.testclient import TestClient

    client = TestClient(app)
    for prefix in ("", "/editors"):
        client.get(f"{prefix}/gradio_api/warm-up")  # a path no route serves: every route is prepared on the way

