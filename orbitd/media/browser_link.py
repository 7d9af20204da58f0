"""The browser's media link: a WebRTC connection on loopback from the session page to
this daemon, and its one owner, `BrowserLink`.

It is not the peer connection (`orbitd.peer`, to the other daemon): the browser
offers, the daemon answers, and the link lives for one call at most. The browser's
camera and microphone arrive on it; the other daemon's media leaves on it.
"""

from __future__ import annotations

from collections.abc import Callable

from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCSessionDescription,
)

from ..ice import rtc_configuration
from ..settings import Config
from .passthrough import drain, prefer_codecs


class BrowserLink:
    """`on_track(link, kind)`: the browser's `kind` arrived (its receiver: `receiver(kind)`)."""

    def __init__(self, config: Config, on_track: Callable[[BrowserLink, str], None]) -> None:
        self._pc = RTCPeerConnection(configuration=rtc_configuration(config))
        self._on_track = on_track
        self._receivers: dict[str, RTCRtpReceiver] = {}
        self._pc.on("track", self._track)

    async def accept_offer(self, sdp: str) -> None:
        """Apply the browser's offer; every transceiver sends and receives."""
        # Chromium's <uuid>.local candidates cannot be resolved from this host and cost
        # aioice a second each: drop them; its checks reach us and we learn its address.
        lines = [
            line
            for line in sdp.split("\r\n")
            if not (line.startswith("a=candidate:") and ".local " in line)
        ]
        await self._pc.setRemoteDescription(
            RTCSessionDescription(sdp="\r\n".join(lines), type="offer")
        )
        for transceiver in self._pc.getTransceivers():
            transceiver.direction = "sendrecv"
            prefer_codecs(transceiver)

    async def answer(self) -> str:
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        return str(self._pc.localDescription.sdp)

    def _track(self, track: MediaStreamTrack) -> None:
        receiver = next(
            (t.receiver for t in self._pc.getTransceivers() if t.receiver.track is track), None
        )
        drain(track)  # read it always; forwarded copies subscribe to the same packets
        if receiver is not None:
            self._receivers[track.kind] = receiver
            self._on_track(self, track.kind)

    def receiver(self, kind: str) -> RTCRtpReceiver | None:
        """The browser's `kind`, once it has arrived."""
        return self._receivers.get(kind)

    def sender(self, kind: str) -> RTCRtpSender | None:
        """Where the other daemon's `kind` goes to the browser."""
        for transceiver in self._pc.getTransceivers():
            if str(transceiver.kind) == kind:
                return transceiver.sender
        return None

    async def close(self) -> None:
        self._receivers.clear()
        await self._pc.close()
