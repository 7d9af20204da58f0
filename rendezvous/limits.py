"""The per-client HTTP rate limits behind one interface: in memory (one instance) or in Redis.

Both are the same sliding window (`orbitcore.ratelimit.RateLimiter`'s semantics): at most
`limit` hits per `window` seconds per key, a hit recorded only when allowed, a `Verdict`
whose `reset_at` is when the oldest hit leaves the window. Neither keeps a clock: the
caller gives `now` (the service's clock, a Unix time), so tests move time by hand.

`RedisLimits` keeps one sorted set per key (`orbit:rl:<bucket>:<client>`, members scored
by the time of each hit), read and written by one Lua script, so two instances counting
the same client at once cannot both take the last slot. Each set expires with its
newest hit's window; a refusal also counts in `orbit:rl-refused:<bucket>` (the refusals
of every instance, for /metrics).

Redis down or slow (no answer within LIMIT_TIMEOUT): this instance decides alone, in a
window of its own in memory (as without Redis, at most `keys_max` entries), so an outage
neither locks every user out nor lifts the limits (a client gets at most one more
`limit` per instance), and a burst that makes Redis slow cannot slip past them either.
A warning is logged when Redis stops answering and a line when it answers again; each
request decided alone counts in `orbit_rate_limit_local_total`. For RECHECK_AFTER seconds
after a failure Redis is not asked, so an outage costs one request a second the timeout,
not every request. At most IN_FLIGHT_MAX calls wait on Redis at once (a burst of
requests queues for the client's connections instead of opening one each).
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from itertools import count
from typing import Any, Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from orbitcore.ratelimit import RateLimiter, Verdict

log = logging.getLogger("rendezvous")
LIMIT_TIMEOUT = 0.5  # seconds Redis may take to decide before this instance decides alone
RECHECK_AFTER = 1.0  # seconds after a failure before Redis is asked again
IN_FLIGHT_MAX = 64  # limiter calls waiting on Redis at once
KEY_PREFIX = "orbit:rl:"
REFUSED_PREFIX = "orbit:rl-refused:"

# KEYS[1] the key's window (sorted set), KEYS[2] its bucket's refusal counter.
# ARGV: now, window (s), limit, a member unique to this hit, "1" to record a hit.
# Returns {allowed (0/1), hits in the window after this call, the oldest hit's time}.
_WINDOW_LUA = """
local now = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
local limit = tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local hits = redis.call('ZCARD', KEYS[1])
local oldest = redis.call('ZRANGE', KEYS[1], 0, 0, 'WITHSCORES')[2]
if hits >= limit then
  redis.call('INCR', KEYS[2])
  return {0, hits, oldest or ARGV[1]}
end
if ARGV[5] == '1' then
  redis.call('ZADD', KEYS[1], now, ARGV[4])
  redis.call('PEXPIRE', KEYS[1], math.ceil(window * 1000))
  hits = hits + 1
end
return {1, hits, oldest or ARGV[1]}
"""


class Limits(Protocol):
    """What the service asks of a rate-limit backend."""

    async def hit(self, bucket: str, client: str, limit: int, now: float) -> Verdict: ...
    async def peek(self, bucket: str, client: str, limit: int, now: float) -> Verdict: ...
    def expire(self, now: float) -> int: ...


class MemoryLimits:
    """This instance's own windows (the default: no Redis)."""

    def __init__(self, window: float, *, keys_max: int | None = None) -> None:
        self.limiter = RateLimiter(window, keys_max=keys_max)

    async def hit(self, bucket: str, client: str, limit: int, now: float) -> Verdict:
        return self.limiter.hit((bucket, client), limit, now)

    async def peek(self, bucket: str, client: str, limit: int, now: float) -> Verdict:
        return self.limiter.peek((bucket, client), limit, now)

    def expire(self, now: float) -> int:
        return self.limiter.expire(now)


class RedisLimits:
    """The windows every instance sharing `redis` counts in.

    `decided_locally(bucket)` is called for each request this instance decided alone
    because Redis did not answer (the metric)."""

    def __init__(
        self,
        redis: Redis,
        window: float,
        *,
        keys_max: int | None = None,
        decided_locally: Callable[[str], None] | None = None,
    ) -> None:
        self.redis = redis
        self.window = window
        self._script = redis.register_script(_WINDOW_LUA)
        self._local = MemoryLimits(window, keys_max=keys_max)
        self._decided_locally = decided_locally or (lambda bucket: None)
        self._in_flight = asyncio.Semaphore(IN_FLIGHT_MAX)
        self._member_prefix = secrets.token_hex(6)  # hits of two instances never collide
        self._serial = count()
        self._failing_since: float | None = None

    async def hit(self, bucket: str, client: str, limit: int, now: float) -> Verdict:
        return await self._run(bucket, client, limit, now, record=True)

    async def peek(self, bucket: str, client: str, limit: int, now: float) -> Verdict:
        return await self._run(bucket, client, limit, now, record=False)

    def expire(self, now: float) -> int:
        """Forget the idle entries of the local fallback (Redis expires its own keys)."""
        return self._local.expire(now)

    async def _run(
        self, bucket: str, client: str, limit: int, now: float, *, record: bool
    ) -> Verdict:
        failed = self._failing_since
        if failed is not None and failed <= now < failed + RECHECK_AFTER:
            return await self._alone(bucket, client, limit, now, record=record)
        member = f"{self._member_prefix}:{next(self._serial)}"
        args: list[str | int] = [
            repr(now),
            repr(self.window),
            limit,
            member,
            "1" if record else "0",
        ]
        try:
            keys = [f"{KEY_PREFIX}{bucket}:{client}", REFUSED_PREFIX + bucket]
            async with asyncio.timeout(LIMIT_TIMEOUT):
                allowed, hits, oldest = await self._ask(keys, args)
        except (RedisError, OSError, TimeoutError) as exc:
            self._failed(now, exc)
            return await self._alone(bucket, client, limit, now, record=record)
        if self._failing_since is not None:
            self._failing_since = None
            log.info("rate limits: Redis answers again")
        reset_at = float(oldest) + self.window
        return Verdict(bool(allowed), limit, max(0, limit - int(hits)), reset_at)

    async def _ask(self, keys: list[str], args: list[str | int]) -> list[Any]:
        async with self._in_flight:
            answer: list[Any] = await self._script(keys=keys, args=args)
            return answer

    def _failed(self, now: float, exc: BaseException) -> None:
        if self._failing_since is None:
            log.warning(
                "rate limits: Redis does not answer; each instance decides alone",
                extra={"fields": {"error": type(exc).__name__}},
            )
        self._failing_since = now

    async def _alone(
        self, bucket: str, client: str, limit: int, now: float, *, record: bool
    ) -> Verdict:
        self._decided_locally(bucket)
        if record:
            return await self._local.hit(bucket, client, limit, now)
        return await self._local.peek(bucket, client, limit, now)

    async def refusals(self, buckets: list[str]) -> dict[str, int]:
        """Every instance's refusals so far in each of `buckets` (for /metrics)."""
        values = await self.redis.mget([REFUSED_PREFIX + bucket for bucket in buckets])
        return {bucket: int(value or 0) for bucket, value in zip(buckets, values, strict=True)}
