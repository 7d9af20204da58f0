"""Server subprocesses: start one, learn its URL, sample its RSS and CPU, stop it."""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import re
import resource
import signal
import sys
from collections import Counter
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil

REPO = Path(__file__).resolve().parent.parent
LISTENING = re.compile(r"listening on (http://127\.0\.0\.1:\d+)")
START_TIMEOUT = 30.0
STOP_TIMEOUT = 10.0
PR_SET_PDEATHSIG = 1

try:  # loaded here, not in the forked child, where loading a library is not safe
    _LIBC: ctypes.CDLL | None = ctypes.CDLL(None, use_errno=True)
except OSError:  # pragma: no cover - not Linux
    _LIBC = None


class BenchError(Exception):
    """The benchmark could not run (a server did not start, a request failed)."""


def raise_fd_limit() -> int:
    """Raise this process's open-file limit to the hard limit; return the new soft limit."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        with contextlib.suppress(ValueError, OSError):
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def _child_setup() -> None:
    """Runs in the child before exec: more file descriptors, and die with the bench."""
    raise_fd_limit()
    if _LIBC is not None:
        _LIBC.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Server:
    name: str
    url: str
    proc: asyncio.subprocess.Process
    log_path: Path
    _ps: Any = field(repr=False)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def rss_bytes(self) -> int:
        try:
            return int(self._ps.memory_info().rss)
        except psutil.Error as exc:
            raise BenchError(f"{self.name} (pid {self.pid}) is gone: {exc}") from None

    def cpu_seconds(self) -> float:
        try:
            times = self._ps.cpu_times()
        except psutil.Error as exc:
            raise BenchError(f"{self.name} (pid {self.pid}) is gone: {exc}") from None
        return float(times.user + times.system)

    def peak_rss_bytes(self) -> int:
        """VmHWM: the most resident memory the process has had."""
        try:
            status = Path(f"/proc/{self.pid}/status").read_text()
        except OSError:
            return 0
        found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
        return int(found.group(1)) * 1024 if found else 0


async def _drain(stream: asyncio.StreamReader) -> None:
    while await stream.readline():
        pass


async def _read_url(stream: asyncio.StreamReader, ready: re.Pattern[str]) -> str:
    while line := await stream.readline():
        found = ready.search(line.decode(errors="replace"))
        if found:
            return found.group(1)
    raise BenchError("the server exited before it was listening")


@contextlib.asynccontextmanager
async def running(
    name: str,
    argv: Sequence[str],
    log_path: Path,
    *,
    ready: re.Pattern[str] = LISTENING,
    env: Mapping[str, str] | None = None,
) -> AsyncIterator[Server]:
    """Start `argv`, a server that prints a line matching `ready` once it serves (by
    default `listening on http://127.0.0.1:PORT`); stop it after. The server's `url` is
    the pattern's first group; `env` is added to this process's environment."""
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            *argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
            cwd=REPO,
            env=os.environ | {"PYTHONUNBUFFERED": "1"} | dict(env or {}),
            preexec_fn=_child_setup,
        )
    drain: asyncio.Task[None] | None = None
    try:
        assert proc.stdout is not None
        try:
            async with asyncio.timeout(START_TIMEOUT):
                url = await _read_url(proc.stdout, ready)
        except (TimeoutError, BenchError) as exc:
            why = str(exc) or f"no port reported in {START_TIMEOUT:.0f} s"
            raise BenchError(f"{name} did not start: {why}; its log: {tail(log_path)}") from None
        drain = asyncio.create_task(_drain(proc.stdout))
        yield Server(name, url, proc, log_path, psutil.Process(proc.pid))
    finally:
        await stop(proc)
        if drain is not None:
            drain.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await drain


async def stop(proc: asyncio.subprocess.Process) -> None:
    """SIGTERM, then SIGKILL if it has not exited in STOP_TIMEOUT seconds."""
    if proc.returncode is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(signal.SIGTERM)
    try:
        await asyncio.wait_for(proc.wait(), STOP_TIMEOUT)
    except TimeoutError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        await proc.wait()
    except asyncio.CancelledError:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        raise


def tail(path: Path, lines: int = 5) -> str:
    try:
        return " | ".join(path.read_text(errors="replace").splitlines()[-lines:]) or "(empty)"
    except OSError:
        return "(no log)"


def log_summary(path: Path, keep: int = 5) -> dict[str, Any]:
    """Lines by level of a JSON-lines log, and the first few warnings and errors."""
    levels: Counter[str] = Counter()
    notable: list[str] = []
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return {"levels": {}, "notable": []}
    for line in text.splitlines():
        try:
            entry = json.loads(line)
            level = str(entry.get("level", "?")) if isinstance(entry, dict) else "text"
        except ValueError:
            level = "text"
        levels[level] += 1
        if level not in {"info", "debug"} and len(notable) < keep:
            notable.append(line[:300])
    return {"levels": dict(levels), "notable": notable}


def python_module(module: str, *args: str) -> list[str]:
    return [sys.executable, "-m", module, *args]


MIB = 1024 * 1024


@dataclass(frozen=True)
class RssPair:
    """Resident memory of two processes at one moment, in MiB (the first one, then the
    second: the host and the guest daemon, or the offering and the answering peer)."""

    first_mib: float
    second_mib: float

    @classmethod
    def of(cls, first: Server, second: Server) -> RssPair:
        return cls(first.rss_bytes() / MIB, second.rss_bytes() / MIB)

    @classmethod
    def peak(cls, first: Server, second: Server) -> RssPair:
        return cls(first.peak_rss_bytes() / MIB, second.peak_rss_bytes() / MIB)

    @property
    def mean_mib(self) -> float:
        return (self.first_mib + self.second_mib) / 2

    @property
    def max_mib(self) -> float:
        return max(self.first_mib, self.second_mib)
