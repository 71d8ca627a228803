"""The WeChat channel state in Redis, for several hosts: each transition is one Lua script (atomic)."""

from __future__ import annotations

import json
import time
from typing import Any

from assistant.channels.wechat.state import Claim, Stalled

_CLAIM = """
local k = KEYS[1]
local now, lease = tonumber(ARGV[4]), tonumber(ARGV[5])
if redis.call('EXISTS', k) == 0 then
  redis.call('HSET', k, 'openid', ARGV[1], 'question', ARGV[2], 'status', 'pending', 'owner', ARGV[3],
             'lease', now + lease, 'attempts', 1)
  redis.call('EXPIRE', k, ARGV[6])
  redis.call('ZADD', KEYS[2], now + lease, k)
  return {1, 1, 'pending'}
end
local attempts = redis.call('HINCRBY', k, 'attempts', 1)
local status = redis.call('HGET', k, 'status')
local start = 0
if (status == 'pending' or status == 'deferred') and tonumber(redis.call('HGET', k, 'lease')) < now then
  redis.call('HSET', k, 'owner', ARGV[3], 'lease', now + lease)
  redis.call('ZADD', KEYS[2], now + lease, k)
  start = 1
end
return {attempts, start, status}
"""

_RENEW = """
for i, k in ipairs(KEYS) do
  if i > 1 and redis.call('HGET', k, 'owner') == ARGV[1] then
    local status = redis.call('HGET', k, 'status')
    if status == 'pending' or status == 'deferred' then
      redis.call('HSET', k, 'lease', ARGV[2])
      redis.call('ZADD', KEYS[1], ARGV[2], k)
    end
  end
end
return 0
"""

# KEYS: message, open set, mailbox prefix; ARGV: parts JSON, mail_if_deferred, from_mail, fallback, ttl
_FINISH = """
local k = KEYS[1]
local status = redis.call('HGET', k, 'status')
if not status then return 'missing' end
if status ~= 'pending' and status ~= 'deferred' then return status end
local openid = redis.call('HGET', k, 'openid')
local box = KEYS[3] .. openid
local parts = ARGV[1]
if ARGV[3] == '1' then
  local first = redis.call('LPOP', box)
  parts = cjson.encode({first or ARGV[4]})
end
local new = 'done'
if status == 'deferred' then
  if ARGV[2] == '1' then new = 'mailed' else new = 'pushing' end
end
if new == 'mailed' then
  for _, p in ipairs(cjson.decode(parts)) do redis.call('RPUSH', box, p) end
  redis.call('EXPIRE', box, ARGV[5])
end
redis.call('HSET', k, 'status', new, 'parts', parts)
redis.call('ZREM', KEYS[2], k)
return new
"""

# KEYS: message, open set, mailbox prefix; ARGV: defer ('1': a pending message becomes deferred), ttl
_TAKE = """
local k = KEYS[1]
local status = redis.call('HGET', k, 'status')
if status == 'done' then
  local parts = cjson.decode(redis.call('HGET', k, 'parts'))
  local box = KEYS[3] .. redis.call('HGET', k, 'openid')
  for i = 2, #parts do redis.call('RPUSH', box, parts[i]) end
  if #parts > 1 then redis.call('EXPIRE', box, ARGV[2]) end
  redis.call('HSET', k, 'status', 'delivered')
  return parts[1]
end
if status == 'pending' and ARGV[1] == '1' then redis.call('HSET', k, 'status', 'deferred') end
return false
"""

_SETTLE = """
local k = KEYS[1]
if redis.call('HGET', k, 'status') ~= 'pushing' then return 0 end
local unsent = cjson.decode(ARGV[1])
local box = KEYS[2] .. redis.call('HGET', k, 'openid')
for _, p in ipairs(unsent) do redis.call('RPUSH', box, p) end
if #unsent > 0 then
  redis.call('EXPIRE', box, ARGV[2])
  redis.call('HSET', k, 'status', 'mailed')
else
  redis.call('HSET', k, 'status', 'pushed')
end
return 1
"""

# KEYS: a conversation's list; ARGV: "<time> <turn>", turns kept, TTL, oldest time kept. Each turn carries its time:
# the key's expiry forgets an idle conversation, and turns older than the TTL go from a live one too
_REMEMBER = """
local k = KEYS[1]
redis.call('RPUSH', k, ARGV[1])
redis.call('LTRIM', k, -tonumber(ARGV[2]), -1)
local since = tonumber(ARGV[4])
while true do
  local head = redis.call('LINDEX', k, 0)
  local at = head and tonumber(string.match(head, '^(%d+%.?%d*) '))
  if not head or (at and at >= since) then break end
  redis.call('LPOP', k)
end
redis.call('EXPIRE', k, ARGV[3])
"""


def _turn(entry: str) -> tuple[float, str]:
    """(when, turn) of a kept entry; one kept before turns carried their time counts as old."""
    at, _, turn = entry.partition(" ")
    try:
        return float(at), turn
    except ValueError:
        return 0.0, entry


