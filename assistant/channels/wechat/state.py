"""What the WeChat channel must not forget: which messages are being answered, their answers, the answers kept
for users, conversations, rate counters and the API token. SQLite by default; Redis for several hosts.

A message (MsgId, or FromUserName+CreateTime for events) goes through these states:
  pending → done → delivered                     answered in time, handed to one delivery
  pending → deferred → mailed | pushing → pushed  not ready by the last delivery: kept for 「继续」 or pushed
Every transition is atomic across processes, so each message is answered once and delivered once.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

FINISHED = ("done", "delivered", "mailed", "pushing", "pushed")


@dataclass
class Claim:
    attempt: int  # which delivery of the message this is (1 = first)
    start: bool  # this caller must compute the reply (first delivery, or the previous worker's lease ran out)
    status: str


@dataclass
class Stalled:
    key: str
    openid: str
    question: str


class WeChatState(Protocol):
    def claim(self, key: str, openid: str, question: str, owner: str, lease_s: float) -> Claim: ...
    def renew(self, keys: list[str], owner: str, lease_s: float) -> None: ...
    def finish(self, key: str, parts: list[str], *, mail_if_deferred: bool) -> str: ...
    def finish_from_mail(self, key: str, fallback: str) -> str: ...
    def take(self, key: str) -> str | None: ...
    def defer(self, key: str) -> str | None: ...
    def settle_push(self, key: str, unsent: list[str]) -> None: ...
    def status(self, key: str) -> str | None: ...
    def stalled(self) -> list[Stalled]: ...
    def waiting(self, openid: str) -> int: ...
    def mail_count(self, openid: str) -> int: ...
    def remember(self, openid: str, question: str, keep: int, ttl_s: float) -> None: ...
    def history(self, openid: str, ttl_s: float) -> list[str]: ...
    def count_message(self, openid: str) -> int: ...
    def cached(self, name: str) -> str | None: ...
    def cache(self, name: str, value: str, ttl_s: float) -> None: ...
    def cache_first(self, name: str, value: str, ttl_s: float) -> str: ...
    def close(self) -> None: ...


def open_state(settings: Any, state_dir: Path, name: str = "wechat") -> WeChatState:
    """The configured backend (settings: WeChatSettings); `name`: the SQLite file's (the API keeps its
    conversations in a store of its own, on the same backend)."""
    if settings.state_backend == "redis":
        from assistant.channels.wechat.redis_state import RedisState

        return RedisState(settings.redis_url, ttl_s=settings.state_ttl_s)
    return SQLiteState(state_dir / f"{name}.sqlite3", ttl_s=settings.state_ttl_s)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    key TEXT PRIMARY KEY, openid TEXT NOT NULL, question TEXT NOT NULL, status TEXT NOT NULL,
    owner TEXT, lease_until REAL NOT NULL, attempts INTEGER NOT NULL, parts TEXT, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS messages_open ON messages(status, lease_until);
CREATE INDEX IF NOT EXISTS messages_user ON messages(openid, status);
CREATE TABLE IF NOT EXISTS mailbox (
    id INTEGER PRIMARY KEY AUTOINCREMENT, openid TEXT NOT NULL, text TEXT NOT NULL, created REAL NOT NULL);
CREATE INDEX IF NOT EXISTS mailbox_user ON mailbox(openid, id);
CREATE TABLE IF NOT EXISTS history (openid TEXT NOT NULL, question TEXT NOT NULL, at REAL NOT NULL);
CREATE INDEX IF NOT EXISTS history_user ON history(openid, at);
CREATE INDEX IF NOT EXISTS history_at ON history(at);
CREATE TABLE IF NOT EXISTS rate (openid TEXT NOT NULL, minute INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (openid, minute));
CREATE TABLE IF NOT EXISTS cache (name TEXT PRIMARY KEY, value TEXT NOT NULL, expires REAL NOT NULL);
"""


