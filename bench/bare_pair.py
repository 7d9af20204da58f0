"""The daemon benchmark's baseline: two bare aiortc processes (`bench.aiortc_pair`).

This process is their signaling channel: it asks one for an offer, hands it to
the other for an answer, and hands that back, over each one's TCP control
socket on 127.0.0.1. It measures what the daemons are measured on: connection
set-up (createOffer to the data channel open on both sides), one-way message
latency on the open channel, and resident memory.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from .pacing import MessageParams
from .procs import BenchError, RssPair, Server, python_module, running
from .stats import Summary

CALL_TIMEOUT = 20.0
SETTLE_SECONDS = 0.5


@dataclass(frozen=True)
class BareResult:
    rounds: int
    connected: int
    setup_ms: Summary
    """createOffer on the offerer until the channel is open on both sides."""
    setup_samples_ms: list[float]
    first_setup_ms: float
    cpu_ms_per_setup: float
    """CPU time of both processes per connection made and closed."""
    sent: int
    delivered: int
    latency_ms: Summary
    sender_max_lag_ms: float
    cpu_us_per_message: float
    """CPU time of both processes per message sent and received."""
    rss_idle: RssPair
    """aiortc imported, no connection yet."""
    rss_first_up: RssPair
    rss_first_closed: RssPair
    rss_last_up: RssPair
    """The last connection open, after the messages."""
    rss_all_closed: RssPair
    rss_peak: RssPair


class Control:
    """The control socket of one `bench.aiortc_pair` process: a JSON object a line."""

    def __init__(self, name: str, reader: asyncio.StreamReader, writer: asyncio.StreamWriter):
        self.name, self._reader, self._writer = name, reader, writer

    @classmethod
    async def connect(cls, server: Server) -> Control:
        port = urlsplit(server.url).port
        reader, writer = await asyncio.open_connection("127.0.0.1", port, limit=1 << 22)
        return cls(server.name, reader, writer)

    async def call(self, cmd: str, *, wait: float = CALL_TIMEOUT, **fields: Any) -> dict[str, Any]:
        """Send one command; its answer, which may take `wait` seconds."""
        self._writer.write(json.dumps({"cmd": cmd} | fields).encode() + b"\n")
        try:
            async with asyncio.timeout(wait):
                await self._writer.drain()
                line = await self._reader.readline()
        except TimeoutError:
            raise BenchError(f"{self.name}: no answer to {cmd!r} in {wait:g} s") from None
        if not line:
            raise BenchError(f"{self.name}: the control socket closed during {cmd!r}")
        answer = json.loads(line)
        if not isinstance(answer, dict) or "error" in answer:
            raise BenchError(f"{self.name}: {cmd!r} failed: {answer}")
        return answer

    async def close(self) -> None:
        self._writer.close()
        await self._writer.wait_closed()


async def _connect(offerer: Control, answerer: Control) -> float:
    """One connection; returns createOffer → open on both sides, in milliseconds."""
    offer = await offerer.call("offer")
    answer = await answerer.call("answer", sdp=offer["sdp"])
    await offerer.call("accept", sdp=answer["sdp"])
    opened = await asyncio.gather(offerer.call("wait-open"), answerer.call("wait-open"))
    return (max(int(o["open_ns"]) for o in opened) - int(offer["t0_ns"])) / 1e6


async def _close(offerer: Control, answerer: Control) -> None:
    await asyncio.gather(offerer.call("close"), answerer.call("close"))


def _cpu(a: Server, b: Server) -> float:
    return a.cpu_seconds() + b.cpu_seconds()


async def _settled_rss(a: Server, b: Server) -> RssPair:
    await asyncio.sleep(SETTLE_SECONDS)
    return RssPair.of(a, b)


async def _messages(
    offerer: Control, answerer: Control, params: MessageParams
) -> tuple[dict[str, Any], list[float]]:
    """Paced messages over the open channel: (the sender's report, the latencies)."""
    sent, received = await asyncio.gather(
        offerer.call("send", count=params.count, bytes=params.size, interval_ms=params.interval_ms),
        answerer.call("received", count=params.count, timeout=params.drain_timeout),
    )
    return sent, [float(x) for x in received["latencies_ms"]]


async def _rounds(
    a: Server, b: Server, rounds: int, params: MessageParams, rss: dict[str, RssPair]
) -> BareResult:
    offerer, answerer = await Control.connect(a), await Control.connect(b)
    samples: list[float] = []
    setup_cpu = 0.0
    try:
        for n in range(rounds):
            cpu = _cpu(a, b)
            samples.append(await _connect(offerer, answerer))
            setup_cpu += _cpu(a, b) - cpu
            if n == 0:
                rss["first_up"] = await _settled_rss(a, b)
            if n == rounds - 1:
                cpu = _cpu(a, b)
                sent, latencies = await _messages(offerer, answerer, params)
                message_cpu = _cpu(a, b) - cpu
                rss["last_up"] = await _settled_rss(a, b)
            cpu = _cpu(a, b)
            await _close(offerer, answerer)
            setup_cpu += _cpu(a, b) - cpu
            if n == 0:
                rss["first_closed"] = await _settled_rss(a, b)
    finally:
        await offerer.close()
        await answerer.close()
    rss["all_closed"] = await _settled_rss(a, b)
    return BareResult(
        rounds=rounds,
        connected=len(samples),
        setup_ms=Summary.of(samples),
        setup_samples_ms=[round(x, 3) for x in samples],
        first_setup_ms=samples[0],
        cpu_ms_per_setup=setup_cpu * 1e3 / rounds,
        sent=int(sent["sent"]),
        delivered=len(latencies),
        latency_ms=Summary.of(latencies),
        sender_max_lag_ms=float(sent["max_lag_ms"]),
        cpu_us_per_message=message_cpu * 1e6 / max(params.count, 1),
        rss_idle=rss["idle"],
        rss_first_up=rss["first_up"],
        rss_first_closed=rss["first_closed"],
        rss_last_up=rss["last_up"],
        rss_all_closed=rss["all_closed"],
        rss_peak=RssPair.peak(a, b),
    )


async def measure_bare(rounds: int, params: MessageParams, logs: Path) -> BareResult:
    """`rounds` connections one after the other (at least one); the messages go over the
    last one. A connection that fails ends the measurement (BenchError)."""
    argv = python_module("bench.aiortc_pair", "--port", "0")
    async with (
        running("aiortc-offerer", argv, logs / "aiortc-offerer.log") as a,
        running("aiortc-answerer", argv, logs / "aiortc-answerer.log") as b,
    ):
        rss = {"idle": await _settled_rss(a, b)}
        return await _rounds(a, b, rounds, params, rss)
