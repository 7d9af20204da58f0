"""What a forwarding daemon needs beyond aiortc's playout path: a sender track that
outlives the sources it forwards. (The jitter buffer that hands frames on as soon as
they are complete, `ForwardingJitterBuffer`, is in `orbitd.adapters.aiortc_internals`:
it is made of aiortc's private parts.)

Imported with the media (aiortc is heavy).
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import TYPE_CHECKING

from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError
from av.frame import Frame

if TYPE_CHECKING:
    from av.packet import Packet
    from av.stream import Stream


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
