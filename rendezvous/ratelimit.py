"""Per-client sliding-window rate limits, kept in memory.

One window per (bucket, client address). A hit is recorded only when it is
allowed, so a client that keeps hammering does not push its own reset away.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from datetime import datetime, timedelta

WINDOW = timedelta(hours=1)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    limit: int
    remaining: int
    reset_at: datetime
    """When the oldest hit in the window leaves it (a slot frees up)."""

    def headers(self) -> dict[str, str]:
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(int(self.reset_at.timestamp())),
        }

    def retry_after(self, now: datetime) -> int:
        return max(1, int((self.reset_at - now).total_seconds() + 0.999))


class SlidingWindowLimiter:
    def __init__(self, window: timedelta = WINDOW) -> None:
        self.window = window
        self._hits: dict[tuple[str, str], deque[datetime]] = {}

    def _live(self, key: tuple[str, str], now: datetime) -> deque[datetime]:
        hits = self._hits.setdefault(key, deque())
        cutoff = now - self.window
        while hits and hits[0] <= cutoff:
            hits.popleft()
        return hits

    def peek(self, bucket: str, client: str, limit: int, now: datetime) -> Verdict:
        """The verdict a hit would get, without recording one."""
        hits = self._live((bucket, client), now)
        reset_at = hits[0] + self.window if hits else now + self.window
        return Verdict(len(hits) < limit, limit, max(0, limit - len(hits)), reset_at)

    def hit(self, bucket: str, client: str, limit: int, now: datetime) -> Verdict:
        hits = self._live((bucket, client), now)
        if len(hits) >= limit:
            return Verdict(False, limit, 0, hits[0] + self.window)
        hits.append(now)
        return Verdict(True, limit, limit - len(hits), hits[0] + self.window)

    def expire(self, now: datetime) -> int:
        """Forget clients with no hit left in the window; return how many."""
        stale = [key for key in self._hits if not self._live(key, now)]
        for key in stale:
            del self._hits[key]
        return len(stale)

    def __len__(self) -> int:
        return len(self._hits)
