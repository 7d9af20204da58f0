"""The daemon benchmark's baseline: one bare aiortc peer, driven over a TCP control socket.

`python -m bench.aiortc_pair --port 0` imports aiortc, prints
`aiortc-pair listening on http://127.0.0.1:PORT` and serves one control
connection at a time: a JSON object a line in, one answer a line out. The
benchmark starts two of these and carries the offer and the answer from one
to the other, so the pair has a signaling channel on 127.0.0.1 and nothing
else: no ICE servers, and 127.0.0.1 as the only host candidate (as
`orbitd --ice-loopback`). Commands:

  {"cmd": "offer", "bulk"?}      new connection and `chat` channel (and a `bulk` one
                                 if "bulk" is true); answers {"sdp", "t0_ns"} (t0:
                                 just before createOffer)
  {"cmd": "answer", "sdp"}       new connection for that offer; answers {"sdp"}
  {"cmd": "accept", "sdp"}       the offerer takes the answer; answers {}
  {"cmd": "wait-open"}           answers {"open_ns"} once the channel is open
  {"cmd": "send", "count", "bytes", "interval_ms"}
                                 paced messages stamped with the send time;
                                 answers {"sent", "max_lag_ms"}
  {"cmd": "received", "count", "timeout"}
                                 answers {"latencies_ms"} once `count` arrived
                                 (or at the timeout, with what did)
  {"cmd": "bulk-send", "bytes", "chunk", "buffered"}
                                 starts sending `bytes` on the `bulk` channel in binary
                                 messages of `chunk` bytes, keeping its buffered amount
                                 under `buffered` (as a file sender must, so that chat
                                 does not wait behind it); answers {"t0_ns"} at once
  {"cmd": "bulk-received", "bytes", "timeout"}
                                 answers {"bytes", "first_ns", "last_ns"} once `bytes`
                                 arrived on the `bulk` channel (or at the timeout)
  {"cmd": "close"}               closes the connection; answers {}

With `--large-packets` both peers cut data-channel messages into SCTP chunks of up
to 16 KiB, raise their UDP receive buffer and send chat ahead of bulk data
(`orbitd.adapters.sctp_packets`, what orbitd does on loopback); with `--uvloop` they
run on uvloop (orbitd's setting event_loop).

Times are `time.perf_counter_ns()`, which is CLOCK_MONOTONIC on Linux: one
clock for every process on the machine, so the two peers' stamps compare.
Failures answer {"error": "..."}. The process stops on SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import signal
import time
from typing import Any

from aiortc import RTCConfiguration, RTCDataChannel, RTCPeerConnection, RTCSessionDescription

from orbitd.adapters.aiortc_internals import use_loopback_host_addresses
from orbitd.adapters.sctp_packets import (
    accept_large_packets,
    enlarge_receive_buffer,
    send_first,
    send_large_packets,
)
from orbitd.event_loop import loop_factory

from .pacing import Lag, paced

LABEL = "chat"
BULK_LABEL = "bulk"
OPEN_TIMEOUT = 15.0


use_loopback_host_addresses()  # as `orbitd.ice.use_loopback_only`: 127.0.0.1 only


class Peer:
    """At most one RTCPeerConnection, its channel, and what arrived on it."""

    def __init__(self, large_packets: bool = False) -> None:
        self.large_packets = large_packets
        self.pc: RTCPeerConnection | None = None
        self.channel: RTCDataChannel | None = None
        self.bulk: RTCDataChannel | None = None
        self.open_ns: asyncio.Future[int] | None = None
        self.latencies_ms: list[float] = []
        self._arrived = asyncio.Event()
        self._goal = 0
        self._bulk_bytes = 0
        self._bulk_first_ns = 0
        self._bulk_last_ns = 0
        self._bulk_goal = 0
        self._bulk_arrived = asyncio.Event()
        self._bulk_task: asyncio.Task[None] | None = None

    async def _new(self) -> RTCPeerConnection:
        await self.close()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.open_ns = asyncio.get_running_loop().create_future()
        self.latencies_ms = []
        self._bulk_bytes = self._bulk_first_ns = self._bulk_last_ns = 0
        self.pc.on("datachannel", self._adopt)
        if self.large_packets:
            self.pc.on("connectionstatechange", self._large_packets)
        return self.pc

    def _large_packets(self) -> None:
        """Both peers accept large packets once DTLS is up, before any data: each may
        send them from then on (as two daemons that both announced it, on loopback)."""
        if self.pc is not None and accept_large_packets(self.pc):
            enlarge_receive_buffer(self.pc)
            send_large_packets(self.pc)
            if self.channel is not None:  # the offerer's chat, ahead of bulk (as orbitd)
                send_first(self.pc, self.channel)

    def _adopt(self, channel: RTCDataChannel) -> None:
        if channel.label == BULK_LABEL:
            self.bulk = channel
            channel.on("message", self._bulk_received)
            return
        self.channel = channel
        channel.on("message", self._received)
        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", self._opened)

    def _opened(self) -> None:
        if self.open_ns is not None and not self.open_ns.done():
            self.open_ns.set_result(time.perf_counter_ns())

    def _received(self, data: str | bytes) -> None:
        now = time.perf_counter_ns()
        if isinstance(data, bytes):
            return
        sent = json.loads(data).get("t")
        if isinstance(sent, int):
            self.latencies_ms.append((now - sent) / 1e6)
            if len(self.latencies_ms) >= self._goal:
                self._arrived.set()

    def _bulk_received(self, data: str | bytes) -> None:
        self._bulk_last_ns = time.perf_counter_ns()
        if not self._bulk_bytes:
            self._bulk_first_ns = self._bulk_last_ns
        self._bulk_bytes += len(data)
        if self._bulk_goal and self._bulk_bytes >= self._bulk_goal:
            self._bulk_arrived.set()

    async def offer(self, bulk: bool) -> dict[str, Any]:
        pc = await self._new()
        self._adopt(pc.createDataChannel(LABEL, ordered=True))
        if bulk:
            self._adopt(pc.createDataChannel(BULK_LABEL, ordered=True))
        t0 = time.perf_counter_ns()
        await pc.setLocalDescription(await pc.createOffer())
        return {"sdp": pc.localDescription.sdp, "t0_ns": t0}

    async def answer(self, sdp: str) -> dict[str, Any]:
        pc = await self._new()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp}

    async def accept(self, sdp: str) -> dict[str, Any]:
        if self.pc is None:
            raise RuntimeError("no offer was made")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return {}

    async def wait_open(self) -> dict[str, Any]:
        if self.open_ns is None:
            raise RuntimeError("no connection")
        async with asyncio.timeout(OPEN_TIMEOUT):
            return {"open_ns": await asyncio.shield(self.open_ns)}

    async def send(self, count: int, size: int, interval_ms: float) -> dict[str, Any]:
        channel = self.channel
        if channel is None or channel.readyState != "open":
            raise RuntimeError("the channel is not open")
        lag = Lag()
        async for seq in paced(count, interval_ms, lag):
            stamp = {"seq": seq, "t": time.perf_counter_ns(), "pad": ""}
            pad = max(0, size - len(json.dumps(stamp)))
            channel.send(json.dumps(stamp | {"pad": "x" * pad}))
        return {"sent": count, "max_lag_ms": lag.worst_ms}

    async def received(self, count: int, seconds: float) -> dict[str, Any]:
        self._goal = count
        if len(self.latencies_ms) < count:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._arrived.wait()
        return {"latencies_ms": self.latencies_ms}

    def bulk_send(self, size: int, chunk: int, buffered: int) -> dict[str, Any]:
        channel = self.bulk
        if channel is None or channel.readyState != "open":
            raise RuntimeError("the bulk channel is not open")
        if self._bulk_task is not None and not self._bulk_task.done():
            raise RuntimeError("a bulk send is running")
        t0 = time.perf_counter_ns()
        self._bulk_task = asyncio.create_task(_send_bulk(channel, size, chunk, buffered))
        return {"t0_ns": t0}

    async def bulk_received(self, size: int, seconds: float) -> dict[str, Any]:
        self._bulk_goal = size
        if self._bulk_bytes < size:
            self._bulk_arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._bulk_arrived.wait()
        return {
            "bytes": self._bulk_bytes,
            "first_ns": self._bulk_first_ns,
            "last_ns": self._bulk_last_ns,
        }

    async def close(self) -> dict[str, Any]:
        if self._bulk_task is not None:
            self._bulk_task.cancel()
        if self.pc is not None:
            await self.pc.close()
        self.pc, self.channel, self.bulk, self.open_ns = None, None, None, None
        return {}

    async def do(self, command: dict[str, Any]) -> dict[str, Any]:
        match command.get("cmd"):
            case "offer":
                return await self.offer(bool(command.get("bulk")))
            case "answer":
                return await self.answer(str(command["sdp"]))
            case "accept":
                return await self.accept(str(command["sdp"]))
            case "wait-open":
                return await self.wait_open()
            case "send":
                count, size = int(command["count"]), int(command["bytes"])
                return await self.send(count, size, float(command["interval_ms"]))
            case "received":
                return await self.received(int(command["count"]), float(command["timeout"]))
            case "bulk-send":
                size, chunk = int(command["bytes"]), int(command["chunk"])
                return self.bulk_send(size, chunk, int(command["buffered"]))
            case "bulk-received":
                return await self.bulk_received(int(command["bytes"]), float(command["timeout"]))
            case "close":
                return await self.close()
        raise ValueError(f"unknown command {command.get('cmd')!r}")


async def _send_bulk(channel: RTCDataChannel, size: int, chunk: int, buffered: int) -> None:
    """`size` bytes in messages of `chunk` bytes, the buffered amount kept under `buffered`:
    a file sender's loop (`bufferedamountlow` wakes it when half of it has left)."""
    payload = bytes(chunk)
    drained = asyncio.Event()
    channel.bufferedAmountLowThreshold = buffered // 2
    channel.on("bufferedamountlow", drained.set)
    left = size
    while left > 0 and channel.readyState == "open":
        if channel.bufferedAmount >= buffered:
            drained.clear()
            await drained.wait()
            continue
        piece = payload if left >= chunk else payload[:left]
        channel.send(piece)
        left -= len(piece)


