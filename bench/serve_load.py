"""Benchmark: concurrent chat users against `policy-assistant serve` on loopback.

    python bench/serve_load.py [--users 20] [--questions 10] [--index-dir DIR]

Starts the server (indexing the demo corpus into a temporary directory unless --index-dir is given),
then each simulated user asks its questions one after another through the same HTTP API the web page
uses (Gradio's /gradio_api/call/ask), with `--think` seconds of reading between them (0: back to back,
the saturation case). Reports answer latency p50/p95/max, answers/s and errors, as text and JSON.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import urllib.request
from pathlib import Path

from serving import load, serving


def ask(base: str, question: str) -> str:
    body = json.dumps({"data": [question, []]}).encode()
    request = urllib.request.Request(f"{base}/gradio_api/call/ask", data=body,
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as response:
        event_id = json.loads(response.read())["event_id"]
    with urllib.request.urlopen(f"{base}/gradio_api/call/ask/{event_id}", timeout=60) as response:
        stream = response.read().decode()
    if "event: complete" not in stream:
        raise RuntimeError(stream[:200])
    return stream


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10, help="questions per user")
    parser.add_argument("--think", type=float, default=0.0,
                        help="mean seconds a user reads an answer before asking again (uniform 0.5x-1.5x); 0: none")
    parser.add_argument("--index-dir", type=Path)
    args = parser.parse_args()

    index_dir = args.index_dir or Path(tempfile.mkdtemp()) / "index"
    with serving({"POLICY_ASSISTANT_INDEX_DIR": str(index_dir)}) as (server, base):
        load(lambda question: ask(base, question), server.pid, args.users, args.questions, args.think)


if __name__ == "__main__":
    main()
