"""Forward encoded media from one peer connection to another: no decode, no re-encode.

The daemon sits between the browser and the other daemon, but it never needs to
*look* at the media: it only forwards it. Decoding and re-encoding a 720p VP8
stream costs about 36 % of a core; forwarding the encoded frames costs about 4 %
(DESIGN.md, "Measured"). So:

- `install_passthrough()` makes every aiortc receiver in this process hand out
  the encoded frames (`av.Packet`) instead of decoded ones, for VP8, H264 and Opus.
  It is process-wide: call it once when the first call starts, in a process that
  never needs decoded media (the daemon; not a test that checks pixels).
- `ForwardedTrack` carries those packets to a sender on another connection, which
  re-packetizes them (aiortc's `Encoder.pack()`), through a small bounded buffer.
- A downstream keyframe request (PLI/FIR) is passed upstream as a PLI
  (`link_keyframe_requests`); both legs must negotiate the same codec
  (`prefer_codecs` on every transceiver: VP8, then H264, RTX kept; Opus for audio).
- Every remote track must be read, or aiortc queues its frames without bound:
  `drain()` reads the ones nobody forwards.

aiortc has no public way to do most of this: every private name it takes is in
`orbitd.adapters.aiortc_internals`.
Heavy module: it imports aiortc and av, so import it only when a call starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import fractions
import logging
import weakref
from collections import deque
from collections.abc import Callable, Coroutine
from typing import TYPE_CHECKING, Any, Protocol, TypeAlias

import av
from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    sdp,
)
from aiortc import codecs as aiortc_codecs
from aiortc.mediastreams import MediaStreamError
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from av.frame import Frame

from ..adapters.aiortc_internals import (
    ForwardingJitterBuffer,
    receiver_decoder_factory,
    replace_receiver_decoder,
    replace_receiver_jitter_buffer,
    send_pli,
    wrap_send_keyframe,
)
from .forwarding import SenderTrack

if TYPE_CHECKING:
    from av.stream import Stream

log = logging.getLogger("orbitd.media")

VIDEO_TIME_BASE = fractions.Fraction(1, 90000)  # RTP clock of every video codec
OPUS_TIME_BASE = fractions.Fraction(1, 48000)  # RTP clock of Opus (RFC 7587)
PASSTHROUGH_MIME_TYPES = frozenset({"video/vp8", "video/h264", "audio/opus"})
VIDEO_CODEC_ORDER = ("video/vp8", "video/h264")
AUDIO_CODEC_ORDER = ("audio/opus",)

VIDEO_MAX_PACKETS = 30  # about 1 s at 30 fps: a relay must not build up latency
AUDIO_MAX_PACKETS = 50  # 1 s of 20 ms Opus packets
KEYFRAME_MIN_INTERVAL = 0.25  # s; coalesce keyframe requests sent upstream
KEYFRAME_RETRY = 1.0  # s; ask again while still waiting (an RTCP packet can be lost)

Packet: TypeAlias = "av.Packet[Stream]"
Media: TypeAlias = "Frame | av.Packet[Stream]"


class _JitterFrame(Protocol):
    """What aiortc's receiver hands a decoder: one reassembled encoded frame."""

    data: bytes
    timestamp: int  # RTP timestamp, rebased to start at 0, in the codec's clock


# --- install_passthrough -----------------------------------------------------------


class _PassthroughDecoder:
    """Stands in for aiortc's decoder: wraps the encoded frame in an `av.Packet`."""

    def __init__(self, codec: RTCRtpCodecParameters) -> None:
        self.mime_type = codec.mimeType.lower()
        self.time_base = VIDEO_TIME_BASE if self.mime_type.startswith("video/") else OPUS_TIME_BASE

    def decode(self, encoded_frame: _JitterFrame) -> list[Packet]:
        data = encoded_frame.data
        packet = av.Packet(data)
        packet.pts = encoded_frame.timestamp
        packet.time_base = self.time_base
        packet.is_keyframe = _is_keyframe(self.mime_type, data)
        packet.opaque = self.mime_type  # lets a forwarder see the source codec
        return [packet]


def _is_keyframe(mime_type: str, data: bytes) -> bool:
    if mime_type == "video/vp8":
        # RFC 6386 9.1: bit 0 of the frame tag is 0 for a key frame.
        return bool(data) and not data[0] & 0x01
    if mime_type == "video/h264":
        # aiortc's depayloader writes Annex B: look for an IDR slice (NAL type 5).
        start = data.find(b"\x00\x00\x01")
        while start != -1 and start + 3 < len(data):
            if data[start + 3] & 0x1F == 5:
                return True
            start = data.find(b"\x00\x00\x01", start + 3)
        return False
    return True  # audio: every packet stands alone


