"""`python -m bench.profiled_rendezvous PROFILE [rendezvous options]`: the rendezvous
(`orbit-rendezvous`'s own `main`) with cProfile switched on by SIGUSR1 and off by SIGUSR2,
so that a profile covers the load alone, not the start-up; the stats are written to
PROFILE when the rendezvous stops."""

from __future__ import annotations

import cProfile
import signal
import sys
from types import FrameType

from rendezvous.cli import main as rendezvous_main


def main() -> int:
    out, argv = sys.argv[1], sys.argv[2:]
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
        profiler.dump_stats(out)


if __name__ == "__main__":
    sys.exit(main())
