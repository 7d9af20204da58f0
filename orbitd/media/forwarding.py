"""What a forwarding daemon needs beyond aiortc's playout path: a jitter buffer that
hands frames on as soon as they are complete, and a sender track that outlives the
sources it forwards.

Imported with the media (aiortc is heavy).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiortc import MediaStreamTrack
from aiortc.jitterbuffer import JitterBuffer, JitterFrame
from aiortc.mediastreams import MediaStreamError
from aiortc.rtp import RtpPacket
from av.frame import Frame

if TYPE_CHECKING:
    from av.packet import Packet
    from av.stream import Stream


class ForwardingJitterBuffer(JitterBuffer):
    """Hands a frame on as soon as it is complete: a video frame at its RTP marker bit,
    and every audio packet at once (an Opus packet is a whole frame).

    aiortc's own buffer releases a video frame only when the next frame's first packet
    arrives (one frame interval: 33 ms at 30 fps) and holds four audio packets (80 ms)
    before decoding. That is for playout; a daemon that forwards adds it for nothing,
    the browser at the far end has its own.
    """

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch=0, is_video=is_video)

    def _remove_frame(self, sequence_number: int) -> JitterFrame | None:
        origin = self._origin
        assert origin is not None
        packets: list[RtpPacket] = []
        for count in range(self._capacity):
            packet = self._packets[(origin + count) % self._capacity]
            if packet is None:
                return None
            if packets and packet.timestamp != packets[0].timestamp:
                return self._take(packets, count)  # the frame before lost its marker
            packets.append(packet)
            if packet.marker or not self._is_video:
                return self._take(packets, count + 1)
        return None

    def _take(self, packets: list[RtpPacket], count: int) -> JitterFrame:
        data = b"".join(p._data for p in packets)  # type: ignore[attr-defined]
        self.remove(count)
        return JitterFrame(data=data, timestamp=packets[0].timestamp)


class SenderTrack(MediaStreamTrack):
    """The one track a sender keeps for a whole session; its source can change.

    aiortc's sender stops for good when its track raises `MediaStreamError`, which a
    forwarded track does when its source ends (a call hung up, the browser's media
    link closed). This track never does until it is stopped itself: with no source
    (or when the source ends) it waits for the next one, so the next call has media.
    """

    def __init__(self, kind: str) -> None:
        super().__init__()
        self.kind = kind
        self._source: MediaStreamTrack | None = None
        self._changed = asyncio.Event()

    @property
    def source(self) -> MediaStreamTrack | None:
        return self._source

    def switch(self, source: MediaStreamTrack | None) -> None:
        """Send `source` from now on (None: send nothing)."""
        self._source = source
        self._changed.set()

    async def recv(self) -> Frame | Packet[Stream]:
        while self.readyState == "live":
            source = self._source
            self._changed.clear()
            if source is None:
                await self._changed.wait()
                continue
            reading = asyncio.ensure_future(source.recv())
            switched = asyncio.ensure_future(self._changed.wait())
            done, _ = await asyncio.wait({reading, switched}, return_when=asyncio.FIRST_COMPLETED)
            if reading in done:
                switched.cancel()
                try:
                    return reading.result()
                except MediaStreamError:
                    if self._source is source:
                        self._source = None
                    continue
            reading.cancel()  # the source changed while we waited on it
            with contextlib.suppress(asyncio.CancelledError, MediaStreamError):
                await reading
        raise MediaStreamError

    def stop(self) -> None:
        super().stop()
        self._changed.set()
