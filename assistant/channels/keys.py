"""API keys for other systems: made and kept hashed (SHA-256) in the state folder or given in settings, each with a
scope (ask ⊂ publish) and a rate limit per minute."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from contextlib import closing
from pathlib import Path

from pydantic import ValidationError

from assistant.config import ApiKey, ApiSettings
from assistant.errors import AssistantError

KEYS_FILE = "api_keys.sqlite3"
PREFIX = "pa-"
SCOPES = ("ask", "publish")


def digest(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8")).hexdigest()


def allows(held: str, needed: str) -> bool:
    """A `publish` key may also ask; an `ask` key may only ask."""
    return SCOPES.index(held) >= SCOPES.index(needed)


class KeyStore:
    """The configured keys and those made with `policy-assistant keys create` (read anew on every check, so a key
    made or revoked while the server runs counts at once)."""

    def __init__(self, state_dir: Path, configured: list[ApiKey] | None = None) -> None:
        self.path = Path(state_dir) / KEYS_FILE
        self.configured = {k.sha256: k for k in configured or []}

    def _connect(self, create: bool = True) -> sqlite3.Connection:
        if not create:  # a read on every request: the table is there when the file is
            return sqlite3.connect(self.path, timeout=10)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(self.path, timeout=10)
        db.execute("CREATE TABLE IF NOT EXISTS keys (name TEXT PRIMARY KEY, scope TEXT NOT NULL, sha256 TEXT NOT NULL "
                   "UNIQUE, rate_limit_per_minute INTEGER, created_at TEXT NOT NULL)")
        return db

    def find(self, key: str) -> ApiKey | None:
        """The key's record, or None when it is no key of ours."""
        if not key:
            return None
        hashed = digest(key)
        if hashed in self.configured:
            return self.configured[hashed]
        if not self.path.exists():
            return None
        with closing(self._connect(create=False)) as db:
            row = db.execute("SELECT name, scope, sha256, rate_limit_per_minute FROM keys WHERE sha256 = ?",
                             (hashed,)).fetchone()
        return ApiKey(name=row[0], scope=row[1], sha256=row[2], rate_limit_per_minute=row[3]) if row else None

    def create(self, name: str, scope: str, rate_limit_per_minute: int | None = None) -> tuple[str, ApiKey]:
        """A new key (shown once: only its hash is kept) and its record."""
        key = PREFIX + secrets.token_urlsafe(32)
        try:
            record = ApiKey(name=name, scope=scope, sha256=digest(key),  # type: ignore[arg-type]
                            rate_limit_per_minute=rate_limit_per_minute)
        except ValidationError as e:
            first = e.errors()[0]
            raise AssistantError(f"invalid key: {first['loc'][0]} {first['msg']}",
                                 "name: letters, digits, '.', '-' or '_'; scope: ask or publish") from e
        if any(k.name == name for k in self.configured.values()):
            raise AssistantError(f"a key named {name!r} is configured in POLICY_ASSISTANT_API__KEYS",
                                 "choose another name")
        with closing(self._connect()) as db, db:
            try:
                db.execute("INSERT INTO keys VALUES (?, ?, ?, ?, ?)",
                           (name, scope, record.sha256, rate_limit_per_minute, time.strftime("%Y-%m-%dT%H:%M:%S")))
            except sqlite3.IntegrityError as e:
                raise AssistantError(f"a key named {name!r} exists already",
                                     f"revoke it first (`policy-assistant keys revoke {name}`) or choose another name"
                                     ) from e
        return key, record

    def list(self) -> list[tuple[ApiKey, str]]:
        """Every key with where it comes from ('settings' or its creation time)."""
        listed = [(k, "settings") for k in self.configured.values()]
        if self.path.exists():
            with closing(self._connect()) as db:
                for name, scope, sha, rate, created in db.execute("SELECT * FROM keys ORDER BY created_at"):
                    listed.append((ApiKey(name=name, scope=scope, sha256=sha, rate_limit_per_minute=rate), created))
        return listed

    def revoke(self, name: str) -> bool:
        """Delete a made key; False when there is none of that name (a configured key is removed from settings)."""
        if not self.path.exists():
            return False
        with closing(self._connect()) as db, db:
            return db.execute("DELETE FROM keys WHERE name = ?", (name,)).rowcount > 0


class RateLimiter:
    """At most `limit` requests per key in any 60 s; `wait` says how long until the next one may come."""

    def __init__(self, settings: ApiSettings, clock: Callable[[], float] = time.monotonic) -> None:
        self.default = settings.rate_limit_per_minute
        self._clock = clock
        self._seen: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def wait(self, key: ApiKey) -> float:
        """0 when the request may go ahead (and it is counted), else the seconds until it may."""
        limit = key.rate_limit_per_minute or self.default
        with self._lock:
            now = self._clock()
            times = self._seen.setdefault(key.sha256, deque())
            while times and times[0] <= now - 60:
                times.popleft()
            if len(times) >= limit:
                return times[-limit] + 60 - now
            times.append(now)
            return 0.0
