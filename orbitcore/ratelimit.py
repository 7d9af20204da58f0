"""Rate limits, kept in memory, with no clock of their own: every call is given `now`.

`RateLimiter` is a sliding window per key: at most `limit` hits in any `window`
seconds. It serves the rendezvous' HTTP limits (key: (bucket, `address_key` of the
client: an IPv6 client counts by its /64), per hour) and the LAN listener's invites
and nonces (key: source address, per minute). A hit is recorded only when it is
allowed, so a client that keeps hammering does not push its own reset away.

`TokenBucket` is the per-socket limit of the rendezvous relay: a sustained `rate`
per second with a `burst` allowance, the two settings its operators set.

`now` is seconds on any one clock the caller keeps to (a Unix time or
`time.monotonic()`); a `Verdict`'s `reset_at` is on that same clock.
"""

from __future__ import annotations

import socket
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass, field


def address_key(address: str, ipv6_prefix: int = 64) -> str:
    """The rate-limit key of a client address: an IPv4 address as is, an IPv6 address as
    its network of `ipv6_prefix` bits (an ISP hands a home a whole /64 and a client may
    use any address in it), an IPv4-mapped IPv6 address as its IPv4 address. Anything
    that is not an address is its own key. (A few microseconds: it runs on every request.)"""
    try:
        packed = socket.inet_pton(socket.AF_INET6, address.split("%", 1)[0])
    except (OSError, ValueError):
        return address  # IPv4 (kept as is), or not an address
    if packed[:12] == _IPV4_MAPPED:
        return socket.inet_ntop(socket.AF_INET, packed[12:])
    bits = max(0, min(128, ipv6_prefix))
    whole, rest = divmod(bits, 8)
    masked = packed[:whole]
    if rest:
        masked += bytes([packed[whole] & (0xFF << (8 - rest)) & 0xFF])
    masked += bytes(16 - len(masked))
    return f"{socket.inet_ntop(socket.AF_INET6, masked)}/{bits}"


_IPV4_MAPPED = bytes(10) + b"\xff\xff"


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

    Only a recorded hit creates a key's entry (a `peek` or a refused hit creates none).
    With `keys_max`, memory is bounded: entries are kept in the order of their last
    hit, and a new key that would exceed the cap forgets the least recently hit ones
    (idle ones first, since they are the least recent), each in constant time.
    """

    def __init__(self, window: float, *, keys_max: int | None = None) -> None:
        self.window = window
        self.keys_max = keys_max
        self._hits: OrderedDict[Hashable, list[float]] = OrderedDict()

    def _live(self, key: Hashable, now: float) -> list[float]:
        """The key's hits still in the window (an empty list, not stored, for a new key)."""
        hits = self._hits.get(key)
        if hits is None:
            return []
        cutoff = now - self.window
        stale = 0
        while stale < len(hits) and hits[stale] <= cutoff:
            stale += 1
        if stale:
            del hits[:stale]
        return hits

    def peek(self, key: Hashable, limit: int, now: float) -> Verdict:
        """The verdict a hit would get, without recording one."""
        hits = self._live(key, now)
        reset_at = hits[0] + self.window if hits else now + self.window
        return Verdict(len(hits) < limit, limit, max(0, limit - len(hits)), reset_at)

    def hit(self, key: Hashable, limit: int, now: float) -> Verdict:
        hits = self._live(key, now)
        if len(hits) >= limit:
            reset_at = hits[0] + self.window if hits else now + self.window
            return Verdict(False, limit, 0, reset_at)
        if key not in self._hits:
            self._make_room()
            self._hits[key] = hits
        hits.append(now)
        self._hits.move_to_end(key)
        return Verdict(True, limit, limit - len(hits), hits[0] + self.window)

    def _make_room(self) -> None:
        """Forget the least recently hit keys until one more fits under `keys_max`."""
        if self.keys_max is None:
            return
        while self._hits and len(self._hits) >= self.keys_max:
            self._hits.popitem(last=False)

    def allow(self, key: Hashable, limit: int, now: float) -> bool:
        """Record a hit if allowed; whether it was."""
        return self.hit(key, limit, now).allowed

    def expire(self, now: float) -> int:
        """Forget keys with no hit left in the window; return how many."""
        cutoff = now - self.window
        forgotten = 0
        while self._hits:
            key, hits = next(iter(self._hits.items()))
            if hits and hits[-1] > cutoff:  # the least recent is live: so are all others
                break
            del self._hits[key]
            forgotten += 1
        return forgotten

    def __len__(self) -> int:
        return len(self._hits)


@dataclass(slots=True)  # one or two per open socket
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
