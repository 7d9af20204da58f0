"""The scale suite's measurements: rendezvous instances as real processes, pairs held
across them by the worker pool, relay latency and memory at each load, the limit that
stopped a load, and a cProfile summary of an instance under load."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import os
import pstats
import resource
import signal
import sys
import time
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psutil
from aiohttp import ClientError, ClientSession

from . import limits
from .loadgen_pool import LoadPool, OpenOutcome, RelayOutcome
from .procs import REPO, BenchError, Server, running
from .targets import Spread

RATE_LIMIT_OFF = 10_000_000
FD_MARGIN = 64
"""An instance this close to its descriptor limit is taken to have hit it."""
SOCKET_RESERVE = 100
"""Descriptors an instance needs besides its sockets (listener, database, Redis, log...)."""
MIB = 1024 * 1024
IDLE = "'poll' of 'select.epoll'"
PROJECT = ("rendezvous", "orbitcore")


@dataclass(frozen=True)
class InstanceSetup:
    database: str
    """`:memory:`, a SQLite file, or a `postgresql://` URL."""
    redis_url: str = ""
    log_level: str = "info"


def instance_argv(
    setup: InstanceSetup, number: int, gc_log: Path, profile: Path | None = None
) -> list[str]:
    """One rendezvous instance (`orbit-rendezvous`'s own `main`, in
    `bench.instrumented_rendezvous`, which logs its full garbage collections to `gc_log`),
    its limits raised for the bench; with `profile`, under a cProfile that `profiling()`
    switches on."""
    module = ["-m", "bench.instrumented_rendezvous", str(gc_log), str(profile or "-")]
    argv = [
        sys.executable,
        *module,
        *("--host", "127.0.0.1", "--port", "0"),
        *("--database", setup.database, "--log-level", setup.log_level),
        *("--token-rate-limit-per-hour", str(RATE_LIMIT_OFF)),
        *("--join-rate-limit-per-hour", str(RATE_LIMIT_OFF)),
    ]
    if setup.redis_url:
        argv += ["--redis-url", setup.redis_url, "--instance-name", f"bench-{number}"]
    return argv


@contextlib.asynccontextmanager
async def instances(
    count: int, setup: InstanceSetup, logs: Path, tag: str, profile: Path | None = None
) -> AsyncIterator[list[Server]]:
    """`count` instances sharing `setup`'s database and Redis; the first one under
    cProfile when `profile` is given. Started one after the other (the first runs the
    migrations)."""
    async with contextlib.AsyncExitStack() as stack:
        servers = []
        for number in range(count):
            log = logs / f"{tag}-{number}.log"
            argv = instance_argv(setup, number, gc_log_of(log), profile if number == 0 else None)
            servers.append(await stack.enter_async_context(running(f"{tag}-{number}", argv, log)))
        yield servers


@contextlib.contextmanager
def profiling(server: Server | None) -> Iterator[None]:
    """Profile `server` (started with `profile`) for the length of the block."""
    if server is not None:
        os.kill(server.pid, signal.SIGUSR1)
    try:
        yield
    finally:
        if server is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(server.pid, signal.SIGUSR2)


def gc_log_of(log: Path) -> Path:
    """Where an instance logging to `log` logs its full garbage collections."""
    return log.with_suffix(".gc.jsonl")


@dataclass(frozen=True)
class Pauses:
    """Full garbage collections of the instances: while relaying, and since they started."""

    relaying: int
    relaying_max_ms: float
    all: int
    all_max_ms: float
    all_total_ms: float
    stalls_relaying: int = 0
    """Event-loop wake-ups over 10 ms late while relaying (any cause), over the instances."""
    stalls_relaying_max_ms: float = 0.0

    @classmethod
    def of(cls, servers: Sequence[Server], start: float, end: float) -> Pauses:
        pauses: list[tuple[float, float]] = []
        stalls: list[float] = []
        for server in servers:
            with contextlib.suppress(OSError):
                for line in gc_log_of(server.log_path).read_text().splitlines():
                    entry = json.loads(line)
                    if "stall_ms" in entry:
                        if start <= float(entry["t"]) <= end:
                            stalls.append(float(entry["stall_ms"]))
                    else:
                        pauses.append((float(entry["t"]), float(entry["ms"])))
        during = [ms for t, ms in pauses if start <= t <= end]
        every = [ms for _t, ms in pauses]
        return cls(
            relaying=len(during),
            relaying_max_ms=max(during, default=0.0),
            all=len(every),
            all_max_ms=max(every, default=0.0),
            all_total_ms=sum(every),
            stalls_relaying=len(stalls),
            stalls_relaying_max_ms=max(stalls, default=0.0),
        )


def fd_limit() -> int:
    """The descriptors a process started by the bench may hold (the hard limit, which
    `procs` raises the soft one to)."""
    return resource.getrlimit(resource.RLIMIT_NOFILE)[1]


def over_descriptors(pairs: int, count: int) -> str:
    """Why `pairs` pairs split over `count` instances cannot be held, or ''."""
    per_instance = -(-2 * pairs // count) + SOCKET_RESERVE
    if per_instance <= fd_limit():
        return ""
    return (
        f"limit: descriptors: {pairs:,} pairs on {count} instance(s) need "
        f"{per_instance:,} descriptors per instance, over the {fd_limit():,} a process may hold"
    )


@dataclass(frozen=True)
class Load:
    """One load held: `pairs_requested` pairs over `instances` instances."""

    label: str
    instances: int
    pairs_requested: int
    pairs_open: int
    held: bool
    stopped_by: str
    """'' when held; else the limit or failure that stopped it, as a sentence."""
    setup_failures: dict[str, int]
    setup_seconds: float
    server_open_sockets: int
    server_fds: list[int]
    rss_idle_mib: float
    rss_open_mib: float
    rss_per_pair_kib: float
    relay: RelayOutcome | None
    server_cpu_percent: float
    loadgen_cpu_percent: float
    p99_each_round_ms: list[float] = field(default_factory=list)
    gc: Pauses | None = None
    """The instances' full garbage collections (None for the bare aiohttp baseline)."""


