"""Benchmark: simulated WeChat users against `policy-assistant serve` on loopback, with re-deliveries.

    python bench/wechat_load.py [--users 50] [--messages 10] [--duplicates 0.2] [--think 1.0] [--index-dir DIR]

Starts `serve` with a WeChat token (safe mode, AES), indexing the demo corpus into a temporary directory
unless --index-dir is given. Each user sends its messages one after another through the simulated platform
of tests/wechat_platform.py, which behaves as WeChat does (waits 5 s, delivers again, three times in all);
a share of messages (--duplicates) is also delivered a second time at once, as WeChat does when a network
hiccup repeats a push. Checks that every message got exactly one reply with content (none lost, none twice)
and reports the reply time from the first delivery (p50/p95/p99/max), as text and JSON.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the simulated platform lives in tests/

from serving import eval_questions, serving  # noqa: E402

from tests.wechat_platform import AES_KEY, APP_ID, TOKEN, Platform, text_xml  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--messages", type=int, default=10, help="messages per user")
    parser.add_argument("--duplicates", type=float, default=0.2, help="share of messages pushed twice at once")
    parser.add_argument("--think", type=float, default=1.0, help="mean seconds between a user's messages")
    parser.add_argument("--index-dir", type=Path)
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp())
    env = {"POLICY_ASSISTANT_INDEX_DIR": str(args.index_dir or work / "index"),
           "POLICY_ASSISTANT_STATE_DIR": str(work / "state"), "POLICY_ASSISTANT_WECHAT__TOKEN": TOKEN,
           "POLICY_ASSISTANT_WECHAT__APP_ID": APP_ID, "POLICY_ASSISTANT_WECHAT__ENCODING_AES_KEY": AES_KEY}
    with serving(env) as (_, base):
        pool = eval_questions()
        lock = threading.Lock()
        times: list[float] = []
        problems: list[str] = []
        counts = {"messages": 0, "deliveries": 0, "duplicates": 0, "deferred": 0}
        next_id = [int(time.time() * 1000)]

        def user(u: int) -> None:
            rng = random.Random(u)
            platform = Platform(f"{base}/wechat", "safe", timeout_s=5.0)
            for i in range(args.messages):
                if i and args.think:
                    time.sleep(args.think * rng.uniform(0.5, 1.5))
                with lock:
                    next_id[0] += 1
                    mid = next_id[0]
                xml = text_xml(f"bench-user-{u}", pool[(u * args.messages + i) % len(pool)], mid)
                started = time.perf_counter()
                extra: list[tuple[int, str, float]] = []
                twin = None
                if rng.random() < args.duplicates:
                    def push_twin(x: str = xml, out: list[tuple[int, str, float]] = extra) -> None:
                        status, body = platform.push(x)
                        out.append((status, body, time.perf_counter()))
                    twin = threading.Thread(target=push_twin)
                    twin.start()
                result = platform.deliver(xml)
                replies = [(result.reply, time.perf_counter())]
                if twin:
                    twin.join()
                replies += [(platform.content(body), at) for status, body, at in extra if status == 200]
                with_content = [s for s, _ in replies if s]
                elapsed = min((at for s, at in replies if s), default=time.perf_counter()) - started
                with lock:
                    counts["messages"] += 1
                    counts["deliveries"] += len(result.outcomes) + len(extra)
                    counts["duplicates"] += bool(twin)
                    if len(with_content) != 1:
                        problems.append(f"message {mid}: {len(with_content)} replies with content {result.outcomes}")
                    elif "正在查询中" in with_content[0]:
                        counts["deferred"] += 1
                    else:
                        times.append(elapsed)

        started = time.perf_counter()
        threads = [threading.Thread(target=user, args=(u,)) for u in range(args.users)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - started
    times.sort()

    def pct(p: float) -> int:
        return round(times[min(len(times) - 1, int(p * (len(times) - 1)))] * 1000) if times else -1

    result = {"users": args.users, **counts, "answered_in_time": len(times), "problems": len(problems),
              "p50_ms": round(statistics.median(times) * 1000) if times else -1, "p95_ms": pct(0.95),
              "p99_ms": pct(0.99), "max_ms": round(times[-1] * 1000) if times else -1, "wall_s": round(wall, 1)}
    print(f"{args.users} users, {counts['messages']} messages ({counts['duplicates']} pushed twice, "
          f"{counts['deliveries']} deliveries): {len(times)} answered in time, {counts['deferred']} deferred, "
          f"{len(problems)} lost or duplicated; reply p50 {result['p50_ms']} ms, p95 {result['p95_ms']} ms, "
          f"p99 {result['p99_ms']} ms, max {result['max_ms']} ms")
    for problem in problems[:10]:
        print("  ", problem)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