def _get_decoder(codec: RTCRtpCodecParameters) -> Any:
    if codec.mimeType.lower() in PASSTHROUGH_MIME_TYPES:
        return _PassthroughDecoder(codec)
    return aiortc_codecs.get_decoder(codec)  # G.711/G.722: decoded (then re-encoded)


def install_passthrough() -> None:
    """Make aiortc receivers in this process yield encoded `av.Packet`s (VP8, H264, Opus).

    Idempotent and process-wide. Call it before the first media packet arrives.
    Each packet carries `pts` in the RTP clock (`time_base` 1/90000 for video,
    1/48000 for Opus), `is_keyframe`, and `opaque` = the codec's MIME type, lower case.
    """
    # aiortc has no hook to replace a receiver's decoder; its decoder thread looks up
    # the module-level `get_decoder` for every codec change, so replacing it here takes
    # effect for every receiver, existing or future. The receiver passes whatever
    # `decode()` returns to the track untouched.
    replace_receiver_decoder(_get_decoder)
    # Receivers build their jitter buffer from the module-level name when
    # they are created (the daemon's media transceivers come after this call).
    replace_receiver_jitter_buffer(ForwardingJitterBuffer)


def passthrough_installed() -> bool:
    """Whether `install_passthrough()` is in effect in this process."""
    return receiver_decoder_factory() is _get_decoder


# --- keyframe requests ---------------------------------------------------------------


class KeyframeRequester:
    """Sends PLI upstream through one receiver, at most once per `min_interval`.

    Requests that arrive closer together are coalesced into one, sent when the
    interval has passed, so several downstream PLIs never turn into a storm.
    """

    def __init__(
        self, receiver: RTCRtpReceiver, min_interval: float = KEYFRAME_MIN_INTERVAL
    ) -> None:
        self._receiver = weakref.ref(receiver)  # `keyframe_requester` keys on the receiver
        self.min_interval = min_interval
        self.requested = 0
        """Requests asked for (`request()` calls)."""
        self.sent = 0
        """Requests actually sent upstream (after coalescing)."""
        self._last = -float("inf")
        self._pending: asyncio.TimerHandle | None = None
        self._tasks: set[asyncio.Future[None]] = set()

    def request(self) -> None:
        self.requested += 1
        if self._pending is not None:
            return
        loop = asyncio.get_running_loop()
        delay = self._last + self.min_interval - loop.time()
        if delay <= 0:
            self._send()
        else:
            self._pending = loop.call_later(delay, self._send)

    def _send(self) -> None:
        self._pending = None
        self._last = asyncio.get_running_loop().time()
        receiver = self._receiver()
        if receiver is None:
            return
        # Every SSRC heard in the last 10 s: the media SSRC, and the RTX one if the
        # source retransmitted; a sender ignores a PLI for an SSRC that is not its own.
        ssrcs = [source.source for source in receiver.getSynchronizationSources()]
        for ssrc in ssrcs:
            # aiortc sends PLI itself only on loss; it has no public call.
            self._spawn(send_pli(receiver, ssrc))
        if ssrcs:
            self.sent += 1

    def _spawn(self, coroutine: Coroutine[Any, Any, None]) -> None:
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)


_requesters: weakref.WeakKeyDictionary[RTCRtpReceiver, KeyframeRequester] = (
    weakref.WeakKeyDictionary()
)


def keyframe_requester(receiver: RTCRtpReceiver) -> KeyframeRequester:
    """The one `KeyframeRequester` of `receiver` (shared, so coalescing covers all users)."""
    requester = _requesters.get(receiver)
    if requester is None:
        requester = _requesters[receiver] = KeyframeRequester(receiver)
    return requester


_keyframe_callbacks: weakref.WeakKeyDictionary[RTCRtpSender, dict[object, Callable[[], None]]] = (
    weakref.WeakKeyDictionary()
)


def on_keyframe_request(
    sender: RTCRtpSender, callback: Callable[[], None], *, slot: object = None
) -> None:
    """Call `callback` whenever the remote receiver of `sender` sends PLI or FIR.

    Callbacks add up; one given a `slot` replaces the earlier callback of that slot
    (the upstream link, when the sender's source changes). The sender keeps its own
    behaviour too (an encoding sender forces a keyframe), so it stays correct when a
    local source replaces the forwarded track.
    """
    first = sender not in _keyframe_callbacks
    callbacks = _keyframe_callbacks.setdefault(sender, {})
    callbacks[slot if slot is not None else object()] = callback
    if not first:
        return
    # aiortc has no event for a keyframe request: wrap the sender's handling of it,
    # on this instance only, once.

    def requested() -> None:
        for callback in list(_keyframe_callbacks.get(sender, {}).values()):
            callback()

    wrap_send_keyframe(sender, requested)