class SQLiteState:
    """One SQLite file (WAL), shared safely by the processes of one host; each change is one IMMEDIATE transaction."""

    def __init__(self, path: Path, ttl_s: float = 172800) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self.ttl_s = ttl_s
        self._local = threading.local()
        self._db().executescript(_SCHEMA)
        self._pruned = 0.0

    def _db(self) -> sqlite3.Connection:
        db = getattr(self._local, "db", None)
        if db is None:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            db.execute("PRAGMA journal_mode=WAL")
            db.execute("PRAGMA synchronous=NORMAL")
            db.execute("PRAGMA secure_delete=ON")  # a pruned question is overwritten, not left in a free page
            self._local.db = db
        return db

    class _Tx:
        def __init__(self, db: sqlite3.Connection) -> None:
            self.db = db

        def __enter__(self) -> sqlite3.Connection:
            self.db.execute("BEGIN IMMEDIATE")
            return self.db

        def __exit__(self, kind: Any, *_: Any) -> None:
            self.db.execute("ROLLBACK" if kind else "COMMIT")

    def _tx(self) -> SQLiteState._Tx:
        return SQLiteState._Tx(self._db())

    def _mail(self, db: sqlite3.Connection, openid: str, parts: list[str]) -> None:
        db.executemany("INSERT INTO mailbox(openid, text, created) VALUES (?, ?, ?)",
                       [(openid, p, time.time()) for p in parts])

    def claim(self, key: str, openid: str, question: str, owner: str, lease_s: float) -> Claim:
        now = time.time()
        self._prune(now)
        with self._tx() as db:
            row = db.execute("SELECT status, lease_until, attempts FROM messages WHERE key = ?", (key,)).fetchone()
            if row is None:
                db.execute("INSERT INTO messages VALUES (?, ?, ?, 'pending', ?, ?, 1, NULL, ?)",
                           (key, openid, question, owner, now + lease_s, now))
                return Claim(1, True, "pending")
            status, lease_until, attempts = row
            start = status in ("pending", "deferred") and lease_until < now
            if start:
                db.execute("UPDATE messages SET attempts = ?, owner = ?, lease_until = ? WHERE key = ?",
                           (attempts + 1, owner, now + lease_s, key))
            else:
                db.execute("UPDATE messages SET attempts = ? WHERE key = ?", (attempts + 1, key))
            return Claim(attempts + 1, start, status)

    def renew(self, keys: list[str], owner: str, lease_s: float) -> None:
        if not keys:
            return
        with self._tx() as db:
            db.executemany("UPDATE messages SET lease_until = ? WHERE key = ? AND owner = ? "
                           "AND status IN ('pending', 'deferred')", [(time.time() + lease_s, k, owner) for k in keys])

    def finish(self, key: str, parts: list[str], *, mail_if_deferred: bool) -> str:
        with self._tx() as db:
            return self._finish(db, key, parts, mail_if_deferred)

    def _finish(self, db: sqlite3.Connection, key: str, parts: list[str], mail_if_deferred: bool) -> str:
        row = db.execute("SELECT status, openid FROM messages WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] in FINISHED:  # finished already (by a worker that took over a lapsed lease)
            return row[0] if row else "missing"
        status, openid = row
        new = "done" if status == "pending" else ("mailed" if mail_if_deferred else "pushing")
        if new == "mailed":
            self._mail(db, openid, parts)
        db.execute("UPDATE messages SET status = ?, parts = ? WHERE key = ?", (new, json.dumps(parts), key))
        return new

    def finish_from_mail(self, key: str, fallback: str) -> str:
        """Finish a 「继续」 message with the user's oldest kept part (taken from the mailbox in the same
        transaction), or with `fallback` when none is kept."""
        with self._tx() as db:
            row = db.execute("SELECT status, openid FROM messages WHERE key = ?", (key,)).fetchone()
            if row is None or row[0] in FINISHED:
                return row[0] if row else "missing"
            mail = db.execute("SELECT id, text FROM mailbox WHERE openid = ? ORDER BY id LIMIT 1", (row[1],)).fetchone()
            if mail:
                db.execute("DELETE FROM mailbox WHERE id = ?", (mail[0],))
            return self._finish(db, key, [mail[1] if mail else fallback], True)

    def take(self, key: str) -> str | None:
        with self._tx() as db:
            return self._take(db, key)

    def _take(self, db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT status, openid, parts FROM messages WHERE key = ?", (key,)).fetchone()
        if row is None or row[0] != "done":
            return None
        parts = json.loads(row[2])
        self._mail(db, row[1], parts[1:])  # the rest of a long answer waits for 「继续」
        db.execute("UPDATE messages SET status = 'delivered' WHERE key = ?", (key,))
        return str(parts[0])

    def defer(self, key: str) -> str | None:
        with self._tx() as db:
            first = self._take(db, key)
            if first is None:
                db.execute("UPDATE messages SET status = 'deferred' WHERE key = ? AND status = 'pending'", (key,))
            return first

    def settle_push(self, key: str, unsent: list[str]) -> None:
        """After a customer-service push: what could not be sent is kept for 「继续」."""
        with self._tx() as db:
            row = db.execute("SELECT status, openid FROM messages WHERE key = ?", (key,)).fetchone()
            if row is None or row[0] != "pushing":
                return
            self._mail(db, row[1], unsent)
            db.execute("UPDATE messages SET status = ? WHERE key = ?", ("mailed" if unsent else "pushed", key))

    def status(self, key: str) -> str | None:
        row = self._db().execute("SELECT status FROM messages WHERE key = ?", (key,)).fetchone()
        return str(row[0]) if row else None

    def stalled(self) -> list[Stalled]:
        rows = self._db().execute("SELECT key, openid, question FROM messages WHERE status IN ('pending', 'deferred') "
                                  "AND lease_until < ?", (time.time(),)).fetchall()
        return [Stalled(*r) for r in rows]

    def waiting(self, openid: str) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM messages WHERE openid = ? AND status IN "
                                      "('deferred', 'pushing')", (openid,)).fetchone()[0])

    def mail_count(self, openid: str) -> int:
        return int(self._db().execute("SELECT COUNT(*) FROM mailbox WHERE openid = ?", (openid,)).fetchone()[0])

    def remember(self, openid: str, question: str, keep: int, ttl_s: float) -> None:
        now = time.time()
        with self._tx() as db:
            db.execute("INSERT INTO history VALUES (?, ?, ?)", (openid, question, now))
            # every conversation idle past the TTL goes, not only this one: a question is kept no longer than it
            # can be used (users who never come back included)
            db.execute("DELETE FROM history WHERE at < ?", (now - ttl_s,))
            db.execute("DELETE FROM history WHERE openid = ? AND rowid NOT IN (SELECT rowid FROM history "
                       "WHERE openid = ? ORDER BY at DESC LIMIT ?)", (openid, openid, keep))

    def history(self, openid: str, ttl_s: float) -> list[str]:
        rows = self._db().execute("SELECT question FROM history WHERE openid = ? AND at >= ? ORDER BY at",
                                  (openid, time.time() - ttl_s)).fetchall()
        return [r[0] for r in rows]

    def count_message(self, openid: str) -> int:
        minute = int(time.time() // 60)
        with self._tx() as db:
            db.execute("INSERT INTO rate VALUES (?, ?, 1) ON CONFLICT(openid, minute) DO UPDATE SET n = n + 1",
                       (openid, minute))
            return int(db.execute("SELECT n FROM rate WHERE openid = ? AND minute = ?", (openid, minute)).fetchone()[0])

    def cached(self, name: str) -> str | None:
        row = self._db().execute("SELECT value FROM cache WHERE name = ? AND expires > ?",
                                 (name, time.time())).fetchone()
        return str(row[0]) if row else None

    def cache(self, name: str, value: str, ttl_s: float) -> None:
        with self._tx() as db:
            db.execute("INSERT OR REPLACE INTO cache VALUES (?, ?, ?)", (name, value, time.time() + ttl_s))

    def cache_first(self, name: str, value: str, ttl_s: float) -> str:
        """Store `value` under `name` unless a live value is there already; return the one that is (atomic)."""
        now = time.time()
        with self._tx() as db:
            db.execute("DELETE FROM cache WHERE name = ? AND expires <= ?", (name, now))
            db.execute("INSERT OR IGNORE INTO cache VALUES (?, ?, ?)", (name, value, now + ttl_s))
            return str(db.execute("SELECT value FROM cache WHERE name = ?", (name,)).fetchone()[0])

    def _prune(self, now: float) -> None:
        """Forget messages, kept answers and counters older than the TTL (at most once a minute)."""
        if now - self._pruned < 60:
            return
        self._pruned = now
        with self._tx() as db:
            db.execute("DELETE FROM messages WHERE created < ?", (now - self.ttl_s,))
            db.execute("DELETE FROM mailbox WHERE created < ?", (now - self.ttl_s,))
            db.execute("DELETE FROM rate WHERE minute < ?", (int(now // 60) - 2,))
            db.execute("DELETE FROM cache WHERE expires < ?", (now,))

    def close(self) -> None:
        db = getattr(self._local, "db", None)
        if db is not None:
            db.close()
            self._local.db = None


def new_owner() -> str:
    """An id for this process's workers (leases name their owner)."""
    return uuid.uuid4().hex[:12]
