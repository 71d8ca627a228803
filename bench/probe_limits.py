"""Probe checks: the server, the chat queue and anonymous writes are bounded."""

from __future__ import annotations

import json
import os
import socket
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from probe_kit import Result, check

QUESTION = "政务公开考核分值是多少？"
MB = 1_000_000


# what the probe can see of a server on this machine: its process (by its listening port), RSS and folders ---------
def _server_pid(base: str) -> int | None:
    """The process listening on `base`'s port, when it runs on this machine as this user."""
    port = urlsplit(base).port or 80
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        try:
            lines = Path(table).read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            fields = line.split()
            if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                inodes.add(fields[9])
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
                if link.startswith("socket:[") and link[8:-1] in inodes:
                    return int(pid)
        except OSError:
            continue
    return None


def _rss_mb(pid: int | None) -> float | None:
    if pid is None:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1000
    except OSError:
        return None
    return None


def _server_path(pid: int | None, variable: str, default: str) -> Path | None:
    """A folder the server uses, from its environment (relative paths from its working directory)."""
    if pid is None:
        return None
    try:
        environ = dict(item.split("=", 1) for item in
                       Path(f"/proc/{pid}/environ").read_text().split("\0") if "=" in item)
        cwd = Path(os.readlink(f"/proc/{pid}/cwd"))
    except OSError:
        return None
    return cwd / environ.get(variable, default)


def _size(folder: Path | None) -> int:
    if folder is None or not folder.exists():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())


def _growth(before: float | None, after: float | None) -> str:
    return "RSS not measured (server not local)" if before is None or after is None else \
        f"RSS +{after - before:.0f} MB"


# calls as anonymous browser sessions make them ---------------------------------------------------------------------
def _client(address: str = "") -> httpx.Client:
    """A client whose connections come from `address` (another loopback address is another client)."""
    transport = httpx.HTTPTransport(local_address=address) if address else None
    return httpx.Client(transport=transport, timeout=60)


def _other_addresses(base: str, count: int) -> list[str]:
    host = urlsplit(base).hostname or ""
    return [f"127.0.0.{n}" for n in range(2, 2 + count)] if host.startswith("127.") else [""] * count


def _fn_index(client: httpx.Client, base: str, api_name: str) -> int:
    config = client.get(f"{base}/config").json()
    return next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name)


def _join(client: httpx.Client, base: str, fn_index: int, data: list[Any], session: str) -> httpx.Response:
    return client.post(f"{base}/gradio_api/queue/join",
                       json={"data": data, "fn_index": fn_index, "session_hash": session, "event_data": None,
                             "trigger_id": None})


def _in_session(client: httpx.Client, base: str, fn_index: int, data: list[Any],
                session: str) -> tuple[str, Any]:
    """One event in a browser session (its state kept): ('complete' | 'error' | 'http N: detail', output)."""
    joined = _join(client, base, fn_index, data, session)
    if joined.status_code != 200:
        return f"http {joined.status_code}", joined.text[:200]
    event_id = joined.json()["event_id"]
    with client.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            if not line.startswith("data:"):
                continue
            message = json.loads(line[5:])
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                output = message.get("output", {})
                return ("complete" if message.get("success") else "error"), output.get("data", output)
    return "unknown", None


# 26.4 headers and slow clients ---------------------------------------------------------------------------------------
def _send_head(base: str, head: bytes, pad: int = 0, finish: bool = True) -> tuple[str, int, socket.socket]:
    """Send a request head (with `pad` bytes of one header's value) as fast as the server takes it: (status line or
    'closed', bytes sent, the socket)."""
    parts = urlsplit(base)
    sock = socket.create_connection((parts.hostname, parts.port or 80), timeout=30)
    sent = 0
    try:
        sock.sendall(head)
        sent += len(head)
        if pad:
            sock.sendall(b"X-Pad: ")
            chunk = b"a" * MB
            while sent < pad:
                sock.sendall(chunk)
                sent += len(chunk)
        if finish:
            sock.sendall(b"\r\n\r\n")
    except OSError:
        pass
    if not finish:
        return "open", sent, sock
    try:
        first = sock.recv(200).split(b"\r\n", 1)[0].decode("latin-1")
    except OSError:
        first = ""
    return (first or "closed"), sent, sock


