"""`python -m bench.instrumented_rendezvous GC_LOG PROFILE [rendezvous options]`: the
rendezvous (`orbit-rendezvous`'s own `main`, unchanged) with instruments for the bench.

- Each full collection of the garbage collector (generation 2) appends a line to GC_LOG:
  `{"t": <perf_counter() at its end>, "ms": <its pause>}`; perf_counter is the machine's
  monotonic clock, so the bench can tell which pauses fell while it measured.
- Its event loop's stalls: a task that asks to wake every STEP seconds logs each wake-up
  more than STALL seconds late, `{"t": ..., "stall_ms": <how late>}` (a full collection,
  a long callback, or the process waiting for a CPU), so the bench can tell whether a
  slow probe waited in this instance.
- cProfile, switched on by SIGUSR1 and off by SIGUSR2 (a profile of the load alone, not
  of the start-up), its stats written to PROFILE when the rendezvous stops; `-` for none.
"""

from __future__ import annotations

import asyncio
import cProfile
import gc
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any, TextIO

from rendezvous.cli import main as rendezvous_main

STEP = 0.005
STALL = 0.010


async def watch_stalls(out: TextIO) -> None:
    while True:
        asked = time.perf_counter()
        await asyncio.sleep(STEP)
        now = time.perf_counter()
        late = now - asked - STEP
        if late > STALL:
            out.write(json.dumps({"t": now, "stall_ms": round(late * 1e3, 3)}) + "\n")


class _WatchedLoops(asyncio.DefaultEventLoopPolicy):
    """Every event loop made (the one `asyncio.run` makes) starts `watch_stalls`."""

    def __init__(self, out: TextIO) -> None:
        super().__init__()
        self.out = out
        self.watchers: set[asyncio.Task[None]] = set()

    def new_event_loop(self) -> asyncio.AbstractEventLoop:
        loop = super().new_event_loop()

        def start() -> None:
            task = loop.create_task(watch_stalls(self.out))
            self.watchers.add(task)
            task.add_done_callback(self.watchers.discard)

        loop.call_soon(start)
        return loop


def log_full_collections(out: TextIO) -> None:
    started = 0.0

    def on_collection(phase: str, info: dict[str, Any]) -> None:
        nonlocal started
        if phase == "start":
            started = time.perf_counter()
        elif info.get("generation") == 2:
            now = time.perf_counter()
            out.write(json.dumps({"t": now, "ms": round((now - started) * 1e3, 3)}) + "\n")

    gc.callbacks.append(on_collection)


def main() -> int:
    gc_log, profile_path, argv = sys.argv[1], sys.argv[2], sys.argv[3:]
    with Path(gc_log).open("a", buffering=1) as out:
        log_full_collections(out)
        asyncio.set_event_loop_policy(_WatchedLoops(out))
        try:
            return run(argv, profile_path)
        finally:
            gc.callbacks.clear()


def run(argv: list[str], profile_path: str) -> int:
    if profile_path == "-":
        return rendezvous_main(argv)
    profiler = cProfile.Profile()

    def switch(signum: int, _frame: FrameType | None) -> None:
        if signum == signal.SIGUSR1:
            profiler.enable()
        else:
            profiler.disable()

    signal.signal(signal.SIGUSR1, switch)
    signal.signal(signal.SIGUSR2, switch)
    try:
        return rendezvous_main(argv)
    finally:
        profiler.disable()
        profiler.dump_stats(profile_path)


if __name__ == "__main__":
    sys.exit(main())
