"""The forwarding parts of the media path, with no network: a sender track that
outlives its sources, and a jitter buffer that does not wait a frame interval."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

import pytest
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError


class _Items(MediaStreamTrack):
    """A source that yields the given packets, then ends (or waits forever)."""

    kind = "video"

    def __init__(self, items: list[str], *, then_end: bool = True) -> None:
        super().__init__()
        self.items, self.then_end = list(items), then_end

    async def recv(self) -> Any:
        if self.items:
            return self.items.pop(0)
        if self.then_end:
            self.stop()
            raise MediaStreamError
        await asyncio.Event().wait()


async def turns(n: int = 5) -> None:
    """A few turns of the event loop (no time passes): a task just started runs up to
    where it waits."""
    for _ in range(n):
        await asyncio.sleep(0)


async def test_a_sender_track_outlives_its_sources() -> None:
    from orbitd.media.forwarding import SenderTrack

    track = SenderTrack("video")
    recv: Callable[[], Any] = track.recv  # the fake sources yield strings, not packets
    track.switch(_Items(["a1", "a2"]))  # the first call's media, which then ends
    assert [await recv(), await recv()] == ["a1", "a2"]
    waiting = asyncio.ensure_future(recv())  # no source now: it waits, it does not end
    await turns()
    assert not waiting.done()
    track.switch(_Items(["b1"], then_end=False))  # the next call
    assert await asyncio.wait_for(waiting, 1) == "b1"
    stuck = asyncio.ensure_future(recv())  # waiting on a source that has nothing...
    await turns()
    track.switch(_Items(["c1"]))  # ...is switched away from mid-read
    assert await asyncio.wait_for(stuck, 1) == "c1"
    track.stop()
    with pytest.raises(MediaStreamError):
        await track.recv()


def _rtp(seq: int, timestamp: int, data: bytes, *, marker: bool = False) -> Any:
    from aiortc.rtp import RtpPacket

    from orbitd.adapters.aiortc_internals import set_depayloaded

    packet = RtpPacket(
        payload_type=96, sequence_number=seq, timestamp=timestamp, marker=int(marker)
    )
    set_depayloaded(packet, data)  # what the receiver's depayloader does
    return packet


def test_forwarding_jitter_buffer_releases_a_frame_at_its_marker() -> None:
    from aiortc.jitterbuffer import JitterBuffer

    from orbitd.adapters.aiortc_internals import ForwardingJitterBuffer

    ours, aiortcs = ForwardingJitterBuffer(128, is_video=True), JitterBuffer(128, is_video=True)
    first = [_rtp(1, 3000, b"ab"), _rtp(2, 3000, b"cd", marker=True)]
    assert ours.add(first[0])[1] is None  # half a frame: nothing yet
    frame = ours.add(first[1])[1]  # the marker: the frame goes at once
    assert frame is not None and (frame.data, frame.timestamp) == (b"abcd", 3000)
    # aiortc's own buffer waits for the next frame's first packet: one frame interval.
    assert [aiortcs.add(p)[1] for p in first] == [None, None]
    later = aiortcs.add(_rtp(3, 6000, b"ef"))[1]
    assert later is not None and later.data == b"abcd"


def test_forwarding_jitter_buffer_passes_audio_packets_at_once() -> None:
    from orbitd.adapters.aiortc_internals import ForwardingJitterBuffer

    buffer = ForwardingJitterBuffer(16, prefetch=4)
    frames = [buffer.add(_rtp(10 + n, 960 * n, bytes([n])))[1] for n in range(3)]
    assert [f.data if f else None for f in frames] == [b"\x00", b"\x01", b"\x02"]
