"""Benchmark: the server's memory under a steady chat load — it must level off, not grow with every request.

    python bench/memory_soak.py [--requests 5000] [--users 4] [--index-dir DIR]

Starts `policy-assistant serve` on loopback (indexing the demo corpus into a temporary directory unless
--index-dir is given) and asks the eval questions through the web chat's HTTP API, each request from a new
browser session as anonymous visitors do, `--users` at a time. Every `--every` requests it samples the server's
resident memory (VmRSS). Prints the curve and the growth over the second half in MB per 1,000 requests; writes
JSON with --json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

from serve_load import ask
from serving import eval_questions, serving


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmRSS")


def slope_per_1000(points: list[tuple[int, float]]) -> float:
    """Least-squares growth of memory, MB per 1,000 requests."""
    xs, ys = [p[0] for p in points], [p[1] for p in points]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    return 1000 * sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sxx if sxx else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=5000)
    parser.add_argument("--users", type=int, default=4)
    parser.add_argument("--every", type=int, default=250, help="sample memory every N requests")
    parser.add_argument("--index-dir", type=Path)
    parser.add_argument("--json", type=Path, help="write the curve and summary here")
    args = parser.parse_args()

    index_dir = args.index_dir or Path(tempfile.mkdtemp()) / "index"
    with serving({"POLICY_ASSISTANT_INDEX_DIR": str(index_dir)}) as (server, base):
        questions = eval_questions()
        counter = iter(range(args.requests))
        lock = threading.Lock()
        done = 0
        errors = 0
        curve = [(0, rss_mb(server.pid))]
        started = time.monotonic()

        def user() -> None:
            nonlocal done, errors
            while True:
                with lock:
                    n = next(counter, None)
                if n is None:
                    return
                try:
                    ask(base, questions[n % len(questions)])
                except Exception:  # counted: a soak reports errors, it does not stop on them
                    with lock:
                        errors += 1
                with lock:
                    done += 1
                    if done % args.every == 0:
                        curve.append((done, rss_mb(server.pid)))
                        print(f"{done:>6} requests  {curve[-1][1]:8.1f} MB  ({time.monotonic() - started:.0f} s)",
                              flush=True)

        threads = [threading.Thread(target=user) for _ in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        second_half = [p for p in curve if p[0] >= args.requests // 2]
        summary = {"requests": args.requests, "users": args.users, "errors": errors,
                   "rss_start_mb": round(curve[0][1], 1), "rss_end_mb": round(curve[-1][1], 1),
                   "growth_second_half_mb_per_1000": round(slope_per_1000(second_half), 2),
                   "growth_overall_mb_per_1000": round(slope_per_1000(curve[1:]), 2),
                   "seconds": round(time.monotonic() - started, 1), "curve": curve}
    print(json.dumps({k: v for k, v in summary.items() if k != "curve"}, indent=2))
    if args.json:
        args.json.write_text(json.dumps(summary, indent=2))


if __name__ == "__main__":
    main()
