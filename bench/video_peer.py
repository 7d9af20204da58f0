"""The video suite's aiortc stand-ins for a browser: a camera that sends, a screen that decodes.

`python -m bench.video_peer send --width W --height H --fps F [--kbps K]` sends the
daemon's own test pattern (`orbitd.media.sources.TestPatternTrack`: a frame counter and the
capture time in ms drawn into the luma plane), VP8-encoded by aiortc, as a page's
camera would. `python -m bench.video_peer recv` decodes whatever video arrives and
reads the stamp back from every frame (`read_stamp`) as soon as it is decoded:
latency is `time.time()` then minus the capture time drawn by the sender (one
machine, one clock). Decoding happens here, in a process of its own, so it is
neither the daemons' CPU nor the benchmark's.

JSON lines: one command in on stdin, one answer out on stdout. The first line out
is {"ready": true, "pid"}. Commands:

  {"cmd": "offer"}            a new connection (send: one sendonly video track;
                              recv: recvonly audio and video, as the UI's link),
                              gathering complete; answers {"sdp"}
  {"cmd": "answer", "sdp"}    a new connection for that offer; answers {"sdp"}
  {"cmd": "accept", "sdp"}    the offerer takes the answer; answers {}
  {"cmd": "wait-frames", "count", "timeout"}
                              recv: answers {"frames"} once `count` stamped frames
                              arrived since the connection (or at the timeout)
  {"cmd": "mark"}             recv: start the measuring window; answers {}
  {"cmd": "stats"}            recv: what arrived since the mark (see `Screen.stats`)
  {"cmd": "quit"}

Only 127.0.0.1: no ICE servers, loopback the one host candidate. Failures answer
{"error": "..."}.
"""

from __future__ import annotations

import abc
import argparse
import asyncio
import contextlib
import json
import os
import sys
import time
from collections import Counter
from typing import Any

import av
from aiortc import (
    MediaStreamTrack,
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)
from aiortc.mediastreams import MediaStreamError

from orbitd.ice import use_loopback_only
from orbitd.media.sources import TestPatternTrack, read_stamp

VIDEO_CODECS = ("video/vp8", "video/rtx")


def vp8_only(transceiver: RTCRtpTransceiver) -> None:
    """VP8 (and its retransmissions): the codec every path of the suite is held to."""
    if transceiver.kind != "video":
        return
    codecs = RTCRtpSender.getCapabilities("video").codecs
    transceiver.setCodecPreferences([c for c in codecs if c.mimeType.lower() in VIDEO_CODECS])


class Peer(abc.ABC):
    """At most one connection; `Camera` and `Screen` say what it carries."""

    def __init__(self) -> None:
        self.pc: RTCPeerConnection | None = None

    async def _new(self) -> RTCPeerConnection:
        await self.close()
        self.pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
        self.pc.on("track", self.on_track)
        return self.pc

    def on_track(self, track: MediaStreamTrack) -> None:  # noqa: B027 - a camera receives none
        """A remote track arrived (only the screen has a use for one)."""

    @abc.abstractmethod
    def add_media(self, pc: RTCPeerConnection) -> None:
        """Add this peer's transceivers (sending or receiving) to `pc`."""

    async def offer(self) -> dict[str, Any]:
        pc = await self._new()
        self.add_media(pc)
        await pc.setLocalDescription(await pc.createOffer())
        return {"sdp": pc.localDescription.sdp}

    async def answer(self, sdp: str) -> dict[str, Any]:
        pc = await self._new()
        await pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in pc.getTransceivers():
            vp8_only(transceiver)
        await pc.setLocalDescription(await pc.createAnswer())
        return {"sdp": pc.localDescription.sdp}

    async def accept(self, sdp: str) -> dict[str, Any]:
        if self.pc is None:
            raise RuntimeError("no offer was made")
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        return {}

    async def close(self) -> None:
        if self.pc is not None:
            await self.pc.close()
        self.pc = None

    async def do(self, command: dict[str, Any]) -> dict[str, Any]:
        match command.get("cmd"):
            case "offer":
                return await self.offer()
            case "answer":
                return await self.answer(str(command["sdp"]))
            case "accept":
                return await self.accept(str(command["sdp"]))
        raise ValueError(f"unknown command {command.get('cmd')!r}")


class Camera(Peer):
    def __init__(self, width: int, height: int, fps: int) -> None:
        super().__init__()
        self.mode = (width, height, fps)

    def add_media(self, pc: RTCPeerConnection) -> None:
        sender = pc.addTrack(TestPatternTrack(*self.mode))
        for transceiver in pc.getTransceivers():
            if transceiver.sender is sender:
                transceiver.direction = "sendonly"
                vp8_only(transceiver)


