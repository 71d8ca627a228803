"""What the server benchmarks share: the eval questions, and `policy-assistant serve` started on loopback."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def eval_questions() -> list[str]:
    """The questions of eval/seed_dev.jsonl and eval/extra_dev.jsonl, in order."""
    rows = [json.loads(line) for f in ("seed_dev.jsonl", "extra_dev.jsonl")
            for line in (REPO / "eval" / f).read_text(encoding="utf-8").splitlines() if line.strip()]
    return [r["question"] for r in rows]


@contextmanager
def serving(env: dict[str, str]) -> Iterator[tuple[subprocess.Popen[bytes], str]]:
    """`policy-assistant serve` on a free loopback port with `env` added: (process, base URL) once /healthz
    answers (indexing the demo corpus first if the index is empty); stopped on exit."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "assistant", "serve", "--port", str(port)],
                              env={**os.environ, **env}, cwd=REPO,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 600
        while True:
            try:
                urllib.request.urlopen(f"{base}/healthz", timeout=5).read()
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    sys.exit("the server did not start")
                time.sleep(1)
        yield server, base
    finally:
        server.terminate()
        server.wait(timeout=60)
