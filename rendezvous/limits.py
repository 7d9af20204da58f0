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

Redis down or slow (over LIMIT_TIMEOUT): the request is let through (fail open: an
outage of the shared store must not lock every user out), a warning is logged when
Redis stops answering and a line when it answers again, and each such decision counts
in `orbit_rate_limit_unchecked_total`. For RECHECK_AFTER seconds after a failure the
requests go through without asking Redis, so an outage costs one request a second the
timeout, not every request.
"""

from __future__ import annotations

import asyncio
import logging
import secrets
from collections.abc import Callable
from itertools import count
from typing import Protocol

from redis.asyncio import Redis
from redis.exceptions import RedisError

from orbitcore.ratelimit import RateLimiter, Verdict

log = logging.getLogger("rendezvous")
LIMIT_TIMEOUT = 0.5  # seconds Redis may take to decide before the request goes through
RECHECK_AFTER = 1.0  # seconds after a failure before Redis is asked again
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

    `unchecked(bucket)` is called for each request let through because Redis did not
    answer (the metric)."""

    def __init__(
        self, redis: Redis, window: float, *, unchecked: Callable[[str], None] | None = None
    ) -> None:
        self.redis = redis
        self.window = window
        self._script = redis.register_script(_WINDOW_LUA)
        self._unchecked = unchecked or (lambda bucket: None)
        self._member_prefix = secrets.token_hex(6)  # hits of two instances never collide
        self._serial = count()
        self._failing_since: float | None = None

    async def hit(self, bucket: str, client: str, limit: int, now: float) -> Verdict:
        return await self._run(bucket, client, limit, now, record=True)

    async def peek(self, bucket: str, client: str, limit: int, now: float) -> Verdict:
        return await self._run(bucket, client, limit, now, record=False)

    def expire(self, now: float) -> int:
        return 0  # every window expires in Redis on its own

    async def _run(
        self, bucket: str, client: str, limit: int, now: float, *, record: bool
    ) -> Verdict:
        failed = self._failing_since
        if failed is not None and failed <= now < failed + RECHECK_AFTER:
            self._unchecked(bucket)
            return _unchecked(limit, now, self.window)
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
            allowed, hits, oldest = await asyncio.wait_for(
                self._script(keys=keys, args=args), LIMIT_TIMEOUT
            )
        except (RedisError, OSError, TimeoutError) as exc:
            return self._let_through(bucket, limit, now, exc)
        if self._failing_since is not None:
            self._failing_since = None
            log.info("rate limits: Redis answers again")
        reset_at = float(oldest) + self.window
        return Verdict(bool(allowed), limit, max(0, limit - int(hits)), reset_at)

    def _let_through(self, bucket: str, limit: int, now: float, exc: BaseException) -> Verdict:
        if self._failing_since is None:
            log.warning(
                "rate limits: Redis does not answer; requests go through unchecked",
                extra={"fields": {"error": type(exc).__name__}},
            )
        self._failing_since = now
        self._unchecked(bucket)
        return _unchecked(limit, now, self.window)

    async def refusals(self, buckets: list[str]) -> dict[str, int]:
        """Every instance's refusals so far in each of `buckets` (for /metrics)."""
        values = await self.redis.mget([REFUSED_PREFIX + bucket for bucket in buckets])
        return {bucket: int(value or 0) for bucket, value in zip(buckets, values, strict=True)}


def _unchecked(limit: int, now: float, window: float) -> Verdict:
    """The verdict of a request let through unchecked."""
    return Verdict(True, limit, limit, now + window)