def link_keyframe_requests(sender: RTCRtpSender, receiver: RTCRtpReceiver) -> KeyframeRequester:
    """Pass keyframe requests that reach `sender` upstream to `receiver`'s source, as PLI."""
    requester = keyframe_requester(receiver)
    on_keyframe_request(sender, requester.request, slot="upstream")
    return requester


# --- reading remote tracks: forward or drain -----------------------------------------


class _Tap:
    """Reads one source track until it ends and hands each item to the subscribers.

    With no subscriber the items are dropped: the source is drained. Once tapped, a
    source is read until it ends, so its frames never pile up in aiortc's queue.
    """

    def __init__(self, source: MediaStreamTrack) -> None:
        self.source = source
        self.subscribers: list[ForwardedTrack] = []
        self._stopped_outside = False
        self.task: asyncio.Task[None] = asyncio.ensure_future(self._run())
        source.on("ended", self._source_stopped)

    async def _run(self) -> None:
        try:
            while True:
                item = await self.source.recv()
                for subscriber in self.subscribers:
                    subscriber._push(item)
        except MediaStreamError:
            pass
        except asyncio.CancelledError:
            if not self._stopped_outside:
                raise
        finally:
            self._finish()

    def _source_stopped(self) -> None:
        """Someone called `stop()` on the source: stop waiting for it."""
        try:
            current = asyncio.current_task()
        except RuntimeError:
            current = None
        if current is not self.task and not self.task.done():
            self._stopped_outside = True
            self._finish()
            self.task.cancel()

    def _finish(self) -> None:
        if _taps.get(self.source) is self:
            del _taps[self.source]
        for subscriber in self.subscribers:
            subscriber._source_ended()
        self.subscribers.clear()


_taps: dict[MediaStreamTrack, _Tap] = {}


def _tap(source: MediaStreamTrack) -> _Tap:
    tap = _taps.get(source)
    if tap is None:
        tap = _taps[source] = _Tap(source)
    return tap


def drain(track: MediaStreamTrack) -> asyncio.Task[None]:
    """Read `track` to its end and drop what it yields (a remote track nobody forwards).

    Safe to call more than once and on a track that is also forwarded. The task ends
    with the track.
    """
    return _tap(track).task


class ForwardedTrack(MediaStreamTrack):
    """The items of `source` (encoded `av.Packet`s after `install_passthrough()`),
    ready to be added to another peer connection.

    Between the source and the sender sits a buffer of at most `max_packets`
    (about 1 s). When the consumer stalls and it fills up, audio drops the oldest
    packet; video drops everything buffered and waits for the next keyframe (a delta
    frame without its reference would only decode to garbage), asking for one
    upstream through `request_keyframe`. Video also starts at a keyframe, asked for
    when the consumer first reads (a new downstream subscriber). The track ends when
    the source ends; stopping it leaves the source drained. Several forwarded tracks
    may share one source (each gets every packet).
    """

    def __init__(
        self,
        source: MediaStreamTrack,
        *,
        request_keyframe: Callable[[], None] | None = None,
        max_packets: int | None = None,
    ) -> None:
        super().__init__()
        self.kind = source.kind
        self.source = source
        self.max_packets = max_packets or (
            VIDEO_MAX_PACKETS if source.kind == "video" else AUDIO_MAX_PACKETS
        )
        self._request_keyframe = request_keyframe
        self._buffer: deque[Media] = deque()
        self._ready = asyncio.Event()
        self._waiting_for_keyframe = source.kind == "video"
        self._keyframe_asked_at: float | None = None
        self._source_done = False
        self.codec: str | None = None
        """The source codec's MIME type (lower case), once a packet has arrived."""
        self.forwarded = 0
        self.keyframes = 0
        """Video keyframes taken into the buffer."""
        self.dropped = 0
        self.decoded = 0
        """Items that were decoded frames, not packets: passthrough is not installed."""
        self.max_buffered = 0
        self._tap = _tap(source)
        self._tap.subscribers.append(self)

    @property
    def buffered(self) -> int:
        return len(self._buffer)

    def _push(self, item: Media) -> None:
        if isinstance(item, av.Packet):
            keyframe = item.is_keyframe
            if self.codec is None and isinstance(item.opaque, str):
                self.codec = item.opaque
        else:
            keyframe = True  # a decoded frame needs no reference
            if not self.decoded:
                log.warning("forwarding decoded %s: passthrough is not installed", self.kind)
            self.decoded += 1
        if len(self._buffer) >= self.max_packets:
            if self.kind == "video":
                self.dropped += len(self._buffer)
                self._buffer.clear()
                self._waiting_for_keyframe = True
                self._keyframe_asked_at = None
            else:
                self._buffer.popleft()
                self.dropped += 1
        if self._waiting_for_keyframe:
            if not keyframe:
                self.dropped += 1
                return
            self._waiting_for_keyframe = False
        if keyframe and self.kind == "video":
            self.keyframes += 1
        self._buffer.append(item)
        self.max_buffered = max(self.max_buffered, len(self._buffer))
        self._ready.set()

    def _source_ended(self) -> None:
        self._source_done = True
        self._ready.set()

    async def recv(self) -> Media:
        while self.readyState == "live":
            if self._buffer:
                self.forwarded += 1
                return self._buffer.popleft()
            if self._source_done:
                break
            self._ready.clear()
            if self._waiting_for_keyframe:
                self._ask_for_keyframe()
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(KEYFRAME_RETRY):
                        await self._ready.wait()
            else:
                await self._ready.wait()
        self.stop()
        raise MediaStreamError

    def _ask_for_keyframe(self) -> None:
        if self._request_keyframe is None:
            return
        now = asyncio.get_running_loop().time()
        if self._keyframe_asked_at is None or now - self._keyframe_asked_at >= KEYFRAME_RETRY:
            self._keyframe_asked_at = now
            self._request_keyframe()

    def stop(self) -> None:
        """Stop forwarding; the source is still read (drained) until it ends."""
        if self in self._tap.subscribers:
            self._tap.subscribers.remove(self)
        self._buffer.clear()
        self._ready.set()
        super().stop()


