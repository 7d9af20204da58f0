"""One load-generator worker: a process holding its share of the pairs (both ends of each,
so a probe's latency is measured on one clock), driven by `bench.loadgen_pool`.

Run as `python -m bench.loadgen_worker --source-ip 127.0.0.N`; it reads one JSON command
a line on stdin and answers each with one JSON line on stdout:

  {"op": "open", "urls": [...], "kind": "rendezvous" | "baseline", "first": i,
   "count": n, "concurrency": c, "give_up_after": f, "connect_timeout": s}
      seat and connect pairs i .. i+n-1 (added to those already open)
  {"op": "relay", "start_ns": t, "probes": n, "interval_s": d, "payload_bytes": b,
   "drain_timeout": s}
      from perf_counter_ns() == t, send n probes host to guest, one every d seconds,
      round-robin over the open pairs; wait for them; answer their latencies
  {"op": "close"}   close every socket, answer, exit

Its sockets are bound to its own loopback address (`--source-ip`), so each worker has the
whole ephemeral port range to itself. A command that fails is answered {"error": ...}.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import json
import sys
from typing import Any

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from .pairs import Inbox, Pairs
from .procs import BenchError, raise_fd_limit
from .rendezvous_load import send_paced
from .targets import Baseline, Spread, Target

HTTP_TIMEOUT = ClientTimeout(total=30.0)


def make_target(kind: str, urls: list[str]) -> Target:
    if kind == "baseline":
        return Baseline(urls[0])
    if kind == "rendezvous":
        return Spread(urls)
    raise BenchError(f"unknown target kind {kind!r}")


class Worker:
    def __init__(self, source_ip: str) -> None:
        self.source_ip = source_ip
        self.pairs = Pairs()
        self.target: Target | None = None
        self._http: ClientSession | None = None
        self._wss: ClientSession | None = None

    def _sessions(self, concurrency: int) -> tuple[ClientSession, ClientSession]:
        if self._http is None or self._wss is None:
            bind = (self.source_ip, 0)
            http = TCPConnector(limit=concurrency, local_addr=bind)
            wss = TCPConnector(limit=0, local_addr=bind)  # a WebSocket holds its connection
            self._http = ClientSession(connector=http, timeout=HTTP_TIMEOUT)
            self._wss = ClientSession(connector=wss, timeout=HTTP_TIMEOUT)
        return self._http, self._wss

    async def open(self, cmd: dict[str, Any]) -> dict[str, Any]:
        self.target = self.target or make_target(str(cmd["kind"]), list(cmd["urls"]))
        http, wss = self._sessions(int(cmd["concurrency"]))
        before = len(self.pairs.pairs)
        await self.pairs.open(
            self.target,
            http,
            wss,
            int(cmd["count"]),
            int(cmd["concurrency"]),
            first_index=int(cmd["first"]),
            give_up_after=int(cmd["give_up_after"]),
            connect_timeout=float(cmd["connect_timeout"]),
        )
        pairs = self.pairs
        gc.collect()
        gc.freeze()  # the sockets held stay out of the collector's full passes (pauses
        # of tens of ms with thousands of sockets, which the probes would measure)
        return {
            "open": len(pairs.pairs),
            "new": len(pairs.pairs) - before,
            "failures": dict(pairs.failures),
            "first_failure": pairs.first_failure,
            "limits": dict(pairs.limits),
            "skipped": pairs.skipped,
        }

    async def relay(self, cmd: dict[str, Any]) -> dict[str, Any]:
        inbox = self.pairs.inbox = Inbox()
        sent, errors, lag_ms = await send_paced(
            self.pairs,
            int(cmd["probes"]),
            started=int(cmd["start_ns"]) / 1e9,
            interval=float(cmd["interval_s"]),
            pad="x" * int(cmd["payload_bytes"]),
        )
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(float(cmd["drain_timeout"])):
                await inbox.delivery_of(sent)
        return {
            "sent": sent,
            "send_errors": errors,
            "lag_ms": lag_ms,
            "latencies_ms": [round(v, 4) for v in inbox.latencies_ms],
            "misrouted": inbox.misrouted,
            "duplicates": inbox.duplicates,
            "errors": dict(inbox.errors),
            "kinds": dict(inbox.kinds),
            "open_sockets": self.pairs.open_sockets,
        }

    async def close(self, cmd: dict[str, Any] | None = None) -> dict[str, Any]:
        seconds = await self.pairs.close()
        for session in (self._http, self._wss):
            if session is not None:
                await session.close()
        return {
            "seconds": seconds,
            "unexpected_closes": self.pairs.unexpected_closes,
            "close_codes": dict(self.pairs.close_codes),
        }


async def serve(source_ip: str) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 24)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    worker = Worker(source_ip)
    ops = {"open": worker.open, "relay": worker.relay, "close": worker.close}
    while line := await reader.readline():
        cmd = json.loads(line)
        op = str(cmd.get("op"))
        try:
            answer = await ops[op](cmd)
        except (BenchError, ClientError, OSError, KeyError, ValueError, MemoryError) as exc:
            answer = {"error": f"{op}: {type(exc).__name__}: {exc}"}
        sys.stdout.write(json.dumps(answer) + "\n")
        sys.stdout.flush()
        if op == "close":
            return
    await worker.close()  # the pool went away


def main() -> None:
    parser = argparse.ArgumentParser(
        description="A load-generator worker (see bench.loadgen_pool)."
    )
    parser.add_argument("--source-ip", default="127.0.0.1")
    raise_fd_limit()
    asyncio.run(serve(parser.parse_args().source_ip))


if __name__ == "__main__":
    main()