class Screen(Peer):
    """Decodes every remote video frame and reads its stamp; drains the audio."""

    def __init__(self) -> None:
        super().__init__()
        self.readers: set[asyncio.Task[None]] = set()
        self.stamped_since_connect = 0
        self._arrived = asyncio.Event()
        self._goal = 0
        self.mark_bytes = self.mark_lost = 0
        self.mark_wall = time.perf_counter()
        self.mark_cpu = time.process_time()
        self.frames = 0
        self.bad = 0
        self.latencies_ms: list[float] = []
        self.counters: list[int] = []
        self.sizes: Counter[str] = Counter()

    async def _received(self) -> tuple[int, int]:
        """(bytes received on the connection's transport, RTP packets lost) so far."""
        if self.pc is None:
            return 0, 0
        report = await self.pc.getStats()
        received = sum(
            int(getattr(s, "bytesReceived", 0)) for s in report.values() if s.type == "transport"
        )
        lost = sum(
            int(s.packetsLost)
            for s in report.values()
            if s.type == "inbound-rtp" and getattr(s, "kind", "") == "video"
        )
        return received, lost

    async def _mark(self) -> None:
        self.mark_bytes, self.mark_lost = await self._received()
        self.mark_wall = time.perf_counter()
        self.mark_cpu = time.process_time()
        self.frames = 0
        self.bad = 0
        self.latencies_ms = []
        self.counters = []
        self.sizes = Counter()

    def add_media(self, pc: RTCPeerConnection) -> None:
        pc.addTransceiver("audio", direction="recvonly")
        vp8_only(pc.addTransceiver("video", direction="recvonly"))

    def on_track(self, track: MediaStreamTrack) -> None:
        task = asyncio.ensure_future(self._read(track))
        self.readers.add(task)
        task.add_done_callback(self.readers.discard)

    async def _read(self, track: MediaStreamTrack) -> None:
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            if not isinstance(frame, av.VideoFrame):
                continue
            now = time.time()
            self.frames += 1
            self.sizes[f"{frame.width}x{frame.height}"] += 1
            stamp = read_stamp(frame)
            if stamp is None:
                self.bad += 1
                continue
            self.latencies_ms.append(float(stamp.age_ms(now)))
            self.counters.append(stamp.counter)
            self.stamped_since_connect += 1
            if self.stamped_since_connect >= self._goal:
                self._arrived.set()

    async def _new(self) -> RTCPeerConnection:
        pc = await super()._new()
        self.stamped_since_connect = 0
        return pc

    async def wait_frames(self, count: int, seconds: float) -> dict[str, Any]:
        self._goal = count
        if self.stamped_since_connect < count:
            self._arrived.clear()
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(seconds):
                    await self._arrived.wait()
        return {"frames": self.stamped_since_connect}

    async def stats(self) -> dict[str, Any]:
        """Since the mark: frames decoded, those whose stamp did not read (`bad`),
        counters missing between the first and last stamp read (`lost`), each stamped
        frame's latency, the sizes decoded, the bit rate received (all of the
        transport: only video flows), RTP packets lost, and this process's CPU."""
        received, lost = await self._received()
        wall = max(time.perf_counter() - self.mark_wall, 1e-9)
        counters = sorted(set(self.counters))
        span = counters[-1] - counters[0] + 1 if counters else 0
        return {
            "seconds": wall,
            "frames": self.frames,
            "stamped": len(self.latencies_ms),
            "bad": self.bad,
            "lost": span - len(counters),
            "repeated": len(self.counters) - len(counters),
            "latencies_ms": self.latencies_ms,
            "sizes": dict(self.sizes),
            "kbps": (received - self.mark_bytes) * 8 / 1000 / wall,
            "packets_lost": lost - self.mark_lost,
            "cpu_percent": 100 * (time.process_time() - self.mark_cpu) / wall,
        }

    async def do(self, command: dict[str, Any]) -> dict[str, Any]:
        match command.get("cmd"):
            case "wait-frames":
                return await self.wait_frames(int(command["count"]), float(command["timeout"]))
            case "mark":
                await self._mark()
                return {}
            case "stats":
                return await self.stats()
        return await super().do(command)

    async def close(self) -> None:
        await super().close()
        for task in list(self.readers):
            task.cancel()


async def serve(peer: Peer) -> None:
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader(limit=1 << 20)
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def send(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    send({"ready": True, "pid": os.getpid()})
    try:
        while line := await reader.readline():
            command = json.loads(line)
            if command.get("cmd") == "quit":
                break
            try:
                send(await peer.do(command))
            except (ValueError, KeyError, TypeError, RuntimeError) as exc:
                send({"error": f"{type(exc).__name__}: {exc}"})
    finally:
        await peer.close()


def main() -> None:
    parser = argparse.ArgumentParser(description="An aiortc stand-in for a browser's video.")
    parser.add_argument("role", choices=["send", "recv"])
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=480)
    parser.add_argument("--fps", type=int, default=30)
    parser.add_argument(
        "--kbps", type=int, default=0, help="send: a fixed VP8 bit rate (0: aiortc's 250-1500)"
    )
    args = parser.parse_args()
    if args.kbps:
        from orbitd.adapters.aiortc_internals import fix_vp8_bitrate

        fix_vp8_bitrate(args.kbps * 1000)
    use_loopback_only()
    peer: Peer = Camera(args.width, args.height, args.fps) if args.role == "send" else Screen()
    asyncio.run(serve(peer))


if __name__ == "__main__":
    main()
