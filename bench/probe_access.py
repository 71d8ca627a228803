"""Probe checks: logins, exports, rendering and retention hold against hostile input.

Some checks need what only a host beside the server has: distinct loopback source addresses (26.8, 26.9), the
server's state folder and `policy-assistant keys` under the same environment as `serve` (26.12, 26.13). Where that
is missing they say `skipped` and why.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import hashlib
import io
import json
import os
import random
import re
import secrets
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
from probe_kit import Result, call, check, file_data, upload

FORMULA = "=HYPERLINK(\"http://127.0.0.1:9/x\",\"点击\")"
MARKER = "探测反馈" + uuid.uuid4().hex[:8]


def _loopback(base: str) -> bool:
    return (urlsplit(base).hostname or "").startswith("127.")


def _from(address: str) -> httpx.Client:
    """A client whose connections leave from `address` (any 127.x.y.z on a loopback server's host)."""
    return httpx.Client(transport=httpx.HTTPTransport(local_address=address), timeout=30)


def _server(base: str) -> tuple[dict[str, str], Path] | None:
    """The environment and working directory of the process listening on `base`'s port, when it runs on this
    machine as this user (the state folder and keys are read and made as the server sees them)."""
    port = urlsplit(base).port or 80
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == "0A" and int(fields[1].rsplit(":", 1)[1], 16) == port:  # 0A: LISTEN
                    inodes.add(f"socket:[{fields[9]}]")
    for pid in filter(str.isdigit, os.listdir("/proc")):
        with contextlib.suppress(OSError):
            if any(os.readlink(f"/proc/{pid}/fd/{fd}") in inodes for fd in os.listdir(f"/proc/{pid}/fd")):
                environ = dict(item.split("=", 1) for item in Path(f"/proc/{pid}/environ").read_text().split("\0")
                               if "=" in item)
                return environ, Path(os.readlink(f"/proc/{pid}/cwd"))
    return None


def _settings(environ: dict[str, str], cwd: Path) -> Any:
    """The server's settings, read from its environment (paths from its working directory)."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    from assistant.config import Settings

    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(environ)
        settings = Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    settings.state_dir = cwd / settings.state_dir
    return settings


def _fn_index(client: httpx.Client, base: str, api_name: str) -> int:
    config = client.get(f"{base}/config").json()
    return int(next(d["id"] for d in config["dependencies"] if d.get("api_name") == api_name))


def _in_session(client: httpx.Client, base: str, api_name: str, data: list[Any], session: str) -> tuple[str, Any]:
    """One event in a browser session, its state kept between events: ('complete' | 'error' | 'http N', output)."""
    joined = client.post(f"{base}/gradio_api/queue/join", json={
        "data": data, "fn_index": _fn_index(client, base, api_name), "session_hash": session, "event_data": None,
        "trigger_id": None})
    if joined.status_code != 200:
        return f"http {joined.status_code}", joined.text[:200]
    event_id = joined.json()["event_id"]
    with client.stream("GET", f"{base}/gradio_api/queue/data", params={"session_hash": session}) as stream:
        for line in stream.iter_lines():
            message = json.loads(line[5:]) if line.startswith("data:") else {}
            if message.get("msg") == "process_completed" and message.get("event_id") == event_id:
                output = message.get("output", {})
                return ("complete" if message.get("success") else "error"), output.get("data", output)
    return "unknown", None


def _bubble(chat: Any) -> str:
    """The text of the chat's last message (a string, or Gradio's list of text parts)."""
    content = chat[-1].get("content", "") if chat else ""
    return "".join(p.get("text", "") for p in content) if isinstance(content, list) else str(content)


HOSTILE = Path(__file__).resolve().parents[1] / "tests" / "data" / "hostile"


def _publish_hostile(base: str, editor: httpx.Client | None) -> str:
    """Publish the documents with markup and `]]>` in their clauses (tests/data/hostile), as an editor would."""
    if editor is None:
        return "no --editor to publish tests/data/hostile"
    files = []
    for path in sorted(HOSTILE.iterdir()):
        status, uploaded = upload(editor, f"{base}/editors", path.name, path.read_bytes())
        if status != 200:
            return f"upload {path.name}: {status}"
        files.append(file_data(uploaded[0], path.name))
    event, data = call(editor, f"{base}/editors", "publish", [files, *[""] * 8, True], timeout=300)
    return f"published tests/data/hostile: {event}"


def _editor_credentials() -> str:
    """probe.py's `--editor USERNAME:PASSWORD` (the checks get a logged-in client; this one needs the password)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--editor", default="")
    return str(parser.parse_known_args()[0].editor)


