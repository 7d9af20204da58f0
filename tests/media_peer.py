"""A relay process for the media tests: orbitd's encoded passthrough between two connections.

It runs `install_passthrough()`, which is process-wide: that is why it is a
process of its own (the test process decodes what comes out of it). Traffic stays
on 127.0.0.1 (no ICE servers, loopback-only candidates).

JSON lines on stdin/stdout; ``<-`` from the test, ``->`` to it:

    -> {"ready": true}
    <- {"offer": SDP}         the upstream leg (from the source)
    -> {"answer": SDP}
    -> {"offer": SDP}         the downstream leg: every upstream track, forwarded
    <- {"answer": SDP}
    <- {"cmd": "mark"}        start a measuring window   -> {"ok": true}
    <- {"cmd": "stats"}       -> what happened since the mark (see `stats`)
    <- {"cmd": "quit"}

Run it as ``python -m tests.media_peer`` from the repository root; with
``--transcode`` it skips `install_passthrough()` (aiortc decodes and re-encodes),
to compare the two.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import sys
import time
from typing import Any

from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from orbitd.ice import use_loopback_only
from orbitd.media.passthrough import (
    ForwardedTrack,
    forward,
    install_passthrough,
    keyframe_requester,
    negotiated_codec,
    on_keyframe_request,
    passthrough_installed,
)


class Relay:
    def __init__(self) -> None:
        config = RTCConfiguration(iceServers=[])
        self.upstream = RTCPeerConnection(configuration=config)
        self.downstream = RTCPeerConnection(configuration=config)
        self.tracks: list[ForwardedTrack] = []
        self.downstream_plis: dict[str, int] = {}
        self.mark_wall = time.monotonic()
        self.mark_cpu = time.process_time()
        self.mark_bytes = 0

    async def answer_upstream(self, offer: str) -> str:
        await self.upstream.setRemoteDescription(RTCSessionDescription(offer, "offer"))
        await self.upstream.setLocalDescription(await self.upstream.createAnswer())
        for transceiver in self.upstream.getTransceivers():
            kind, codec = transceiver.kind, negotiated_codec(self.upstream, transceiver)
            sender = forward(transceiver.receiver, self.downstream, codec=codec)
            track = sender.track
            assert isinstance(track, ForwardedTrack)
            self.tracks.append(track)
            self.downstream_plis[kind] = 0
            on_keyframe_request(sender, functools.partial(self._count_pli, kind))
        return self.upstream.localDescription.sdp

    def _count_pli(self, kind: str) -> None:
        self.downstream_plis[kind] += 1

    async def offer_downstream(self) -> str:
        await self.downstream.setLocalDescription(await self.downstream.createOffer())
        return self.downstream.localDescription.sdp

    async def bytes_sent(self) -> int:
        report = await self.downstream.getStats()
        return sum(int(s.bytesSent) for s in report.values() if s.type == "outbound-rtp")

    async def mark(self) -> None:
        self.mark_wall, self.mark_cpu = time.monotonic(), time.process_time()
        self.mark_bytes = await self.bytes_sent()
        for track in self.tracks:
            track.max_buffered = track.buffered

    async def stats(self) -> dict[str, Any]:
        wall = time.monotonic() - self.mark_wall
        cpu = time.process_time() - self.mark_cpu
        sent = await self.bytes_sent() - self.mark_bytes
        requesters = [keyframe_requester(t.receiver) for t in self.upstream.getTransceivers()]
        return {
            "seconds": wall,
            "cpu_percent": 100 * cpu / wall,
            "out_kbps": sent * 8 / 1000 / wall,
            "passthrough_installed": passthrough_installed(),
            "downstream_plis": self.downstream_plis,
            "plis_sent_upstream": sum(r.sent for r in requesters),
            "tracks": {
                t.kind: {
                    "codec": t.codec,
                    "forwarded": t.forwarded,
                    "keyframes": t.keyframes,
                    "decoded": t.decoded,
                    "dropped": t.dropped,
                    "max_buffered": t.max_buffered,
                }
                for t in self.tracks
            },
        }

    async def close(self) -> None:
        await self.downstream.close()
        await self.upstream.close()


async def main() -> None:
    use_loopback_only()
    if "--transcode" not in sys.argv:
        install_passthrough()
        install_passthrough()  # idempotent
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)

    def send(message: dict[str, Any]) -> None:
        sys.stdout.write(json.dumps(message) + "\n")
        sys.stdout.flush()

    async def receive() -> dict[str, Any]:
        line = await reader.readline()
        if not line:
            raise EOFError
        message: dict[str, Any] = json.loads(line)
        return message

    relay = Relay()
    send({"ready": True, "pid": os.getpid()})
    try:
        send({"answer": await relay.answer_upstream((await receive())["offer"])})
        send({"offer": await relay.offer_downstream()})
        answer = (await receive())["answer"]
        await relay.downstream.setRemoteDescription(RTCSessionDescription(answer, "answer"))
        while (command := (await receive()).get("cmd")) != "quit":
            if command == "mark":
                await relay.mark()
                send({"ok": True})
            elif command == "stats":
                send(await relay.stats())
    except EOFError:
        pass
    finally:
        await relay.close()


if __name__ == "__main__":
    asyncio.run(main())
