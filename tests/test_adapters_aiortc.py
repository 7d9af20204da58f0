"""`orbitd.adapters.aiortc_internals` against the installed aiortc and aioice: every
private name it relies on is still there with its shape, and every function does
what the daemon needs on a real pair of peer connections on 127.0.0.1. A failure
here means the library changed under the adapter: fix the adapter (or the upper
bound in pyproject.toml), not the test."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import aioice.ice
import pytest
from aiortc import (
    RTCConfiguration,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)
from aiortc.codecs import vpx
from aiortc.jitterbuffer import JitterBuffer
from aiortc.mediastreams import VideoStreamTrack
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from orbitd.adapters import aiortc_internals as adapter
from orbitd.adapters.requirements import Requirement

TIMEOUT = 10.0


@pytest.mark.parametrize("requirement", adapter.REQUIRED, ids=lambda r: r.name)
def test_the_private_name_is_still_there(requirement: Requirement) -> None:
    problem = requirement.problem()
    assert problem is None, f"aiortc/aioice changed under orbitd/adapters: {problem}"


def test_check_reports_a_private_name_that_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    assert adapter.check() == []
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    monkeypatch.delattr(JitterBuffer, "_remove_frame")
    assert adapter.check() == [
        "aiortc RTCRtpSender._send_keyframe: RTCRtpSender has no _send_keyframe",
        "aiortc JitterBuffer internals, RtpPacket._data: "
        "AttributeError: type object 'JitterBuffer' has no attribute '_remove_frame'",
    ]


# --- a real pair on 127.0.0.1 ------------------------------------------------------------


@pytest.fixture
def loopback() -> Iterator[None]:
    original = aioice.ice.get_host_addresses
    undo = adapter.use_loopback_host_addresses()
    assert adapter.loopback_host_addresses_in_use()
    yield
    undo()
    assert aioice.ice.get_host_addresses is original
    assert not adapter.loopback_host_addresses_in_use()


@dataclass
class Pair:
    offerer: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )
    answerer: RTCPeerConnection = field(
        default_factory=lambda: RTCPeerConnection(RTCConfiguration(iceServers=[]))
    )

    async def connect(self) -> None:
        opened = asyncio.Event()
        self.offerer.createDataChannel("chat").on("open", opened.set)
        await self.offerer.setLocalDescription(await self.offerer.createOffer())
        offer = self.offerer.localDescription
        await self.answerer.setRemoteDescription(RTCSessionDescription(offer.sdp, "offer"))
        await self.answerer.setLocalDescription(await self.answerer.createAnswer())
        answer = self.answerer.localDescription
        await self.offerer.setRemoteDescription(RTCSessionDescription(answer.sdp, "answer"))
        async with asyncio.timeout(TIMEOUT):
            await opened.wait()

    async def close(self) -> None:
        await asyncio.gather(self.offerer.close(), self.answerer.close())


@pytest.fixture
async def pair(loopback: None) -> AsyncIterator[Pair]:
    pair = Pair()
    yield pair
    await pair.close()


def _fingerprint(pc: RTCPeerConnection) -> str:
    assert pc.sctp is not None
    (fingerprint,) = [
        f for f in pc.sctp.transport.getLocalParameters().fingerprints if f.algorithm == "sha-256"
    ]
    return fingerprint.value


async def test_the_presented_certificate_and_the_nominated_pair(pair: Pair) -> None:
    assert adapter.presented_certificate_fingerprint(pair.offerer) == ""  # no transport yet
    assert adapter.nominated_pair(pair.offerer) is None
    await pair.connect()
    offerer, answerer = pair.offerer, pair.answerer
    assert adapter.presented_certificate_fingerprint(offerer) == _fingerprint(answerer)
    assert adapter.presented_certificate_fingerprint(answerer) == _fingerprint(offerer)
    nominated = adapter.nominated_pair(offerer)
    assert nominated is not None
    assert (nominated.local.host, nominated.remote.host) == ("127.0.0.1", "127.0.0.1")
    assert nominated.local.type == "host"
    candidates = [
        line for line in offerer.localDescription.sdp.splitlines() if "candidate:" in line
    ]
    assert candidates and all(" 127.0.0.1 " in line for line in candidates)


# --- media: keyframe requests, the receiver's decoder and jitter buffer --------------------


class RecordingJitterBuffer(adapter.ForwardingJitterBuffer):
    made: list[RecordingJitterBuffer] = []
    frames = 0

    def __init__(self, capacity: int, prefetch: int = 0, is_video: bool = False) -> None:
        super().__init__(capacity, prefetch=prefetch, is_video=is_video)
        RecordingJitterBuffer.made.append(self)

    def _take(self, packets: list[Any], count: int) -> Any:
        RecordingJitterBuffer.frames += 1
        return super()._take(packets, count)


@pytest.fixture
def recording_receivers() -> Iterator[list[str]]:
    """Receivers made from now on use `RecordingJitterBuffer`; the decoders they ask
    for are listed (by MIME type). Both undone afterwards: other tests decode."""
    original = adapter.receiver_decoder_factory()
    asked: list[str] = []

    def factory(codec: RTCRtpCodecParameters) -> Any:
        asked.append(codec.mimeType)
        return original(codec)

    adapter.replace_receiver_decoder(factory)
    adapter.replace_receiver_jitter_buffer(RecordingJitterBuffer)
    RecordingJitterBuffer.made.clear()
    RecordingJitterBuffer.frames = 0
    yield asked
    adapter.replace_receiver_decoder(original)
    adapter.replace_receiver_jitter_buffer(JitterBuffer)
    assert adapter.receiver_decoder_factory() is original


async def test_keyframe_requests_and_the_receivers_decoder(
    pair: Pair, recording_receivers: list[str]
) -> None:
    sender = pair.offerer.addTrack(VideoStreamTrack())
    receivers: asyncio.Queue[RTCRtpReceiver] = asyncio.Queue()
    pair.answerer.on(
        "track",
        lambda track: receivers.put_nowait(
            next(t.receiver for t in pair.answerer.getTransceivers() if t.receiver.track is track)
        ),
    )
    await pair.connect()
    async with asyncio.timeout(TIMEOUT):
        receiver = await receivers.get()
        await receiver.track.recv()  # a decoded frame: through our jitter buffer and decoder
        await receiver.track.recv()
    assert recording_receivers == ["video/VP8"]
    assert any(b._is_video for b in RecordingJitterBuffer.made)
    assert RecordingJitterBuffer.frames >= 2

    requested = asyncio.Event()
    adapter.wrap_send_keyframe(sender, requested.set)
    (source,) = receiver.getSynchronizationSources()
    await adapter.send_pli(receiver, source.source)
    async with asyncio.timeout(TIMEOUT):
        await requested.wait()  # the PLI crossed the connection and reached the sender
    receiver.track.stop()


# --- benchmarks ---------------------------------------------------------------------------


@pytest.fixture
def vpx_bitrates() -> Iterator[None]:
    saved = vpx.DEFAULT_BITRATE, vpx.MIN_BITRATE, vpx.MAX_BITRATE
    yield
    vpx.DEFAULT_BITRATE, vpx.MIN_BITRATE, vpx.MAX_BITRATE = saved


def test_a_fixed_vp8_bitrate(vpx_bitrates: None) -> None:
    adapter.fix_vp8_bitrate(300_000)
    encoder = vpx.Vp8Encoder()
    assert encoder.target_bitrate == 300_000
    encoder.target_bitrate = 5_000_000  # what aiortc does on a REMB: clamped to the fixed rate
    assert encoder.target_bitrate == 300_000
