"""Keep full garbage collections from stalling the relay of an instance holding many sockets.

CPython's full collection (generation 2) walks every container object the process
tracks. An instance holding 10,000 sockets tracks millions (each open WebSocket brings
its aiohttp request, response, protocol, reader, writer, task and our per-socket
state), and one full collection of them paused the relay 1.1-1.3 s (`bench scale`).
Full collections come whenever the objects promoted to the old generation since the
last one exceed a quarter of those it left; with sockets being opened that is often.

The policy: right after each full collection the survivors are frozen (`gc.freeze()`
moves them out of the collector's view; it costs no walk), so the next full collection
walks only the objects that became long-lived since, and its pause is that of the
growth, not of the whole heap.

What a freeze leaks: a frozen object is still freed by reference counting when its last
reference goes; only cyclic garbage among frozen objects (a closed socket's objects that
refer to each other) waits. So every `thaw_seconds` the policy unfreezes everything and
runs one full collection at once (a deliberate pause, the one Python would have taken
anyway, once per period instead of several a minute): cyclic garbage waits at most that
long, and memory held by it is bounded by what the sockets closed in one period left.

`GcPolicy` decides (no I/O, given `now`); `GcFreezer` applies its decisions to the
interpreter; `gc_ctx` runs it for an application (a `cleanup_ctx`).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import gc
import logging
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web

log = logging.getLogger("rendezvous.gc")
TICK_SECONDS = 10.0


class GcAction(enum.Enum):
    NOTHING = "nothing"
    FREEZE = "freeze"  # the survivors of the full collection that just ended
    THAW = "thaw"  # unfreeze everything and collect it all once


@dataclass(slots=True)
class GcPolicy:
    """When to freeze and when to thaw. `thaw_seconds` 0 leaves Python's collector alone."""

    thaw_seconds: float
    frozen_since: float | None = None  # when the first freeze since the last thaw happened

    @property
    def enabled(self) -> bool:
        return self.thaw_seconds > 0

    def full_collection_ended(self, now: float) -> GcAction:
        if not self.enabled:
            return GcAction.NOTHING
        if self.frozen_since is None:
            self.frozen_since = now
        return GcAction.FREEZE

    def tick(self, now: float) -> GcAction:
        if self.frozen_since is None or now - self.frozen_since < self.thaw_seconds:
            return GcAction.NOTHING
        self.frozen_since = None
        return GcAction.THAW


class GcFreezer:
    """Applies a `GcPolicy` to this interpreter's collector, through `gc.callbacks`.

    The freeze happens inside the collector's "stop" callback of a full collection: at
    that moment the younger generations have just been merged into the old one and
    collected, so what is frozen is exactly the survivors, no garbage.
    """

    def __init__(self, policy: GcPolicy, clock: Callable[[], float] = time.monotonic) -> None:
        self.policy = policy
        self.clock = clock
        self.freezes = 0
        self.thaws = 0

    def install(self) -> None:
        if self.policy.enabled:
            gc.callbacks.append(self._on_collection)

    def uninstall(self) -> None:
        if self._on_collection in gc.callbacks:
            gc.callbacks.remove(self._on_collection)
            gc.unfreeze()  # back to Python's own collector: everything is seen again

    def _on_collection(self, phase: str, info: dict[str, Any]) -> None:
        if phase != "stop" or info.get("generation") != 2:
            return
        if self.policy.full_collection_ended(self.clock()) is GcAction.FREEZE:
            gc.freeze()
            self.freezes += 1

    def tick(self, now: float | None = None) -> GcAction:
        action = self.policy.tick(self.clock() if now is None else now)
        if action is GcAction.THAW:
            frozen = gc.get_freeze_count()
            started = time.perf_counter()
            gc.unfreeze()
            freed = gc.collect()  # its "stop" callback freezes the survivors again
            self.thaws += 1
            log.info(
                "full garbage collection of every object",
                extra={
                    "fields": {
                        "frozen_objects": frozen,
                        "freed_objects": freed,
                        "pause_ms": round((time.perf_counter() - started) * 1e3, 1),
                    }
                },
            )
        return action


GC_FREEZER = web.AppKey("gc_freezer", GcFreezer)


def setup(app: web.Application, thaw_seconds: float) -> None:
    app[GC_FREEZER] = GcFreezer(GcPolicy(thaw_seconds))
    app.cleanup_ctx.append(gc_ctx)


async def gc_ctx(app: web.Application) -> AsyncIterator[None]:
    freezer = app[GC_FREEZER]
    if not freezer.policy.enabled:
        yield
        return
    freezer.install()

    async def loop() -> None:
        while True:
            await asyncio.sleep(TICK_SECONDS)
            freezer.tick()

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    freezer.uninstall()