def _fresh_addresses(n: int) -> list[str]:
    """Loopback addresses no earlier run used (the login limits remember clients for their window)."""
    second, third = random.randrange(1, 255), random.randrange(1, 255)
    return [f"127.{second}.{third}.{i + 2}" for i in range(n)]


# 26.7 formula injection -------------------------------------------------------------------------------------------
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


@check("26.7", "questions and comments starting with = + - @ are neutralised in the editors' CSV export")
def csv_formulas(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    if editor is None:
        return True, "skipped (no --editor)"
    marker = "探测" + uuid.uuid4().hex[:8]
    comments = [f'=HYPERLINK("http://127.0.0.1:9/x","点击"){marker}', f"+1+1{marker}", f"-2+3{marker}",
                f"@SUM(1,1){marker}"]
    client, session = httpx.Client(timeout=60), uuid.uuid4().hex[:11]
    event, data = _in_session(client, base, "ask", [f"=政务公开考核分值是多少？{marker}", [], None], session)
    if event != "complete":
        return False, f"ask: {event} {str(data)[:80]}"
    for comment in comments:
        _in_session(client, base, "rate_down", [comment, None], session)
    event, data = call(editor, f"{base}/editors", "export_feedback", [])
    if event != "complete" or not isinstance(data, list) or not isinstance(data[0], dict):
        return False, f"export: {event} {str(data)[:80]}"
    url = data[0].get("url") or ""
    got = editor.get(url if url.startswith("http") else f"{base}/editors/gradio_api/file={data[0]['path']}")
    rows = [r for r in csv.DictReader(io.StringIO(got.content.decode("utf-8-sig"))) if marker in r["question"]]
    cells = [r[column] for r in rows for column in ("comment", "question")]
    live = [c for c in cells if c.startswith(_FORMULA_START)]
    return bool(rows) and not live, (f"{len(live)} of {len(cells)} cells of {len(rows)} rows start a formula in "
                                     f"the CSV ({live[:1] or [c[:12] for c in cells[:2]]})")


# 26.8 lockout -----------------------------------------------------------------------------------------------------
@check("26.8", "20 wrong passwords from other clients do not lock the editor out")
def editor_lockout(base: str, **_: Any) -> Result:
    if not _loopback(base):
        return True, "skipped (needs a loopback server: clients from distinct 127.x addresses)"
    username, _, password = _editor_credentials().partition(":")
    attackers, (own,) = _fresh_addresses(5)[:4], _fresh_addresses(1)
    statuses = []
    for address in attackers:  # five from each: the per-client limit
        with _from(address) as client:
            statuses += [client.post(f"{base}/editors/login", data={"username": username or "editor",
                                                                    "password": f"wrong{i}"}).status_code
                         for i in range(5)]
    if not password:
        return True, f"skipped (no --editor); wrong passwords answered {sorted(set(statuses))}"
    with _from(own) as client:
        started = time.monotonic()
        status = client.post(f"{base}/editors/login", data={"username": username, "password": password}).status_code
    return status == 200, (f"correct password from a fresh client after {statuses.count(400)} wrong ones from 4 "
                           f"others: {status} in {time.monotonic() - started:.2f} s")


# 26.9 X-Forwarded-For ----------------------------------------------------------------------------------------------
@check("26.9", "X-Forwarded-For from a client that is no configured proxy does not make it another client")
def forwarded_for(base: str, **_: Any) -> Result:
    """From 127.0.0.1 (the address uvicorn trusts by default): each failed login names another client in
    X-Forwarded-For; the failures must still count against 127.0.0.1."""
    if not _loopback(base):
        return True, "skipped (needs a loopback server)"
    with _from("127.0.0.1") as client:
        statuses = [client.post(f"{base}/editors/login", data={"username": f"nobody{i}", "password": "x"},
                                headers={"X-Forwarded-For": f"198.51.100.{random.randrange(1, 255)}"}).status_code
                    for i in range(7)]
    limited = statuses.count(429)
    return limited > 0, f"7 failed logins, each with another X-Forwarded-For: {statuses} ({limited} refused)"


# 26.10 rendering --------------------------------------------------------------------------------------------------
# what a Markdown bubble would render: a tag, a link or image target, a bare URL (escaped with '\\': shown as is)
LIVE_MARKUP = re.compile(r"<img|<a |<http|(?<!\\)\]\(|(?<!\\)://|www(?!\\)\.")


@check("26.10", "answer bubbles send a clause's <img>, links, images and URLs as text")
def answer_markup(base: str, editor: httpx.Client | None = None, **_: Any) -> Result:
    """A Markdown chat bubble renders whatever Markdown or HTML its text holds. Needs clauses with such markup in
    the corpus (tests/data/hostile: an <img> and an <a> in a Markdown clause, a Markdown link and image and bare
    URLs in an HTML page's text)."""
    def bubbles() -> list[str]:
        seen = []
        for question in ("停车收费标准由谁制定？", "共享单车押金退还进度怎么查询？", "共享单车押金退还的图片说明"):
            event, data = call(httpx.Client(), base, "ask", [question, []])
            bubble = _bubble(data[0]) if event == "complete" else ""
            if "phish" in bubble or "pixel" in bubble or "gif" in bubble:
                seen.append(bubble)
        return seen

    seen = bubbles() or (_publish_hostile(base, editor) and bubbles())
    if not seen:
        return True, "skipped (no clause with markup in the corpus answers the questions, and no --editor)"
    found = sorted({m for bubble in seen for m in LIVE_MARKUP.findall(bubble)})
    return not found, f"{len(seen)} bubbles with markup; live in them: {found or 'none'} ({seen[0][:80]!r})"


# 26.11 WeChat CDATA -----------------------------------------------------------------------------------------------
def _wechat(base: str, token: str, openid: str, text: str) -> tuple[int, str]:
    timestamp, nonce = str(int(time.time())), secrets.token_hex(4)
    sig = hashlib.sha1("".join(sorted([token, timestamp, nonce])).encode()).hexdigest()
    body = (f"<xml><ToUserName><![CDATA[gh_probe]]></ToUserName><FromUserName><![CDATA[{openid}]]></FromUserName>"
            f"<CreateTime>{timestamp}</CreateTime><MsgType><![CDATA[text]]></MsgType>"
            f"<Content><![CDATA[{text}]]></Content><MsgId>{random.randrange(10**12, 10**13)}</MsgId></xml>")
    got = httpx.post(f"{base}/wechat", params={"signature": sig, "timestamp": timestamp, "nonce": nonce},
                     content=body.encode(), timeout=30)
    return got.status_code, got.text


@check("26.11", "a clause holding ]]> gives a well-formed WeChat reply")
def wechat_cdata(base: str, editor: httpx.Client | None = None, wechat_token: str = "", **_: Any) -> Result:
    import xml.etree.ElementTree as ET

    if not wechat_token:
        return True, "skipped (no --wechat-token)"
    if "]]>" not in json.dumps(call(httpx.Client(), base, "ask", ["停车收费退费多久办结？", []])[1]):
        _publish_hostile(base, editor)
    status, body = _wechat(base, wechat_token, f"probe-{uuid.uuid4().hex[:8]}", "停车收费退费多久办结？")
    try:
        content = ET.fromstring(body).findtext("Content") or ""
    except ET.ParseError as e:
        return False, f"{status}: the reply is no XML ({e}); {body[:100]!r}"
    if "]]>" not in content:
        return True, f"skipped (no clause with ]]> answered): {content[:60]!r}"
    return True, f"{status}: the reply parses and shows ]]> as written: {content[:60]!r}"


# 26.12 retention --------------------------------------------------------------------------------------------------
@check("26.12", "conversation history past its TTL is pruned from the state store")
def history_pruned(base: str, api_key: str = "", **_: Any) -> Result:
    """An API conversation turn aged past its TTL is put in the server's store; the next turn must prune it (in
    Redis: every history key must carry an expiry)."""
    if not api_key:
        return True, "skipped (no --api-key)"
    server = _server(base)
    if server is None:
        return True, "skipped (the server's state is not on this machine)"
    settings = _settings(*server)
    headers = {"Authorization": f"Bearer {api_key}"}
    turn = {"question": "政务公开考核分值是多少？", "conversation_id": f"probe-{uuid.uuid4().hex[:8]}"}
    if settings.wechat.state_backend == "redis":
        import redis

        store = redis.Redis.from_url(settings.wechat.redis_url, decode_responses=True)
        httpx.post(f"{base}/api/v1/ask", headers=headers, json=turn, timeout=60)
        names = list(store.scan_iter("wx:history:*", count=1000))
        lasting = [n for n in names if store.ttl(n) < 0]
        return not lasting, f"{len(lasting)} of {len(names)} Redis history keys have no expiry"
    path = settings.state_dir / "api.sqlite3"
    if not path.exists():
        return True, f"skipped ({path} is not here)"
    aged = f"api:probe-aged-{uuid.uuid4().hex[:8]}:c"
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db, db:
        db.execute("INSERT INTO history VALUES (?, ?, ?)",
                   (aged, "探测：已过期的问题", time.time() - settings.api.conversation_ttl_s - 3600))
    httpx.post(f"{base}/api/v1/ask", headers=headers, json=turn, timeout=60)
    with contextlib.closing(sqlite3.connect(path, timeout=30)) as db:
        left = db.execute("SELECT COUNT(*) FROM history WHERE openid = ?", (aged,)).fetchone()[0]
        stale = db.execute("SELECT COUNT(*) FROM history WHERE at < ?",
                           (time.time() - settings.api.conversation_ttl_s,)).fetchone()[0]
    return left == 0, f"after the next conversation turn, {stale} history rows past the TTL remain in {path.name}"


# 26.13 a conversation belongs to a key ----------------------------------------------------------------------------
@check("26.13", "a new key with a revoked key's name does not continue its conversations")
def conversation_by_key(base: str, **_: Any) -> Result:
    """Keys are made and revoked with `policy-assistant keys`, as the server's environment has it (no door makes
    keys over HTTP)."""
    server = _server(base)
    if server is None:
        return True, "skipped (the server's keys are not on this machine)"
    environ, cwd = server

    def keys(*args: str) -> str:
        done = subprocess.run([sys.executable, "-m", "assistant", "keys", *args], capture_output=True, text=True,
                              timeout=120, cwd=cwd, env={**environ, "PYTHONPATH": str(Path(__file__).parents[1])})
        if done.returncode:
            raise RuntimeError(done.stderr.strip()[-200:])
        return done.stdout.split()[0] if args[0] == "create" else ""

    def ask(key: str, question: str) -> dict[str, Any]:
        got = httpx.post(f"{base}/api/v1/ask", headers={"Authorization": f"Bearer {key}"}, timeout=60,
                         json={"question": question, "conversation_id": "probe-conversation"})
        return dict(got.json()) if got.status_code == 200 else {"status": got.status_code}

    name = f"probe-{uuid.uuid4().hex[:8]}"
    try:
        opened = ask(keys("create", "--name", name, "--scope", "ask"), "政务公开考核分值是多少？")
        keys("revoke", "--name", name)
        follow = ask(keys("create", "--name", name, "--scope", "ask"), "那市里呢？")
    except (RuntimeError, OSError, IndexError) as e:
        return True, f"skipped (cannot make keys here: {e})"
    finally:
        with contextlib.suppress(RuntimeError, OSError):
            keys("revoke", "--name", name)
    if "status" in opened or "status" in follow:
        return False, f"asking with a new key: {opened.get('status')} / {follow.get('status')}"
    return not follow.get("standalone_question"), ("the new key's follow-up was read as "
                                                   f"{follow.get('standalone_question') or 'a question of its own'!r}")
