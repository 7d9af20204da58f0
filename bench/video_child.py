"""Child processes spoken to in JSON lines over their stdin and stdout, and CPU meters.

`bench.video_peer` and `tests.media_peer` both print {"ready": true, "pid"} first,
then answer commands a line at a time. Their stderr goes to a log file. Like the
servers of `bench.procs`, they die with the benchmark (PR_SET_PDEATHSIG) and are
stopped (SIGTERM, then SIGKILL) when their block ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import time
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path
from typing import Any

import psutil

from .procs import REPO, BenchError, _child_setup, stop, tail

START_TIMEOUT = 30.0
ANSWER_TIMEOUT = 20.0
QUIT_TIMEOUT = 3.0


class Child:
    def __init__(self, name: str, proc: asyncio.subprocess.Process, log_path: Path) -> None:
        self.name, self.proc, self.log_path = name, proc, log_path
        self.ps = psutil.Process(proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def send(self, message: dict[str, Any]) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(json.dumps(message).encode() + b"\n")

    async def receive(self, seconds: float = ANSWER_TIMEOUT) -> dict[str, Any]:
        assert self.proc.stdout is not None
        try:
            async with asyncio.timeout(seconds):
                line = await self.proc.stdout.readline()
        except TimeoutError:
            raise BenchError(f"{self.name}: no answer in {seconds:g} s") from None
        if not line:
            raise BenchError(f"{self.name} exited; its log: {tail(self.log_path)}")
        try:
            answer = json.loads(line)
        except ValueError:
            answer = None
        if not isinstance(answer, dict):
            raise BenchError(f"{self.name}: not a JSON object: {line[:200]!r}")
        if "error" in answer:
            raise BenchError(f"{self.name}: {answer['error']}")
        return answer

    async def request(self, message: dict[str, Any], seconds: float = ANSWER_TIMEOUT) -> Any:
        self.send(message)
        return await self.receive(seconds)

    def cpu_seconds(self) -> float:
        return process_cpu(self.ps, self.name)


def process_cpu(ps: psutil.Process, name: str) -> float:
    try:
        times = ps.cpu_times()
    except psutil.Error as exc:
        raise BenchError(f"{name} (pid {ps.pid}) is gone: {exc}") from None
    return float(times.user + times.system)


async def _spawn(name: str, argv: Sequence[str], log_path: Path) -> Child:
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.PIPE,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=REPO,
            env=os.environ | {"PYTHONUNBUFFERED": "1"},
            preexec_fn=_child_setup,
            limit=1 << 22,  # a line of latencies
        )
    return Child(name, proc, log_path)


async def _ready(peer: Child) -> None:
    first = await peer.receive(START_TIMEOUT)
    if not first.get("ready"):
        raise BenchError(f"{peer.name} did not start: {first}")


async def _quit(proc: asyncio.subprocess.Process) -> None:
    """Ask it to quit, then make sure (`bench.procs.stop`)."""
    if proc.returncode is None and proc.stdin is not None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            proc.stdin.write(b'{"cmd": "quit"}\n')
            await asyncio.wait_for(proc.wait(), QUIT_TIMEOUT)
    await stop(proc)


@contextlib.asynccontextmanager
async def children(*specs: tuple[str, Sequence[str], Path]) -> AsyncIterator[list[Child]]:
    """Start every (name, argv, log path) at once, wait until each is ready, stop them all
    after."""
    started: list[Child] = []
    try:
        for name, argv, log_path in specs:
            started.append(await _spawn(name, argv, log_path))
        ready = [asyncio.ensure_future(_ready(peer)) for peer in started]
        try:
            await asyncio.gather(*ready)
        finally:
            for task in ready:
                task.cancel()
        yield started
    finally:
        await asyncio.gather(*(_quit(peer.proc) for peer in started))


@contextlib.asynccontextmanager
async def child(name: str, argv: Sequence[str], log_path: Path) -> AsyncIterator[Child]:
    async with children((name, argv, log_path)) as (peer,):
        yield peer


OTHERS = "others on the machine"


class CpuWindow:
    """CPU time of named processes over one stretch of wall time, as % of one core;
    and, as OTHERS, what every process outside this benchmark's tree (this process
    and all its descendants) used meanwhile: a busy machine skews the figures."""

    def __init__(self, meters: dict[str, Callable[[], float]]) -> None:
        self.meters = meters | {"_tree": tree_cpu(), "_busy": machine_busy}
        self.wall = time.perf_counter()
        self.start = {name: read() for name, read in self.meters.items()}

    def read(self) -> tuple[float, dict[str, float]]:
        """(wall seconds, {name: CPU %})."""
        end = {name: read() for name, read in self.meters.items()}
        wall = max(time.perf_counter() - self.wall, 1e-9)
        used = {name: 100 * (end[name] - self.start[name]) / wall for name in end}
        others = used.pop("_busy") - used.pop("_tree")
        return wall, used | {OTHERS: max(0.0, others)}


def machine_busy() -> float:
    """CPU seconds every core of the machine spent busy (guest time is in user)."""
    t = psutil.cpu_times()
    return float(t.user + t.nice + t.system + getattr(t, "irq", 0) + getattr(t, "softirq", 0))


def tree_cpu() -> Callable[[], float]:
    """A meter of this process and all its descendants, summed (see `descendants_cpu`)."""
    below = descendants_cpu(("",))

    def read() -> float:
        return process_cpu(psutil.Process(), "this process") + below()

    return read


def descendants_cpu(names: tuple[str, ...]) -> Callable[[], float]:
    """A meter of every process below this one whose name has one of `names` in it
    (Chromium's browser, renderers, GPU and utility processes), summed; a process
    seen once and gone since keeps its last reading."""
    seen: dict[int, float] = {}

    def read() -> float:
        for ps in psutil.Process().children(recursive=True):
            try:
                if any(n in ps.name() for n in names):
                    times = ps.cpu_times()
                    seen[ps.pid] = float(times.user + times.system)
            except psutil.Error:
                continue
        return sum(seen.values())

    return read
