"""The files benchmark's first baseline: bulk data between two bare aiortc processes.

Two `bench.aiortc_pair` processes connect over 127.0.0.1 with a `chat` and a
`bulk` channel. The offerer sends `size` bytes on `bulk` in messages of `chunk`
bytes, its buffered amount kept under `buffered` (what a file sender does so
that chat does not wait behind it), while paced chat messages go the same way;
this process reads the receiver's figures over the control sockets.
`extra_argv` (e.g. `--sctp-packets large`) is passed to both processes.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from .bare_pair import Control
from .pacing import MessageParams
from .procs import BenchError, RssPair, Server, python_module, running
from .stats import Summary

OPEN_TRIES = 100
OPEN_POLL_SECONDS = 0.05
CALL_SLACK = 10.0


@dataclass(frozen=True)
class BulkParams:
    size: int
    """Bytes sent in all."""
    chunk: int
    """Bytes in each message."""
    buffered: int
    """The sender's buffered amount is kept under this."""
    timeout: float
    """Seconds the whole transfer may take."""


@dataclass(frozen=True)
class BulkResult:
    label: str
    bytes_sent: int
    bytes_received: int
    seconds: float
    """From the first send to the last byte received."""
    mb_per_s: float
    """Megabytes (10^6 bytes) per second."""
    chat_sent: int
    chat_delivered: int
    chat_latency_ms: Summary
    cpu_seconds: RssPair
    """CPU time of each process during the transfer (the fields hold seconds, not MiB)."""
    rss_peak: RssPair


async def _connect(offerer: Control, answerer: Control) -> None:
    offer = await offerer.call("offer", bulk=True)
    answer = await answerer.call("answer", sdp=offer["sdp"])
    await offerer.call("accept", sdp=answer["sdp"])
    await asyncio.gather(offerer.call("wait-open"), answerer.call("wait-open"))


async def _start_bulk(offerer: Control, params: BulkParams) -> int:
    """Start the bulk send once the channel is open; its start time (perf_counter_ns)."""
    fields = {"bytes": params.size, "chunk": params.chunk, "buffered": params.buffered}
    for _ in range(OPEN_TRIES):
        try:
            return int((await offerer.call("bulk-send", **fields))["t0_ns"])
        except BenchError as exc:
            if "not open" not in str(exc):
                raise
            await asyncio.sleep(OPEN_POLL_SECONDS)
    raise BenchError("the bulk channel did not open")


async def _chat(
    offerer: Server, answerer: Server, params: MessageParams, wait: float
) -> tuple[int, list[float]]:
    """Paced chat messages on their own control connections, during the bulk send."""
    sender, receiver = await Control.connect(offerer), await Control.connect(answerer)
    try:
        sent, received = await asyncio.gather(
            sender.call(
                "send", count=params.count, bytes=params.size, interval_ms=params.interval_ms
            ),
            receiver.call("received", count=params.count, timeout=params.drain_timeout, wait=wait),
        )
    finally:
        await sender.close()
        await receiver.close()
    return int(sent["sent"]), [float(x) for x in received["latencies_ms"]]


async def measure_bare_bulk(
    label: str, params: BulkParams, chat: MessageParams, logs: Path, *extra_argv: str
) -> BulkResult:
    argv = python_module("bench.aiortc_pair", "--port", "0", *extra_argv)
    async with (
        running(f"{label}-offerer", argv, logs / f"{label}-offerer.log") as a,
        running(f"{label}-answerer", argv, logs / f"{label}-answerer.log") as b,
    ):
        offerer, answerer = await Control.connect(a), await Control.connect(b)
        try:
            await _connect(offerer, answerer)
            cpu = (a.cpu_seconds(), b.cpu_seconds())
            t0 = await _start_bulk(offerer, params)
            wait = params.timeout + CALL_SLACK
            chatting = asyncio.create_task(_chat(a, b, chat, wait))
            got = await answerer.call(
                "bulk-received", bytes=params.size, timeout=params.timeout, wait=wait
            )
            chat_sent, latencies = await chatting
            used = RssPair(a.cpu_seconds() - cpu[0], b.cpu_seconds() - cpu[1])
            rss = RssPair.peak(a, b)
            await asyncio.gather(offerer.call("close"), answerer.call("close"))
        finally:
            await offerer.close()
            await answerer.close()
    received = int(got["bytes"])
    seconds = (int(got["last_ns"]) - t0) / 1e9 if received else float("nan")
    if received < params.size:
        raise BenchError(f"{label}: {received} of {params.size} bytes in {params.timeout:g} s")
    return BulkResult(
        label=label,
        bytes_sent=params.size,
        bytes_received=received,
        seconds=seconds,
        mb_per_s=received / seconds / 1e6,
        chat_sent=chat_sent,
        chat_delivered=len(latencies),
        chat_latency_ms=Summary.of(latencies),
        cpu_seconds=used,
        rss_peak=rss,
    )