def forwarded_track(receiver: RTCRtpReceiver, *, max_packets: int | None = None) -> ForwardedTrack:
    """A `ForwardedTrack` of `receiver`'s remote track that asks it for keyframes."""
    return ForwardedTrack(
        receiver.track,
        request_keyframe=keyframe_requester(receiver).request,
        max_packets=max_packets,
    )


# --- wiring it into a peer connection --------------------------------------------------


def prefer_codecs(transceiver: RTCRtpTransceiver, first: str | None = None) -> None:
    """Offer/answer VP8, then H264 (RTX kept) for video; Opus first for audio.

    `first` (a MIME type such as ``video/H264``) goes before them: use the codec of
    the upstream leg, from `negotiated_codec`. A sender re-packetizes packets for the
    codec *it* negotiated, so both legs of a forwarded stream must agree; with these
    preferences on every transceiver they do (aiortc offers VP8 first anyway, and
    every browser has VP8).
    """
    order: tuple[str, ...] = VIDEO_CODEC_ORDER if transceiver.kind == "video" else AUDIO_CODEC_ORDER
    if first is not None:
        order = (first.lower(), *(name for name in order if name != first.lower()))
    capabilities = RTCRtpSender.getCapabilities(transceiver.kind).codecs

    def rank(codec: RTCRtpCodecCapability) -> int:
        name = codec.mimeType.lower()
        return order.index(name) if name in order else len(order)

    transceiver.setCodecPreferences(sorted(capabilities, key=rank))


def negotiated_codec(pc: RTCPeerConnection, transceiver: RTCRtpTransceiver) -> str | None:
    """The MIME type (lower case) `transceiver` sends with, read from the answer; None
    before there is one."""
    answer = next(
        (d for d in (pc.localDescription, pc.remoteDescription) if d and d.type == "answer"),
        None,
    )
    if answer is None or transceiver.mid is None:
        return None
    for media in sdp.SessionDescription.parse(answer.sdp).media:
        if media.rtp.muxId == transceiver.mid and media.rtp.codecs:
            return media.rtp.codecs[0].mimeType.lower()
    return None


def transceiver_of(pc: RTCPeerConnection, sender: RTCRtpSender) -> RTCRtpTransceiver:
    return next(t for t in pc.getTransceivers() if t.sender is sender)


def forward(
    receiver: RTCRtpReceiver,
    pc: RTCPeerConnection,
    *,
    codec: str | None = None,
    max_packets: int | None = None,
) -> RTCRtpSender:
    """Send `receiver`'s media on `pc`, encoded: add the track, prefer the codecs
    (`codec` first: the upstream one, see `negotiated_codec`), and pass keyframe
    requests upstream. Call it before `pc` creates its offer or answer."""
    sender = pc.addTrack(forwarded_track(receiver, max_packets=max_packets))
    prefer_codecs(transceiver_of(pc, sender), first=codec)
    link_keyframe_requests(sender, receiver)
    return sender


__all__ = [
    "ForwardedTrack",
    "ForwardingJitterBuffer",
    "KeyframeRequester",
    "SenderTrack",
    "drain",
    "forward",
    "forwarded_track",
    "install_passthrough",
    "keyframe_requester",
    "link_keyframe_requests",
    "negotiated_codec",
    "on_keyframe_request",
    "passthrough_installed",
    "prefer_codecs",
    "transceiver_of",
]
