"""Gradio's HTTP API called as its JavaScript client calls it: endpoints, uploads and the login form."""

from __future__ import annotations

import http.cookiejar
import json
import urllib.error
import urllib.parse
import urllib.request
from typing import Any


def call(base: str, endpoint: str, data: list, opener: Any = None) -> tuple[str, Any]:  # type: ignore[type-arg]
    """Call a Gradio endpoint over HTTP as the browser's client does: ('complete' | 'error', its data)."""
    open_url = (opener or urllib.request.build_opener()).open
    request = urllib.request.Request(f"{base}/gradio_api/call/{endpoint}", data=json.dumps({"data": data}).encode(),
                                     headers={"Content-Type": "application/json"})
    with open_url(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with open_url(f"{base}/gradio_api/call/{endpoint}/{event_id}", timeout=300) as response:
        stream = response.read().decode()
    for event in ("complete", "error"):
        if f"event: {event}" in stream:
            payload = stream.split(f"event: {event}", 1)[1].split("data:", 1)[1].strip().splitlines()[0]
            return event, json.loads(payload)
    raise AssertionError(stream)



def ask(base: str, question: str, history: list | None = None) -> list:  # type: ignore[type-arg]
    event, data = call(base, "ask", [question, history or []])
    assert event == "complete", data
    return list(data)


def login(base: str, password: str) -> tuple[int, Any]:
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    form = urllib.parse.urlencode({"username": "editor", "password": password}).encode()
    try:
        with opener.open(f"{base}/editors/login", data=form, timeout=30) as response:
            return response.status, opener
    except urllib.error.HTTPError as e:
        return e.code, None


def upload(base: str, opener: Any, name: str, content: bytes) -> dict[str, Any]:
    boundary = "----policyassistant"
    body = (f"--{boundary}\r\nContent-Disposition: form-data; name=\"files\"; filename=\"{name}\"\r\n"
            f"Content-Type: application/octet-stream\r\n\r\n").encode() + content + f"\r\n--{boundary}--\r\n".encode()
    request = urllib.request.Request(f"{base}/editors/gradio_api/upload", data=body,
                                     headers={"Content-Type": f"multipart/form-data; boundary={boundary}"})
    with opener.open(request, timeout=60) as response:
        path = json.loads(response.read())[0]
    return {"path": path, "orig_name": name, "meta": {"_type": "gradio.FileData"}}
