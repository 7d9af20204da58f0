"""The load generator spread over worker processes (`bench.loadgen_worker`).

One process may hold at most 20,000 descriptors here (a hard limit), and each pair costs
the load generator two sockets, so one process cannot hold 10,000 pairs. The pool gives
each worker at most PAIRS_PER_WORKER pairs (both ends of each) and its own loopback
source address (127.0.0.2, .3, ...), so neither the descriptor limit nor the ephemeral
port range of one address binds the load generator. The workers pace their probes
from one start time on the shared monotonic clock, and send their latencies back.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import math
import signal
import time
from collections import Counter
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from .procs import REPO, BenchError, python_module, stop, tail
from .stats import Summary

PAIRS_PER_WORKER = 2000
"""4,000 sockets a worker: far under the 20,000 descriptors a process may hold."""
GIVE_UP_AFTER = 100
"""Failed pairs after which a worker stops opening more (a limit is reached: waiting
for the rest to time out too would only take minutes)."""
CONNECT_TIMEOUT = 15.0
START_AHEAD = 0.3  # seconds between sending the relay command and the first probe
ANSWER_TIMEOUT = 600.0


def workers_for(pairs: int) -> int:
    return max(1, math.ceil(pairs / PAIRS_PER_WORKER))


def shares(count: int, parts: int) -> list[int]:
    """`count` split into `parts` shares that differ by at most one, largest first."""
    base, extra = divmod(count, parts)
    return [base + (i < extra) for i in range(parts)]


@dataclass(frozen=True)
class OpenOutcome:
    open: int
    """Pairs open in all, after this step."""
    failures: dict[str, int]
    first_failure: str
    limits: dict[str, int]
    """Failures that named a limit (descriptors, ports, memory), in the load generator."""
    skipped: int
    seconds: float


@dataclass(frozen=True)
class RelayOutcome:
    sent: int
    send_errors: int
    delivered: int
    lost: int
    misrouted: int
    duplicates: int
    server_errors: dict[str, int]
    latency_ms: Summary
    sender_max_lag_ms: float
    """How far the slowest worker fell behind its schedule: above a few ms, the load
    generator itself lags."""
    client_open_sockets: int


@dataclass
class _Worker:
    number: int
    proc: asyncio.subprocess.Process
    log: Path
    ps: Any

    async def call(self, cmd: dict[str, Any]) -> dict[str, Any]:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.proc.stdin.write((json.dumps(cmd) + "\n").encode())
        await self.proc.stdin.drain()
        async with asyncio.timeout(ANSWER_TIMEOUT):
            line = await self.proc.stdout.readline()
        if not line:
            code = await self.proc.wait()
            if code == -signal.SIGKILL:
                raise BenchError(
                    f"limit: memory? load-generator worker {self.number} was killed (SIGKILL, "
                    "what the kernel does when memory runs out)"
                )
            raise BenchError(
                f"load-generator worker {self.number} exited ({code}): {tail(self.log)}"
            )
        answer: dict[str, Any] = json.loads(line)
        if "error" in answer:
            raise BenchError(f"load-generator worker {self.number}: {answer['error']}")
        return answer


class LoadPool:
    """Workers holding pairs against one kind of target (see `loadgen_worker`)."""

    def __init__(self, workers: list[_Worker], kind: str, urls: Sequence[str]) -> None:
        self.workers = workers
        self.kind = kind
        self.urls = list(urls)
        self.next_index = 0

    async def _each(self, cmds: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return list(
            await asyncio.gather(*(w.call(c) for w, c in zip(self.workers, cmds, strict=True)))
        )

    async def open(self, count: int, concurrency: int) -> OpenOutcome:
        """Seat and connect `count` more pairs, spread over the workers."""
        started = time.perf_counter()
        cmds = []
        per_worker_concurrency = max(1, math.ceil(concurrency / len(self.workers)))
        for share in shares(count, len(self.workers)):
            cmds.append(
                {
                    "op": "open",
                    "kind": self.kind,
                    "urls": self.urls,
                    "first": self.next_index,
                    "count": share,
                    "concurrency": per_worker_concurrency,
                    "give_up_after": GIVE_UP_AFTER,
                    "connect_timeout": CONNECT_TIMEOUT,
                }
            )
            self.next_index += share
        answers = await self._each(cmds)
        failures: Counter[str] = Counter()
        limits: Counter[str] = Counter()
        for answer in answers:
            failures.update(answer["failures"])
            limits.update(answer["limits"])
        return OpenOutcome(
            open=sum(a["open"] for a in answers),
            failures=dict(failures),
            first_failure=next((a["first_failure"] for a in answers if a["first_failure"]), ""),
            limits=dict(limits),
            skipped=sum(a["skipped"] for a in answers),
            seconds=time.perf_counter() - started,
        )

    async def relay(
        self, probes: int, per_second: float, payload_bytes: int, drain_timeout: float
    ) -> RelayOutcome:
        """`probes` probes in all at `per_second`, each worker sending its share evenly
        over the same stretch of time."""
        duration = probes / per_second
        start_ns = time.perf_counter_ns() + int(START_AHEAD * 1e9)
        cmds = []
        for share in shares(probes, len(self.workers)):
            cmds.append(
                {
                    "op": "relay",
                    "start_ns": start_ns,
                    "probes": share,
                    "interval_s": duration / max(share, 1),
                    "payload_bytes": payload_bytes,
                    "drain_timeout": drain_timeout,
                }
            )
        answers = await self._each(cmds)
        latencies = [v for a in answers for v in a["latencies_ms"]]
        errors: Counter[str] = Counter()
        for answer in answers:
            errors.update(answer["errors"])
        sent = sum(a["sent"] for a in answers)
        return RelayOutcome(
            sent=sent,
            send_errors=sum(a["send_errors"] for a in answers),
            delivered=len(latencies),
            lost=sent - len(latencies),
            misrouted=sum(a["misrouted"] for a in answers),
            duplicates=sum(a["duplicates"] for a in answers),
            server_errors=dict(errors),
            latency_ms=Summary.of(latencies),
            sender_max_lag_ms=max(a["lag_ms"] for a in answers),
            client_open_sockets=sum(a["open_sockets"] for a in answers),
        )

    def cpu_seconds(self) -> float:
        total = 0.0
        for worker in self.workers:
            with contextlib.suppress(psutil.Error):
                times = worker.ps.cpu_times()
                total += times.user + times.system
        return total

    async def close(self) -> float:
        """Close every socket; the seconds the slowest worker took."""
        answers = await self._each([{"op": "close"}] * len(self.workers))
        return max(float(a["seconds"]) for a in answers)


@contextlib.asynccontextmanager
async def load_pool(
    workers: int, kind: str, urls: Sequence[str], logs: Path
) -> AsyncIterator[LoadPool]:
    """`workers` worker processes (stopped after), for a target of `kind`
    ("rendezvous": the instances at `urls`; "baseline")."""
    started: list[_Worker] = []
    try:
        for number in range(workers):
            log = logs / f"loadgen-{number}.log"
            source_ip = f"127.0.0.{2 + number}"
            argv = python_module("bench.loadgen_worker", "--source-ip", source_ip)
            with log.open("wb") as err:
                proc = await asyncio.create_subprocess_exec(
                    *argv,
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=err,
                    cwd=REPO,
                    limit=1 << 26,  # a worker's answer holds every latency it measured
                )
            started.append(_Worker(number, proc, log, psutil.Process(proc.pid)))
        yield LoadPool(started, kind, urls)
    finally:
        for worker in started:
            if worker.proc.stdin is not None:
                worker.proc.stdin.close()
        await asyncio.gather(*(stop(w.proc) for w in started))