def not_run(label: str, count: int, pairs: int, why: str) -> Load:
    return Load(label, count, pairs, 0, False, why, {}, 0.0, 0, [], 0.0, 0.0, 0.0, None, 0.0, 0.0)


def _fds(server: Server) -> tuple[int, int]:
    try:
        ps = psutil.Process(server.pid)
        return ps.num_fds(), ps.rlimit(psutil.RLIMIT_NOFILE)[0]
    except psutil.Error:
        return 0, 0


def stopped_by(
    opened: OpenOutcome, requested: int, relay: RelayOutcome | None, servers: Sequence[Server]
) -> str:
    """The reason a load was not held, '' if it was: a limit first (in the load generator,
    then an instance's descriptors), else the first failure or the lost probes."""
    for limit, count in sorted(opened.limits.items()):
        return f"limit: {limit} in the load generator ({count:,} failures: {opened.first_failure})"
    for number, server in enumerate(servers):
        held, most = _fds(server)
        logged = server.log_path.read_text(errors="replace") if server.log_path.exists() else ""
        if (most and held >= most - FD_MARGIN) or "Too many open files" in logged:
            return (
                f"limit: {limits.DESCRIPTORS}: instance {number} holds {held:,} of the "
                f"{most:,} descriptors a process may hold"
            )
    if opened.open < requested:
        failed = sum(opened.failures.values())
        missing = requested - opened.open
        return f"{missing:,} pairs not opened ({failed:,} failed: {opened.first_failure})"
    if relay is not None and relay.lost:
        return f"{relay.lost:,} of {relay.sent:,} probes not delivered"
    return ""


def rss_mib(servers: Sequence[Server]) -> float:
    return sum(s.rss_bytes() for s in servers) / MIB


def cpu_seconds(servers: Sequence[Server]) -> float:
    return sum(s.cpu_seconds() for s in servers)


@dataclass(frozen=True)
class RelayPlan:
    probes: int
    per_second: float
    payload_bytes: int
    drain_timeout: float
    setup_concurrency: int
    repeats: int = 1
    """Relay rounds at each load; the one with the median p99 is reported (a burst of
    another program's work on the machine spoils one round, not the figure)."""


