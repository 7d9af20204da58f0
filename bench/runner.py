"""What every suite shares: its description, progress on stderr, and how it is run."""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import ClientError

from .procs import BenchError


@dataclass(frozen=True)
class Suite:
    name: str
    summary: str
    default_timeout: float
    """Seconds the suite may take in all, unless --timeout says otherwise."""
    add_options: Callable[[argparse.ArgumentParser], None]
    check: Callable[[argparse.ArgumentParser, argparse.Namespace], None]
    run: Callable[[argparse.Namespace], Awaitable[object]]


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


async def _guarded(suite: Suite, args: argparse.Namespace, seconds: float) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # stop the servers on the way out
    try:
        async with asyncio.timeout(seconds):
            await suite.run(args)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def run_suite(suite: Suite, args: argparse.Namespace) -> int:
    """Run one suite on its own event loop: 0 when it measured (whether or not the
    targets were met), 1 when it could not, 130 when interrupted."""
    seconds = args.timeout if args.timeout is not None else suite.default_timeout
    try:
        asyncio.run(_guarded(suite, args, seconds))
    except (BenchError, ClientError) as exc:
        say(f"{suite.name} failed: {type(exc).__name__}: {exc}")
        return 1
    except TimeoutError:
        say(f"{suite.name}: gave up, the suite took longer than {seconds:g} s (--timeout)")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted")
        return 130
    return 0
