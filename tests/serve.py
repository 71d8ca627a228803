"""`policy-assistant serve` started as a user starts it, in a subprocess on a loopback port."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.net import free_port

ROOT = Path(__file__).resolve().parents[1]


def get_json(url: str, timeout: float = 30) -> tuple[int, dict]:  # type: ignore[type-arg]
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as e:
        return e.code, json.loads(e.read())


@contextmanager
def serving(env: dict[str, str], cwd: Path = ROOT, timeout_s: float = 300,
            log: Path | None = None) -> Iterator[tuple[str, subprocess.Popen]]:  # type: ignore[type-arg]
    """(base URL, process) once /healthz answers; stopped on exit. stderr is captured: read it after the block
    through the process (its `stderr_text` attribute). With `log`, stdout and stderr both go to that file instead,
    as in `policy-assistant serve > log 2>&1`."""
    port = free_port()
    output = open(log, "w", encoding="utf-8") if log else None  # noqa: SIM115 (closed after the server stops)
    server = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", str(port)],
                              env={**os.environ, **env}, stdout=output or subprocess.DEVNULL,
                              stderr=subprocess.STDOUT if output else subprocess.PIPE, text=True, cwd=cwd)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout_s
        while True:
            assert server.poll() is None, server.communicate()
            try:
                get_json(f"{base}/healthz", timeout=5)
                break
            except OSError:
                assert time.monotonic() < deadline, "serve did not come up"
                time.sleep(0.5)
        yield base, server
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=60)
        if output is not None:
            output.close()
            stderr = Path(output.name).read_text(encoding="utf-8")
        server.stderr_text = stderr  # type: ignore[attr-defined]


@contextmanager
def serving_app(app: object) -> Iterator[str]:
    """An ASGI app (from `create_app`) served by uvicorn in a thread on a loopback port: its base URL; stopped on
    exit."""
    import threading

    import uvicorn

    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))  # type: ignore[arg-type]
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        while not server.started:
            assert thread.is_alive(), "uvicorn did not start"
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def own_corpus(root: Path, embedder: object, source: Path) -> tuple[Path, dict[str, str]]:
    """A copy of the corpus at `source` (a folder, or one file) under `root`, indexed into root/index: the corpus
    folder and the environment that points `serve` at them (index, state, corpus)."""
    import shutil

    from assistant.index.build import build_index

    corpus = root / "corpus"
    if source.is_dir():
        shutil.copytree(source, corpus)
    else:
        corpus.mkdir()
        shutil.copy(source, corpus / source.name)
    build_index([corpus], root / "index", embedder)  # type: ignore[arg-type]
    return corpus, {"POLICY_ASSISTANT_INDEX_DIR": str(root / "index"),
                    "POLICY_ASSISTANT_STATE_DIR": str(root / "state"), "POLICY_ASSISTANT_CORPUS_DIR": str(corpus)}