async def hold(
    label: str,
    pool: LoadPool,
    servers: Sequence[Server],
    pairs: int,
    plan: RelayPlan,
    rss_idle_mib: float,
    count_sockets: bool = True,
    profiled: Server | None = None,
) -> Load:
    """Open pairs in `pool` up to `pairs` in all, then relay probes across them (with
    `profiled`, that instance is profiled while relaying)."""
    opened = await pool.open(pairs - pool.next_index, plan.setup_concurrency)
    await asyncio.sleep(1.0)  # the servers settle (closing handshakes, GC)
    rss_open = rss_mib(servers)
    sockets = 0
    if count_sockets:
        with contextlib.suppress(BenchError, ClientError, OSError, ValueError):
            async with ClientSession() as http:
                sockets = await Spread([s.url for s in servers]).open_sockets(http)
    fds = [_fds(s)[0] for s in servers]
    relay = None
    wall, server_cpu, own_cpu = time.perf_counter(), cpu_seconds(servers), pool.cpu_seconds()
    relay_start = time.perf_counter()
    rounds: list[RelayOutcome] = []
    if opened.open:
        with profiling(profiled):
            for _ in range(plan.repeats):
                rounds.append(
                    await pool.relay(
                        plan.probes, plan.per_second, plan.payload_bytes, plan.drain_timeout
                    )
                )
        ranked = sorted(rounds, key=lambda r: (r.lost > 0, r.latency_ms.p99))
        relay = ranked[(len(ranked) - 1) // 2] if not any(r.lost for r in rounds) else ranked[-1]
    relay_end = time.perf_counter()
    wall = max(relay_end - wall, 1e-9)
    why = stopped_by(opened, pairs, relay, servers)
    return Load(
        label=label,
        instances=len(servers),
        pairs_requested=pairs,
        pairs_open=opened.open,
        held=not why,
        stopped_by=why,
        setup_failures=opened.failures,
        setup_seconds=opened.seconds,
        server_open_sockets=sockets,
        server_fds=fds,
        rss_idle_mib=rss_idle_mib,
        rss_open_mib=rss_open,
        rss_per_pair_kib=(rss_open - rss_idle_mib) * 1024 / max(opened.open, 1),
        relay=relay,
        server_cpu_percent=100 * (cpu_seconds(servers) - server_cpu) / wall,
        loadgen_cpu_percent=100 * (pool.cpu_seconds() - own_cpu) / wall,
        gc=Pauses.of(servers, relay_start, relay_end) if count_sockets else None,
        p99_each_round_ms=[r.latency_ms.p99 for r in rounds],
    )


def profile_summary(path: Path, top: int = 12) -> dict[str, Any]:
    """Where a profiled instance's time went: its busy seconds (the event loop's wait in
    epoll left out), the functions with the most time of their own, as a share of the busy
    time, and the project's own functions (rendezvous/, orbitcore/) by cumulative time."""
    if not path.exists():
        return {}
    stats = pstats.Stats(str(path), stream=io.StringIO())
    entries = stats.stats.items()  # type: ignore[attr-defined]
    idle = sum(e[2] for (_f, _l, func), e in entries if IDLE in func)
    busy = max(stats.total_tt - idle, 1e-9)  # type: ignore[attr-defined]
    rows = []
    for (file, line, func), entry in entries:
        _calls, ncalls, tottime, cumtime, _callers = entry
        if IDLE in func:
            continue
        rows.append(
            {
                "function": f"{_short(file)}:{line}({func})",
                "calls": ncalls,
                "own_seconds": round(tottime, 4),
                "own_percent": round(100 * tottime / busy, 1),
                "cumulative_seconds": round(cumtime, 4),
                "cumulative_percent": round(100 * cumtime / busy, 1),
                "project": any(f"{REPO}/{p}/" in file for p in PROJECT),
            }
        )
    own = sorted(rows, key=lambda r: -float(r["own_seconds"]))[:top]
    project = [r for r in rows if r["project"]]
    project.sort(key=lambda r: -float(r["cumulative_seconds"]))
    return {"busy_seconds": round(busy, 3), "own": own, "project_cumulative": project[:top]}


def _short(file: str) -> str:
    for marker in ("site-packages/", "/lib/python3.", f"{REPO}/"):
        if marker in file:
            return file.split(marker, 1)[1]
    return file
