"""The WebRTC connection to the other daemon (aiortc), with the chat data channel.

Imported only when a session starts: aiortc is heavy and an idle daemon
should not pay for it.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from enum import StrEnum

from aiortc import RTCDataChannel, RTCPeerConnection, RTCSessionDescription
from aiortc.rtcdtlstransport import certificate_digest

from .ice import rtc_configuration, use_loopback_only
from .settings import Config

log = logging.getLogger("orbitd.peer")
CHAT_LABEL = "chat"


class PeerState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


class Peer:
    """One RTCPeerConnection; `on_message` gets chat frames, `on_state` state changes."""

    def __init__(
        self,
        config: Config,
        on_message: Callable[[str], None],
        on_state: Callable[[PeerState], None],
    ) -> None:
        if config.ice_loopback:
            use_loopback_only()
        self.state = PeerState.NEW
        self._on_message = on_message
        self._on_state = on_state
        self._pc = RTCPeerConnection(configuration=rtc_configuration(config))
        self._channel: RTCDataChannel | None = None
        self._open = asyncio.get_running_loop().create_future()
        self._pc.on("datachannel", self._adopt)
        self._pc.on("connectionstatechange", self._connection_changed)

    def _set_state(self, state: PeerState) -> None:
        if state is self.state:
            return
        log.info("peer %s -> %s", self.state.value, state.value)
        self.state = state
        self._on_state(state)

    def _adopt(self, channel: RTCDataChannel) -> None:
        if channel.label != CHAT_LABEL or self._channel is not None:
            channel.close()
            return
        self._channel = channel
        channel.on("message", self._received)
        channel.on("close", lambda: self._set_state(PeerState.CLOSED))
        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", self._opened)

    def _opened(self) -> None:
        if not self._open.done():
            self._open.set_result(None)
        self._set_state(PeerState.OPEN)

    def _received(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self._on_message(data)

    async def _connection_changed(self) -> None:
        state = self._pc.connectionState
        if state == "failed":
            self._set_state(PeerState.FAILED)
        elif state == "closed":
            self._set_state(PeerState.CLOSED)

    async def create_offer(self) -> str:
        """Host: make the chat channel and the offer (all candidates gathered)."""
        self._adopt(self._pc.createDataChannel(CHAT_LABEL, ordered=True))
        self._set_state(PeerState.CONNECTING)
        await self._pc.setLocalDescription(await self._pc.createOffer())
        return self._pc.localDescription.sdp

    async def accept_offer(self, sdp: str) -> str:
        """Guest: take the host's offer and answer it."""
        self._set_state(PeerState.CONNECTING)
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        return self._pc.localDescription.sdp

    async def accept_answer(self, sdp: str) -> None:
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))

    async def wait_open(self) -> None:
        """Until the chat channel is open (a connection with no candidates never fails by
        itself: callers bound this wait)."""
        await asyncio.shield(self._open)

    @property
    def pc(self) -> RTCPeerConnection:
        return self._pc

    def presented_fingerprint(self) -> str:
        """SHA-256 fingerprint of the certificate the peer presented in the DTLS handshake."""
        dtls = self._pc.sctp.transport if self._pc.sctp else None
        ssl = getattr(dtls, "_ssl", None)  # aiortc keeps the OpenSSL connection private
        if ssl is None:
            return ""
        certificate = ssl.get_peer_certificate(as_cryptography=True)
        return certificate_digest(certificate, "sha-256") if certificate else ""

    def send(self, text: str) -> None:
        if self._channel is None or self._channel.readyState != "open":
            raise ConnectionError("the chat channel is not open")
        self._channel.send(text)

    async def close(self) -> None:
        await self._pc.close()
        self._set_state(PeerState.CLOSED)
