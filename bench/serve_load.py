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
import os
import random
import statistics
import tempfile
import threading
import time
import urllib.request
from pathlib import Path

from serving import eval_questions, serving


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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


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
        pool = eval_questions()
        latencies: list[float] = []
        errors: list[str] = []
        lock = threading.Lock()

        def user(u: int) -> None:
            rng = random.Random(u)
            for i in range(args.questions):
                if args.think and i:
                    time.sleep(args.think * rng.uniform(0.5, 1.5))
                question = pool[(u * args.questions + i) % len(pool)]
                started = time.perf_counter()
                try:
                    ask(base, question)
                    with lock:
                        latencies.append(time.perf_counter() - started)
                except Exception as e:  # counted, not raised: the benchmark reports errors
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")

        cpu_before = cpu_seconds(server.pid)
        started = time.perf_counter()
        threads = [threading.Thread(target=user, args=(u,)) for u in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
        server_cpu = cpu_seconds(server.pid) - cpu_before
    latencies.sort()
    result = {
        "users": args.users, "think_s": args.think, "questions": len(latencies) + len(errors), "errors": len(errors),
        "p50_ms": round(statistics.median(latencies) * 1000),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000),
        "max_ms": round(latencies[-1] * 1000), "answers_per_s": round(len(latencies) / wall, 1),
        "server_cpu_ms_per_answer": round(server_cpu * 1000 / max(1, len(latencies)), 1),
    }
    print(f"{args.users} users (think {args.think} s), {result['questions']} questions: p50 {result['p50_ms']} ms, "
          f"p95 {result['p95_ms']} ms, max {result['max_ms']} ms, {result['answers_per_s']} answers/s, "
          f"{len(errors)} errors; server CPU {result['server_cpu_ms_per_answer']} ms per answer")
    for error in errors[:5]:
        print("  error:", error)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
