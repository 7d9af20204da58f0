"""Messages sent on a schedule, for the daemon benchmark and its bare aiortc baseline."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass


@dataclass(frozen=True)
class MessageParams:
    count: int
    size: int
    """Bytes of text in each message."""
    interval_ms: float
    """From one message's due time to the next one's."""
    drain_timeout: float
    """Seconds to wait, after the last message, for the ones still on their way."""


@dataclass
class Lag:
    worst_ms: float = 0.0


async def paced(count: int, interval_ms: float, lag: Lag) -> AsyncIterator[int]:
    """0, 1, ... count - 1, each at its due time; `lag` keeps the worst lateness."""
    started = time.perf_counter()
    for seq in range(count):
        ahead = started + seq * interval_ms / 1e3 - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)
        else:
            lag.worst_ms = max(lag.worst_ms, -ahead * 1e3)
        yield seq
