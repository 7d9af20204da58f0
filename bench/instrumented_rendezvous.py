"""`python -m bench.instrumented_rendezvous GC_LOG PROFILE [rendezvous options]`: the
rendezvous (`orbit-rendezvous`'s own `main`, unchanged) with two instruments for the bench.

- Each full collection of the garbage collector (generation 2) appends a line to GC_LOG:
  `{"t": <perf_counter() at its end>, "ms": <its pause>}`; perf_counter is the machine's
  monotonic clock, so the bench can tell which pauses fell while it measured.
- cProfile, switched on by SIGUSR1 and off by SIGUSR2 (a profile of the load alone, not
  of the start-up), its stats written to PROFILE when the rendezvous stops; `-` for none.
"""

from __future__ import annotations

import cProfile
import gc
import json
import signal
import sys
import time
from pathlib import Path
from types import FrameType
from typing import Any

from rendezvous.cli import main as rendezvous_main


def log_full_collections(path: Path) -> None:
    started = 0.0
    out = path.open("a", buffering=1)

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
    log_full_collections(Path(gc_log))
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