class RedisState:
    """Keys under `wx:`: a hash per message, a sorted set of open messages by lease, a list per mailbox and
    per conversation, counters per user and minute, and the shared access token."""

    def __init__(self, url: str, ttl_s: float = 172800, prefix: str = "wx:") -> None:
        import redis

        self.redis: Any = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5)
        self.redis.ping()
        self.ttl_s = int(ttl_s)
        self.p = prefix
        self._claim = self.redis.register_script(_CLAIM)
        self._renew = self.redis.register_script(_RENEW)
        self._finish = self.redis.register_script(_FINISH)
        self._take = self.redis.register_script(_TAKE)
        self._settle = self.redis.register_script(_SETTLE)
        self._remember = self.redis.register_script(_REMEMBER)

    def _msg(self, key: str) -> str:
        return f"{self.p}m:{key}"

    @property
    def _open(self) -> str:
        return f"{self.p}open"

    @property
    def _box(self) -> str:
        return f"{self.p}mail:"

    def claim(self, key: str, openid: str, question: str, owner: str, lease_s: float) -> Claim:
        attempt, start, status = self._claim(keys=[self._msg(key), self._open],
                                             args=[openid, question, owner, time.time(), lease_s, self.ttl_s])
        return Claim(int(attempt), bool(start), str(status))

    def renew(self, keys: list[str], owner: str, lease_s: float) -> None:
        if keys:
            self._renew(keys=[self._open, *map(self._msg, keys)], args=[owner, time.time() + lease_s])

    def finish(self, key: str, parts: list[str], *, mail_if_deferred: bool) -> str:
        return str(self._finish(keys=[self._msg(key), self._open, self._box],
                                args=[json.dumps(parts, ensure_ascii=False), int(mail_if_deferred), 0, "",
                                      self.ttl_s]))

    def finish_from_mail(self, key: str, fallback: str) -> str:
        return str(self._finish(keys=[self._msg(key), self._open, self._box], args=["[]", 1, 1, fallback, self.ttl_s]))

    def take(self, key: str) -> str | None:
        first = self._take(keys=[self._msg(key), self._open, self._box], args=[0, self.ttl_s])
        return str(first) if first else None

    def defer(self, key: str) -> str | None:
        first = self._take(keys=[self._msg(key), self._open, self._box], args=[1, self.ttl_s])
        return str(first) if first else None

    def settle_push(self, key: str, unsent: list[str]) -> None:
        self._settle(keys=[self._msg(key), self._box], args=[json.dumps(unsent, ensure_ascii=False), self.ttl_s])

    def status(self, key: str) -> str | None:
        status = self.redis.hget(self._msg(key), "status")
        return str(status) if status else None

    def stalled(self) -> list[Stalled]:
        found = []
        for name in self.redis.zrangebyscore(self._open, 0, time.time()):
            record = self.redis.hgetall(name)
            if not record:
                self.redis.zrem(self._open, name)  # expired
                continue
            if record.get("status") in ("pending", "deferred"):
                found.append(Stalled(name[len(self._msg("")):], record["openid"], record["question"]))
        return found

    def waiting(self, openid: str) -> int:
        count = 0
        for name in self.redis.zrange(self._open, 0, -1):
            record = self.redis.hmget(name, "openid", "status")
            count += record[0] == openid and record[1] in ("deferred", "pushing")
        return count

    def mail_count(self, openid: str) -> int:
        return int(self.redis.llen(self._box + openid))

    def remember(self, openid: str, question: str, keep: int, ttl_s: float) -> None:
        now = time.time()
        self._remember(keys=[f"{self.p}history:{openid}"],
                       args=[f"{now:.3f} {question}", max(1, keep), max(1, int(ttl_s)), now - ttl_s])

    def history(self, openid: str, ttl_s: float) -> list[str]:
        if ttl_s <= 0:
            return []
        since = time.time() - ttl_s
        return [question for at, question in map(_turn, self.redis.lrange(f"{self.p}history:{openid}", 0, -1))
                if at >= since]

    def count_message(self, openid: str) -> int:
        name = f"{self.p}rate:{openid}:{int(time.time() // 60)}"
        with self.redis.pipeline() as pipe:
            pipe.incr(name)
            pipe.expire(name, 120)
            count, _ = pipe.execute()
        return int(count)

    def cached(self, name: str) -> str | None:
        value = self.redis.get(f"{self.p}cache:{name}")
        return str(value) if value else None

    def cache(self, name: str, value: str, ttl_s: float) -> None:
        self.redis.set(f"{self.p}cache:{name}", value, ex=max(1, int(ttl_s)))

    def cache_first(self, name: str, value: str, ttl_s: float) -> str:
        """Store `value` under `name` unless a live value is there already; return the one that is (atomic)."""
        key = f"{self.p}cache:{name}"
        if self.redis.set(key, value, ex=max(1, int(ttl_s)), nx=True):
            return value
        return str(self.redis.get(key) or value)

    def close(self) -> None:
        self.redis.close()
