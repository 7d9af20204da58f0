"""The daemon's event loop: asyncio's own, or uvloop (setting `event_loop`).

A daemon moving a file spends its time in the event loop's plumbing: one datagram
sent and received per SCTP packet, a wake-up per acknowledgement, an HTTP body per
slice. Measured on one loaded machine in the same runs (`bench files`): a bare aiortc
pair with large packets moved 512 MiB at 109-131 MB/s on asyncio's loop and 295-387
MB/s on uvloop, with 45 % less CPU; two daemons moving 512 MiB used 35 % less CPU on
uvloop (sender 3.0-3.4 s instead of 4.8-5.4). It costs the idle daemon 2.3 MiB of
resident memory (42.0 MiB instead of 39.7, over the 40 MiB target of `bench orbitd`),
so asyncio stays the default and uvloop is an extra (`chatorbit[uvloop]`; no Windows
build).
"""

from __future__ import annotations

import asyncio
import importlib.util
import logging
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")
UVLOOP_MISSING = "event_loop: uvloop is not installed (pip install 'chatorbit[uvloop]')"

log = logging.getLogger("orbitd")


def available(name: str) -> bool:
    return name == "asyncio" or importlib.util.find_spec(name) is not None


def loop_factory(name: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """What makes a loop of `name` (None: asyncio's default); ImportError without uvloop."""
    if name == "asyncio":
        return None
    import uvloop

    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T], name: str) -> T:
    """`asyncio.run(main)` on the event loop `name` (`asyncio` or `uvloop`)."""
    factory = loop_factory(name)
    log.info("event loop", extra={"fields": {"loop": name}})
    with asyncio.Runner(loop_factory=factory) as runner:
        return runner.run(main)
