"""Open session pairs held by the load generator: their sockets, readers and inbox.

Both ends of every pair live in this process, so a message's one-way latency
is the receiver's `perf_counter_ns()` minus the `t` the sender stamped in it.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections import Counter
from dataclasses import dataclass, field

from aiohttp import ClientError, ClientSession, ClientWebSocketResponse, WSMsgType

from .limits import limit_of
from .procs import BenchError
from .targets import Target

CONNECT_TIMEOUT = 30.0
CLOSE_TIMEOUT = 30.0
PROBE_KIND = "sealed"


@dataclass
class Inbox:
    """What the sockets received. Latencies are of probe frames, in milliseconds."""

    latencies_ms: list[float] = field(default_factory=list)
    kinds: Counter[str] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)
    misrouted: int = 0
    duplicates: int = 0
    _seen: set[int] = field(default_factory=set, repr=False)
    _goal: int = 0
    _reached: asyncio.Event = field(default_factory=asyncio.Event, repr=False)

    async def delivery_of(self, expected: int) -> None:
        """Return once `expected` probes in all have arrived."""
        self._goal = expected
        if self.delivered >= expected:
            return
        self._reached.clear()
        await self._reached.wait()

    def take(self, text: str, now_ns: int, pair: int, role: str) -> None:
        try:
            frame = json.loads(text)
        except ValueError:
            self.kinds["(not json)"] += 1
            return
        kind = str(frame.get("type")) if isinstance(frame, dict) else "(not an object)"
        self.kinds[kind] += 1
        if kind == "error":
            self.errors[str(frame.get("code"))] += 1
        if kind != PROBE_KIND:
            return
        if role != "guest" or frame.get("pair") != pair:
            self.misrouted += 1
            return
        seq, sent_ns = frame.get("seq"), frame.get("t")
        if not isinstance(seq, int) or not isinstance(sent_ns, int):
            self.kinds["(malformed probe)"] += 1
            return
        if seq in self._seen:
            self.duplicates += 1
            return
        self._seen.add(seq)
        self.latencies_ms.append((now_ns - sent_ns) / 1e6)
        if self.delivered >= self._goal:
            self._reached.set()

    @property
    def delivered(self) -> int:
        return len(self.latencies_ms)


def probe(pair: int, seq: int, pad: str) -> str:
    """A relayed `sealed` frame stamped with the send time; `pad` is its box, the size of a
    sealed SDP (the rendezvous reads the envelope, so the box must be there)."""
    return json.dumps(
        {
            "type": PROBE_KIND,
            "box": pad,
            "id": f"bench-{seq}",
            "pair": pair,
            "seq": seq,
            "t": time.perf_counter_ns(),
        }
    )


@dataclass
class Pair:
    index: int
    host: ClientWebSocketResponse
    guest: ClientWebSocketResponse


@dataclass
class Pairs:
    """Pairs opened against one target; `close()` ends them all."""

    inbox: Inbox = field(default_factory=Inbox)
    pairs: list[Pair] = field(default_factory=list)
    failures: Counter[str] = field(default_factory=Counter)
    first_failure: str = ""
    close_codes: Counter[str] = field(default_factory=Counter)
    unexpected_closes: int = 0
    limits: Counter[str] = field(default_factory=Counter)
    """Failures that named a limit of the machine (see `bench.limits`), by limit."""
    skipped: int = 0
    _sockets: list[ClientWebSocketResponse] = field(default_factory=list, repr=False)
    _readers: set[asyncio.Task[None]] = field(default_factory=set, repr=False)
    _closing: bool = False

    async def open(
        self,
        target: Target,
        http: ClientSession,
        wss: ClientSession,
        count: int,
        concurrency: int,
        first_index: int = 0,
        give_up_after: int | None = None,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        """Seat and connect `count` pairs, at most `concurrency` at a time; with
        `give_up_after`, the pairs not yet started once that many have failed are
        skipped (counted in `skipped`)."""
        gate = asyncio.Semaphore(concurrency)

        async def one(index: int) -> None:
            async with gate:
                if give_up_after is not None and self.failures.total() >= give_up_after:
                    self.skipped += 1
                    return
                try:
                    async with asyncio.timeout(connect_timeout):
                        await self._open_pair(target, http, wss, index)
                except (
                    BenchError,
                    ClientError,
                    OSError,
                    TimeoutError,
                    ValueError,
                    MemoryError,
                ) as exc:
                    self.failures[type(exc).__name__] += 1
                    self.first_failure = self.first_failure or f"{type(exc).__name__}: {exc}"
                    limit = limit_of(exc)
                    if limit is not None:
                        self.limits[limit] += 1

        await asyncio.gather(*(one(first_index + i) for i in range(count)))

    async def _open_pair(
        self, target: Target, http: ClientSession, wss: ClientSession, index: int
    ) -> None:
        host_url, guest_url = await target.seat_pair(http, index)
        host = await self._connect(wss, host_url, index, "host")
        guest = await self._connect(wss, guest_url, index, "guest")
        self.pairs.append(Pair(index, host, guest))

    async def _connect(
        self, wss: ClientSession, url: str, pair: int, role: str
    ) -> ClientWebSocketResponse:
        ws = await wss.ws_connect(url, autoping=True)
        self._sockets.append(ws)
        reader = asyncio.create_task(self._read(ws, pair, role))
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)
        return ws

    async def _read(self, ws: ClientWebSocketResponse, pair: int, role: str) -> None:
        async for msg in ws:
            now_ns = time.perf_counter_ns()
            if msg.type is WSMsgType.TEXT:
                self.inbox.take(msg.data, now_ns, pair, role)
        if not self._closing:
            self.unexpected_closes += 1
            self.close_codes[str(ws.close_code)] += 1

    @property
    def open_sockets(self) -> int:
        return sum(not ws.closed for ws in self._sockets)

    async def close(self) -> float:
        """Close every socket; return the seconds it took (at most CLOSE_TIMEOUT)."""
        self._closing = True
        started = time.perf_counter()

        async def close_one(ws: ClientWebSocketResponse) -> None:
            with contextlib.suppress(ClientError, OSError):
                await ws.close()

        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(CLOSE_TIMEOUT):
                await asyncio.gather(*(close_one(ws) for ws in self._sockets))
                if self._readers:
                    await asyncio.wait(list(self._readers))
        for reader in list(self._readers):
            reader.cancel()
        return time.perf_counter() - started
