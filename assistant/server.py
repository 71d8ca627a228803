"""One ASGI app: the Gradio UI at `/`, `/healthz` for monitoring (and, later, WeChat at `/wechat`)."""

from __future__ import annotations

import logging
from typing import Any

from assistant.config import Settings
from assistant.errors import AssistantError
from assistant.service import Assistant

log = logging.getLogger(__name__)


def create_app(settings: Settings, assistant: Assistant | None = None) -> Any:
    """The FastAPI app serving `assistant` (built from `settings` when not given)."""
    import gradio as gr
    from fastapi import FastAPI
    from fastapi.responses import JSONResponse

    from assistant.channels.web import build_ui, css

    assistant = assistant or Assistant(settings)
    app = FastAPI(title="policy-assistant", docs_url=None, redoc_url=None)

    @app.get("/healthz")
    def healthz() -> Any:
        """The generation being served, with its document and clause counts and model."""
        try:
            manifest = assistant.manifest()
        except AssistantError as e:
            return JSONResponse({"status": "unavailable", "reason": e.message}, status_code=503)
        return {"status": "ok", "generation": manifest.generation, "documents": manifest.documents,
                "clauses": manifest.clauses, "model": manifest.model, "built_at": manifest.built_at}

    return gr.mount_gradio_app(app, build_ui(assistant), path="/", css=css(), footer_links=[])
