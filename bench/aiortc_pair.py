"""The daemon benchmark's baseline: one bare aiortc peer, driven over a TCP control socket.

`python -m bench.aiortc_pair --port 0` imports aiortc, prints
`aiortc-pair listening on http://127.0.0.1:PORT` and serves one control
connection at a time: a JSON object a line in, one answer a line out. The
benchmark starts two of these and carries the offer and the answer from one
to the other, so the pair has a signaling channel on 127.0.0.1 and nothing
else: no ICE servers, and 127.0.0.1 as the only host candidate (as
`orbitd --ice-loopback`). Commands:

  {"cmd": "offer"}               new connection and `chat` channel; answers
                                 {"sdp", "t0_ns"} (t0: just before createOffer)
  {"cmd": "answer", "sdp"}       new connection for that offer; answers {"sdp"}
  {"cmd": "accept", "sdp"}       the offerer takes the answer; answers {}
  {"cmd": "wait-open"}           answers {"open_ns"} once the channel is open
  {"cmd": "send", "count", "bytes", "interval_ms"}
                                 paced messages stamped with the send time;
                                 answers {"sent", "max_lag_ms"}
  {"cmd": "received", "count", "timeout"}
                                 answers {"latencies_ms"} once `count` arrived
                                 (or at the timeout, with what did)
  {"cmd": "close"}               closes the connection; answers {}

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

from .pacing import Lag, paced

LABEL = "chat"
OPEN_TIMEOUT = 15.0


use_loopback_host_addresses()  # as `orbitd.ice.use_loopback_only`: 127.0.0.1 only


class Peer:
    """At most one RTCPeerConnection, its channel, and what arrived on it."""

    def __init__(self) -> None:
        self.pc: RTCPeerConnection | None = None
        self.channel: RTCDataChannel | None = None
        self.open_ns: asyncio.Future[int] | None = None
        self.latencies_ms: list[float] = []
        self._arrived = asyncio.Event()
        self._goal = 0

    async def _new(self) -> RTCPeerConnection:
        await self.close()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.open_ns = asyncio.get_running_loop().create_future()
        self.latencies_ms = []
        self.pc.on("datachannel", self._adopt)
        return self.pc

    def _adopt(self, channel: RTCDataChannel) -> None:
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

    async def offer(self) -> dict[str, Any]:
        pc = await self._new()
        self._adopt(pc.createDataChannel(LABEL, ordered=True))
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

    async def close(self) -> dict[str, Any]:
        if self.pc is not None:
            await self.pc.close()
        self.pc, self.channel, self.open_ns = None, None, None
        return {}

    async def do(self, command: dict[str, Any]) -> dict[str, Any]:
        match command.get("cmd"):
            case "offer":
                return await self.offer()
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
            case "close":
                return await self.close()
        raise ValueError(f"unknown command {command.get('cmd')!r}")


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


async def serve(port: int) -> None:
    peer = Peer()
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
    asyncio.run(serve(parser.parse_args().port))


if __name__ == "__main__":
    main()
