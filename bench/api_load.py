"""Benchmark: concurrent clients of the JSON API (or the OpenAI-compatible endpoint) against `policy-assistant serve`.

    python bench/api_load.py [--clients 20] [--questions 10] [--think 0] [--door api|openai] [--index-dir DIR]

Starts the server with one API key (rate limit out of the way), indexing the demo corpus into a temporary directory
unless --index-dir is given. Each client asks its questions one after another, `POST /api/v1/ask` (or
`POST /v1/chat/completions`), with `--think` seconds between them (0: back to back, the saturation case). A reply
other than 200 with a cited or refused answer is an error. Reports latency p50/p95/max, answers/s and errors.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import tempfile
from pathlib import Path

import httpx
from serving import load, serving

KEY = "pa-bench-key"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--questions", type=int, default=10, help="questions per client")
    parser.add_argument("--think", type=float, default=0.0, help="mean seconds between a client's questions")
    parser.add_argument("--door", choices=("api", "openai"), default="api")
    parser.add_argument("--index-dir", type=Path)
    args = parser.parse_args()

    index_dir = args.index_dir or Path(tempfile.mkdtemp()) / "index"
    keys = [{"name": "bench", "scope": "ask", "sha256": hashlib.sha256(KEY.encode()).hexdigest(),
             "rate_limit_per_minute": 1_000_000}]
    env = {"POLICY_ASSISTANT_INDEX_DIR": str(index_dir), "POLICY_ASSISTANT_API__KEYS": json.dumps(keys),
           "POLICY_ASSISTANT_STATE_DIR": tempfile.mkdtemp()}
    with serving(env) as (server, base):
        client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {KEY}"}, timeout=60,
                              limits=httpx.Limits(max_connections=args.clients + 5))

        def ask(question: str) -> None:
            if args.door == "api":
                response = client.post("/api/v1/ask", json={"question": question})
            else:
                response = client.post("/v1/chat/completions", json={
                    "model": "policy-assistant", "messages": [{"role": "user", "content": question}]})
            response.raise_for_status()
            data = response.json()
            if not (data.get("citations") or data.get("refused")):
                raise RuntimeError(f"no answer: {response.text[:200]}")

        load(ask, server.pid, args.clients, args.questions, args.think)


if __name__ == "__main__":
    main()