async def control(peer: Peer, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while line := await reader.readline():
            try:
                answer = await peer.do(json.loads(line))
            except (ValueError, KeyError, TypeError, RuntimeError, TimeoutError) as exc:
                answer = {"error": f"{type(exc).__name__}: {exc}"}
            writer.write(json.dumps(answer).encode() + b"\n")
            await writer.drain()
    finally:
        writer.close()


async def serve(port: int, large_packets: bool) -> None:
    peer = Peer(large_packets)
    server = await asyncio.start_server(
        lambda r, w: control(peer, r, w), "127.0.0.1", port, limit=1 << 20
    )
    bound = server.sockets[0].getsockname()[1]
    print(f"aiortc-pair listening on http://127.0.0.1:{bound}", flush=True)
    stop = asyncio.Event()
    for sig in (signal.SIGINT, signal.SIGTERM):
        asyncio.get_running_loop().add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        server.close()
        await peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="One bare aiortc peer, driven over TCP.")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument(
        "--large-packets", action="store_true", help="SCTP chunks of up to 16 KiB (as orbitd)"
    )
    parser.add_argument("--uvloop", action="store_true", help="orbitd's event loop")
    args = parser.parse_args()
    factory = loop_factory("uvloop" if args.uvloop else "asyncio")
    with asyncio.Runner(loop_factory=factory) as runner:
        runner.run(serve(args.port, args.large_packets))


if __name__ == "__main__":
    main()
