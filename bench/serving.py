"""What the server benchmarks share: the eval questions, and `policy-assistant serve` started on loopback."""

from __future__ import annotations

import json
import os
import random
import socket
import statistics
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
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


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (Linux)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load(ask: Callable[[str], object], server_pid: int, users: int, questions: int, think: float) -> dict[str, float]:
    """`users` threads each asking `questions` eval questions one after another (with `think` seconds of reading
    between them on average, uniform 0.5x-1.5x; 0: back to back): latency p50/p95/max, answers/s, errors and the
    server's CPU per answer. An exception of `ask` is counted as an error."""
    pool = eval_questions()
    latencies: list[float] = []
    errors: list[str] = []
    lock = threading.Lock()

    def user(u: int) -> None:
        rng = random.Random(u)
        for i in range(questions):
            if think and i:
                time.sleep(think * rng.uniform(0.5, 1.5))
            question = pool[(u * questions + i) % len(pool)]
            started = time.perf_counter()
            try:
                ask(question)
                with lock:
                    latencies.append(time.perf_counter() - started)
            except Exception as e:  # counted, not raised: the benchmark reports errors
                with lock:
                    errors.append(f"{type(e).__name__}: {e}")

    cpu_before = cpu_seconds(server_pid)
    started = time.perf_counter()
    threads = [threading.Thread(target=user, args=(u,)) for u in range(users)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - started
    server_cpu = cpu_seconds(server_pid) - cpu_before
    latencies.sort()
    result = {
        "users": users, "think_s": think, "questions": len(latencies) + len(errors), "errors": len(errors),
        "p50_ms": round(statistics.median(latencies) * 1000),
        "p95_ms": round(latencies[int(0.95 * (len(latencies) - 1))] * 1000),
        "max_ms": round(latencies[-1] * 1000), "answers_per_s": round(len(latencies) / wall, 1),
        "server_cpu_ms_per_answer": round(server_cpu * 1000 / max(1, len(latencies)), 1),
    }
    print(f"{users} users (think {think} s), {result['questions']} questions: p50 {result['p50_ms']} ms, "
          f"p95 {result['p95_ms']} ms, max {result['max_ms']} ms, {result['answers_per_s']} answers/s, "
          f"{len(errors)} errors; server CPU {result['server_cpu_ms_per_answer']} ms per answer")
    for error in errors[:5]:
        print("  error:", error)
    print(json.dumps(result))
    return result
