"""What the security probe's checks share: the registry of checks, and calls made as a browser's Gradio client,
an uploader and a logged-in editor make them. `probe.py` runs the checks; each `probe_*.py` module adds its own."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any

import httpx

Result = tuple[bool, str]  # (held, what was seen)
CHECKS: list[tuple[str, str, Callable[..., Result]]] = []


def check(number: str, name: str) -> Callable[[Callable[..., Result]], Callable[..., Result]]:
    def register(fn: Callable[..., Result]) -> Callable[..., Result]:
        CHECKS.append((number, name, fn))
        return fn
    return register


def call(client: httpx.Client, base: str, endpoint: str, data: list[Any], timeout: float = 120) -> tuple[str, Any]:
    """A Gradio endpoint called as its JS client does: ('complete' | 'error' | 'http <code>', data). Inputs not
    given are filled with empty values (the form fields of the editors' page)."""
    info = client.get(f"{base}/gradio_api/info", timeout=timeout)
    if info.status_code == 200 and f"/{endpoint}" in info.json().get("named_endpoints", {}):
        parameters = info.json()["named_endpoints"][f"/{endpoint}"]["parameters"]
        data = data + [False if p.get("component") == "Checkbox" else "" for p in parameters[len(data):]]
    started = client.post(f"{base}/gradio_api/call/{endpoint}", json={"data": data}, timeout=timeout)
    if started.status_code != 200:
        return f"http {started.status_code}", started.text[:200]
    event_id = started.json()["event_id"]
    stream = client.get(f"{base}/gradio_api/call/{endpoint}/{event_id}", timeout=timeout).text
    for event in ("complete", "error"):
        if f"event: {event}" in stream:
            payload = stream.split(f"event: {event}", 1)[1].split("data:", 1)[1].strip().splitlines()[0]
            return event, json.loads(payload)
    return "unknown", stream[:200]


def upload(client: httpx.Client, base: str, name: str, content: bytes) -> tuple[int, Any]:
    response = client.post(f"{base}/gradio_api/upload", files={"files": (name, content)}, timeout=120)
    return response.status_code, (response.json() if response.status_code == 200 else response.text[:200])


def file_data(path: str, name: str = "") -> dict[str, Any]:
    return {"path": path, "orig_name": name or path.rsplit("/", 1)[-1], "meta": {"_type": "gradio.FileData"}}


def urls_in(data: Any) -> list[str]:
    """Every `url` field inside a Gradio payload."""
    found: list[str] = []
    if isinstance(data, dict):
        if isinstance(data.get("url"), str):
            found.append(data["url"])
        for value in data.values():
            found += urls_in(value)
    elif isinstance(data, list):
        for value in data:
            found += urls_in(value)
    return found


POLICY = "探测用文件\n\n第一条　本条用于安全探测。\n\n第二条　本条也用于安全探测。\n"


def login(base: str, credentials: str) -> httpx.Client:
    username, _, password = credentials.partition(":")
    client = httpx.Client()
    response = client.post(f"{base}/editors/login", data={"username": username, "password": password})
    if response.status_code != 200:
        sys.exit(f"editor login failed: {response.status_code} {response.text[:100]}")
    return client