@check("26.4", "request headers are bounded in size and count")
def large_headers(base: str, **_: Any) -> Result:
    host = f"Host: {urlsplit(base).netloc}\r\n".encode()
    started = time.monotonic()
    status, sent, sock = _send_head(base, b"GET /healthz HTTP/1.1\r\n" + host, pad=100 * MB)
    sock.close()
    big = f"100 MB header: {status} after {sent / MB:.1f} MB sent, {time.monotonic() - started:.1f} s"
    many = b"".join(f"X-Header-{n}: v\r\n".encode() for n in range(1000))
    count_status, _, sock = _send_head(base, b"GET /healthz HTTP/1.1\r\n" + host + many[:-2])
    sock.close()
    pid = _server_pid(base)
    before = _rss_mb(pid)
    held_open = [_send_head(base, b"GET /healthz HTTP/1.1\r\n" + host, pad=50 * MB, finish=False)
                 for _ in range(10)]
    after = _rss_mb(pid)
    for _, _, sock in held_open:
        sock.close()
    unfinished = f"ten unfinished 50 MB headers: {sum(s for _, s, _ in held_open) / MB:.0f} MB taken, " \
                 f"{_growth(before, after)}"
    grew = (after - before) if before is not None and after is not None else 0
    held = " 200" not in status and " 200" not in count_status and grew < 50
    return held, f"{big}; 1,000 headers: {count_status}; {unfinished}"


def _closed_within(sock: socket.socket, limit_s: float, trickle: bytes = b"") -> float | None:
    """Seconds until the server closes the connection (a byte of `trickle` sent every second meanwhile)."""
    started = time.monotonic()
    sock.settimeout(1)
    while time.monotonic() - started < limit_s:
        try:
            if trickle:
                sock.sendall(trickle)
            if sock.recv(4096) == b"":
                return time.monotonic() - started
        except TimeoutError:
            continue
        except OSError:
            return time.monotonic() - started
        while True:  # a response (408) came: wait for the close after it
            try:
                if sock.recv(4096) == b"":
                    return time.monotonic() - started
            except TimeoutError:
                break
            except OSError:
                return time.monotonic() - started
    return None


