"""Rate limits, kept in memory, with no clock of their own: every call is given `now`.

`RateLimiter` is a sliding window per key: at most `limit` hits in any `window`
seconds. It serves the rendezvous' HTTP limits (key: (bucket, client address),
per hour) and the LAN listener's invites and nonces (key: source address, per
minute). A hit is recorded only when it is allowed, so a client that keeps
hammering does not push its own reset away.

`TokenBucket` is the per-socket limit of the rendezvous relay: a sustained `rate`
per second with a `burst` allowance, the two settings its operators set.

`now` is seconds on any one clock the caller keeps to (a Unix time or
`time.monotonic()`); a `Verdict`'s `reset_at` is on that same clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Hashable
from dataclasses import dataclass, field


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: float
    """When the oldest hit in the window leaves it (a slot frees up)."""

    def headers(self) -> dict[str, str]:
        """The X-RateLimit-* headers (meaningful when `now` is a Unix time)."""
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.reset_at)),
        }

    def retry_after(self, now: float) -> int:
        """Whole seconds to wait from `now`, at least one."""
        return max(1, int(self.reset_at - now + 0.999))


class RateLimiter:
    """At most `limit` hits per `window` seconds for each key.

    With `keys_max`, memory is bounded: a new key that would exceed it first makes
    the limiter forget idle keys, then the oldest ones.
    """

    def __init__(self, window: float, *, keys_max: int | None = None) -> None:
        self.window = window
        self.keys_max = keys_max
        self._hits: dict[Hashable, deque[float]] = {}

    def _live(self, key: Hashable, now: float) -> deque[float]:
        hits = self._hits.get(key)
        if hits is None:
            if self.keys_max is not None and len(self._hits) >= self.keys_max:
                self.expire(now)
                while len(self._hits) >= self.keys_max:  # all busy: forget the oldest
                    del self._hits[next(iter(self._hits))]
            hits = self._hits[key] = deque()
        cutoff = now - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def peek(self, key: Hashable, limit: int, now: float) -> Verdict:
        """The verdict a hit would get, without recording one."""
        hits = self._live(key, now)
        reset_at = hits[0] + self.window if hits else now + self.window
        return Verdict(len(hits) < limit, limit, max(0, limit - len(hits)), reset_at)

    def hit(self, key: Hashable, limit: int, now: float) -> Verdict:
        hits = self._live(key, now)
        if len(hits) >= limit:
            return Verdict(False, limit, 0, hits[0] + self.window)
        hits.append(now)
        return Verdict(True, limit, limit - len(hits), hits[0] + self.window)

    def allow(self, key: Hashable, limit: int, now: float) -> bool:
        """Record a hit if allowed; whether it was."""
        return self.hit(key, limit, now).allowed

    def expire(self, now: float) -> int:
        """Forget keys with no hit left in the window; return how many."""
        cutoff = now - self.window
        stale = [key for key, hits in self._hits.items() if not hits or hits[-1] <= cutoff]
        for key in stale:
            del self._hits[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._hits)


@dataclass
class TokenBucket:
    """`rate` tokens a second up to `burst`; full at the first `take`."""

    rate: float
    burst: int
    tokens: float = field(init=False)
    stamp: float | None = field(default=None, init=False)

    def __post_init__(self) -> None:
        self.tokens = float(self.burst)

    def take(self, now: float) -> bool:
        """Spend one token if there is one; whether there was."""
        if self.stamp is not None:
            self.tokens = min(float(self.burst), self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        if self.tokens >= 1.0:
            self.tokens -= 1.0
            return True
        return False