@check("26.4", "slow clients are timed out (headers and body)")
def slow_clients(base: str, **_: Any) -> Result:
    parts = urlsplit(base)
    host = f"Host: {parts.netloc}\r\n".encode()
    results: dict[str, float | None] = {}

    def slow_headers() -> None:  # one header byte a second, never finishing (slowloris)
        sock = socket.create_connection((parts.hostname, parts.port or 80))
        sock.sendall(b"GET /healthz HTTP/1.1\r\n" + host + b"X-Slow: ")
        results["headers"] = _closed_within(sock, 40, trickle=b"a")
        sock.close()

    def slow_body() -> None:  # a body that stops after 10 of its 1,000 bytes
        sock = socket.create_connection((parts.hostname, parts.port or 80))
        sock.sendall(b"POST /gradio_api/queue/join HTTP/1.1\r\n" + host +
                     b"Content-Type: application/json\r\nContent-Length: 1000\r\n\r\n" + b'{"data": [')
        results["body"] = _closed_within(sock, 60)
        sock.close()

    threads = [threading.Thread(target=slow_headers), threading.Thread(target=slow_body)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    seen = "; ".join(f"slow {what}: " + (f"closed after {s:.1f} s" if s is not None else
                                         f"still open after {40 if what == 'headers' else 60} s")
                     for what, s in sorted(results.items()))
    return all(s is not None for s in results.values()), seen


# 26.5 the chat queue -------------------------------------------------------------------------------------------------
@check("26.5", "a normal question is answered promptly after 1,000 anonymous queue joins")
def queue_flood(base: str, **_: Any) -> Result:
    addresses = _other_addresses(base, 10)
    clients = [_client(address) for address in addresses]
    fn_index = _fn_index(clients[0], base, "ask")
    statuses: dict[int, int] = {}
    refusal = ""

    def join(n: int) -> None:
        nonlocal refusal
        response = _join(clients[n % len(clients)], base, fn_index, [QUESTION, [], None], uuid.uuid4().hex[:11])
        statuses[response.status_code] = statuses.get(response.status_code, 0) + 1
        if response.status_code != 200:
            refusal = refusal or response.text[:120]

    started = time.monotonic()
    with ThreadPoolExecutor(8) as pool:
        list(pool.map(join, range(1000)))
    flood_s = time.monotonic() - started
    normal = _client()
    started = time.monotonic()
    event, data = _in_session(normal, base, fn_index, [QUESTION, [], None], uuid.uuid4().hex[:11])
    wait = time.monotonic() - started
    accepted = statuses.get(200, 0)
    seen = (f"1,000 joins from {len(set(addresses))} addresses in {flood_s:.1f} s: {accepted} queued, "
            f"{1000 - accepted} refused ({refusal}); a normal question then: {event} in {wait:.1f} s")
    return event == "complete" and wait <= 2.0, seen


# 26.6 anonymous writes -----------------------------------------------------------------------------------------------
def _comment(size: int) -> str:
    """About `size` bytes of UTF-8, different each time (identical session states would share one deep link)."""
    return uuid.uuid4().hex + "评" * (size // 3)


@check("26.6", "deep links write no session state to the upload folder")
def deep_link_flood(base: str, **_: Any) -> Result:
    pid = _server_pid(base)
    folder = _server_path(pid, "GRADIO_TEMP_DIR", str(Path(tempfile.gettempdir()) / "gradio"))
    before = _size(folder)
    client = _client()
    fn_index = _fn_index(client, base, "rate_up")
    links, statuses = 0, set()
    started = time.monotonic()
    for _ in range(100):
        session = uuid.uuid4().hex[:11]
        _in_session(client, base, fn_index, [_comment(900_000), None], session)
        got = client.get(f"{base}/gradio_api/deep_link", params={"session_hash": session})
        statuses.add(got.status_code)
        links += got.status_code == 200 and len(got.text.strip('"')) > 0
    grew = _size(folder) - before
    where = f"upload folder +{grew / MB:.1f} MB" if folder else "upload folder not measured (server not local)"
    seen = (f"100 sessions with 0.9 MB comments, then /gradio_api/deep_link: {links} links written, HTTP "
            f"{sorted(statuses)}, {where} in {time.monotonic() - started:.1f} s")
    return links == 0 and grew < MB, seen


@check("26.6", "feedback comments are capped and rate-limited per client")
def comment_flood(base: str, **_: Any) -> Result:
    pid = _server_pid(base)
    state = _server_path(pid, "POLICY_ASSISTANT_STATE_DIR", "state")
    store = state / "feedback.sqlite3" if state else None
    before = store.stat().st_size if store and store.exists() else 0
    client = _client()
    session = uuid.uuid4().hex[:11]
    asked, _ = _in_session(client, base, _fn_index(client, base, "ask"), [QUESTION, [], None], session)
    rate = _fn_index(client, base, "rate_up")
    recorded, refused, last = 0, 0, ""
    started = time.monotonic()
    for n in range(40):
        event, data = _in_session(client, base, rate, [_comment(900_000 if n % 2 else 300), None], session)
        ok = event == "complete" and isinstance(data, list) and "已记录" in str(data[0])
        recorded += ok
        refused += not ok
        last = last if ok else str(data)[:80]
    took = time.monotonic() - started
    grew = (store.stat().st_size - before) if store and store.exists() else None
    size = f"feedback.sqlite3 +{grew / MB:.1f} MB" if grew is not None else "feedback.sqlite3 not measured"
    seen = (f"{asked}; 40 ratings (20 with 0.9 MB comments) in {took:.1f} s: {recorded} recorded, {refused} refused "
            f"({last}); {size}")
    return grew is not None and grew < MB and refused >= 20, seen


@check("26.6", "each anonymous session's state is capped")
def session_flood(base: str, **_: Any) -> Result:
    """1,000 sessions each sent a 0.9 MB comment, then 1,000 more each a comment of 30,000 characters (under the
    default bound on what one event may send: kept by the session, though the rating itself is refused)."""
    pid = _server_pid(base)
    clients = [_client(address) for address in _other_addresses(base, 8)]  # eight clients, each event awaited
    fn_index = _fn_index(clients[0], base, "rate_up")
    seen, grown = [], []
    for size in (900_000, 90_000):
        before = _rss_mb(pid)
        statuses: dict[str, int] = {}

        def session(n: int, size: int = size, statuses: dict[str, int] = statuses) -> None:
            event, _ = _in_session(clients[n % 8], base, fn_index, [_comment(size), None], uuid.uuid4().hex[:11])
            statuses[event] = statuses.get(event, 0) + 1

        started = time.monotonic()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(session, range(1000)))
        after = _rss_mb(pid)
        grown.append((after - before) if before is not None and after is not None else None)
        seen.append(f"1,000 sessions sent a {size // 3:,}-character comment in {time.monotonic() - started:.1f} s "
                    f"({dict(sorted(statuses.items()))}): {_growth(before, after)}")
    return all(g is not None and g < 100 for g in grown), "; ".join(seen)
