"""The WebRTC connection to the other daemon (aiortc), and its one owner: `Peer`.

`Peer` alone creates the `RTCPeerConnection`, registers its handlers, drives its
offers and answers, and owns its chat data channel and the session's audio and
video transceivers. The rest of the daemon sees a narrow interface:

  chat       `send(text)`; the `on_message(text)` and `on_state(PeerState)` callbacks
  handshake  `create_offer()`, `accept_offer(sdp)`, `accept_answer(sdp)`,
             `presented_fingerprint()`
  calls      `add_media()`, `sender(kind)`, `set_outgoing(kind, track)`,
             `renegotiate_offer()`, `renegotiate_answer()`,
             `apply_remote_description(sdp, kind)`, `signaling_state`, `ice_state`,
             `path()`, and the events of the `MediaEvents` given to `attach_media`
  reconnect  `replace()`
  files      `files`: the current connection's `files` channel (`orbitd.peer_files`)
  ICE        `plans`: the session's `IcePlans`; each new connection uses its current plan

Each connection is a generation. `replace()` closes the current one, then makes
the next: the same handlers, the same media transceivers and outgoing tracks, and
a chat and a files channel again (the host makes them with its offer, the guest
adopts them).
Events of an older generation are dropped: the session never hears the old
connection close, nor a late message from its channel. Generations never overlap.

Imported only when a session starts: aiortc is heavy and an idle daemon
should not pay for it.
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
from collections.abc import Callable
from enum import StrEnum
from typing import ParamSpec, Protocol

from aiortc import (
    MediaStreamTrack,
    RTCDataChannel,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from .adapters.aiortc_internals import (
    nominated_pair,
    presented_certificate_fingerprint,
    retransmit_checks_on_incoming,
)
from .adapters.sctp_packets import send_first
from .ice import plan_configuration, use_loopback_only
from .ice_plan import IcePlans
from .media.passthrough import drain, prefer_codecs
from .peer_files import FILES_LABEL, FilesChannel
from .peer_packets import PacketSizes
from .settings import Config

log = logging.getLogger("orbitd.peer")
CHAT_LABEL = "chat"
KINDS = ("audio", "video")
CLOSE_WAIT_SECONDS = 2.0  # at the end, how long replaced connections may still take
P = ParamSpec("P")


class PeerState(StrEnum):
    NEW = "new"
    CONNECTING = "connecting"
    OPEN = "open"
    CLOSED = "closed"
    FAILED = "failed"


class MediaEvents(Protocol):
    """What a call hears from the peer connection (see `Peer.attach_media`)."""

    def peer_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None: ...

    def signaling_changed(self, state: str) -> None: ...

    def ice_changed(self, state: str) -> None: ...


class Peer:
    """The peer connection; `on_message` gets chat frames, `on_state` state changes."""

    def __init__(
        self,
        config: Config,
        on_message: Callable[[str], None],
        on_state: Callable[[PeerState], None],
        plans: IcePlans | None = None,
    ) -> None:
        if config.ice_loopback:
            use_loopback_only()
        # A first check toward a NAT is usually dropped; aioice would resend it only
        # after 0.5 s even when the other side's check has come in (bench nat: 0.53 s
        # -> 0.05 s offer to open across two NATs). Process-wide, once.
        retransmit_checks_on_incoming()
        self.state = PeerState.NEW
        self.generation = 0
        self._config = config
        # The ICE servers of each new connection: the session's current plan (or the
        # first plan of the configured servers alone).
        self.plans = plans or IcePlans(
            config.ice_servers, config.ice_username, config.ice_credential
        )
        self._on_message = on_message
        self._on_state = on_state
        self._media: MediaEvents | None = None
        self._media_kinds: list[str] = []  # transceivers this side added (the host's)
        self._outgoing: dict[str, MediaStreamTrack] = {}  # what each kind sends
        self._closing: set[asyncio.Future[None]] = set()  # replaced connections closing
        self.files = FilesChannel()  # each generation's `files` channel (feature `files`)
        self.packets = PacketSizes()  # large SCTP packets on loopback (F3, `large-packets`)
        self._connect()

    # -- one generation ------------------------------------------------------------
    def _connect(self) -> None:
        """A new connection for the current generation, every handler registered."""
        plan = self.plans.current
        log.info("peer connection", extra={"fields": {"ice": plan.describe()}})
        self._pc = pc = RTCPeerConnection(configuration=plan_configuration(plan))
        self._channel: RTCDataChannel | None = None
        self.files.reset()
        self._open: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        generation = self.generation
        pc.on("datachannel", self._current(generation, self._adopt))
        pc.on("connectionstatechange", self._current(generation, self._connection_changed))
        pc.on("track", self._current(generation, self._track))
        pc.on("signalingstatechange", self._current(generation, self._signaling_changed))
        pc.on("iceconnectionstatechange", self._current(generation, self._ice_changed))
        for kind in self._media_kinds:
            self._add_transceiver(kind)

    def _current(self, generation: int, handler: Callable[P, None]) -> Callable[P, None]:
        """`handler`, called only while `generation` is the current one."""

        def guarded(*args: P.args, **kwargs: P.kwargs) -> None:
            if generation == self.generation:
                handler(*args, **kwargs)

        return guarded

    async def replace(self) -> int:
        """Close this connection and make the next generation's (its number is returned).

        Nothing of the old one reaches the session any more. The new one is signalled
        as the first was: the host `create_offer()`, the guest `accept_offer()`.
        """
        old = self._pc
        self.generation += 1
        log.info("peer connection replaced", extra={"fields": {"generation": self.generation}})
        for transceiver in old.getTransceivers():
            # aiortc stops a sender's track when the sender stops; ours outlive it.
            if transceiver.sender.track is not None:
                transceiver.sender.replaceTrack(None)
        # Closed in the background: with the link down, aioice deleting a TURN allocation
        # retries for about 15 s; and a close() cancelled half-way (by the attempt's time
        # limit) leaves aiortc's close future unresolved, so every later close() hangs.
        closing = asyncio.ensure_future(old.close())
        self._closing.add(closing)
        closing.add_done_callback(self._old_closed)
        self._connect()
        self._set_state(PeerState.NEW)
        return self.generation

    def _set_state(self, state: PeerState) -> None:
        if state is self.state:
            return
        log.info("peer %s -> %s", self.state.value, state.value)
        self.state = state
        self._on_state(state)

    # -- the chat channel ------------------------------------------------------------
    def _adopt(self, channel: RTCDataChannel) -> None:
        if channel.label == FILES_LABEL:
            self.files.adopt(channel, lambda handler: self._current(self.generation, handler))
            return
        if channel.label != CHAT_LABEL or self._channel is not None:
            channel.close()
            return
        self._channel = channel
        send_first(self._pc, channel)  # chat goes ahead of a file's queued chunks
        generation = self.generation
        channel.on("message", self._current(generation, self._received))
        channel.on("close", self._current(generation, self._closed))
        if channel.readyState == "open":
            self._opened()
        else:
            channel.on("open", self._current(generation, self._opened))

    def _opened(self) -> None:
        if not self._open.done():
            self._open.set_result(None)
        self._set_state(PeerState.OPEN)

    def _closed(self) -> None:
        self._set_state(PeerState.CLOSED)

    def _received(self, data: str | bytes) -> None:
        if isinstance(data, str):
            self._on_message(data)

    def _connection_changed(self) -> None:
        state = self._pc.connectionState
        if state == "connected":  # DTLS is up; aiortc reads no packet before this returns
            self.packets.connected(self._pc, self.path())
        if state == "failed":
            self._set_state(PeerState.FAILED)
        elif state == "closed":
            self._set_state(PeerState.CLOSED)

    def send(self, text: str) -> None:
        """Send on the chat channel, or raise `ConnectionError` when it cannot carry it:
        its DTLS transport closed too (aiortc would queue the text and fail in a task of
        its own, "Task exception was never retrieved")."""
        channel = self._channel
        if channel is None or channel.readyState != "open":
            raise ConnectionError("the chat channel is not open")
        if channel.transport.transport.state != "connected":
            raise ConnectionError("the connection is not up")
        channel.send(text)

    async def wait_open(self) -> None:
        """Until the chat channel is open (a connection with no candidates never fails by
        itself: callers bound this wait)."""
        await asyncio.shield(self._open)

    # -- the first offer and answer (sealed, by the handshake) -------------------------
    async def create_offer(self) -> str:
        """Host: make the chat and files channels and the offer (all candidates gathered)."""
        self._adopt(self._pc.createDataChannel(CHAT_LABEL, ordered=True))
        self._adopt(self._pc.createDataChannel(FILES_LABEL, ordered=True))
        self._set_state(PeerState.CONNECTING)
        return await self.renegotiate_offer()

    async def accept_offer(self, sdp: str) -> str:
        """Guest: take the host's offer and answer it."""
        self._set_state(PeerState.CONNECTING)
        await self.apply_remote_description(sdp, "offer")
        return await self.renegotiate_answer()

    async def accept_answer(self, sdp: str) -> None:
        await self.apply_remote_description(sdp, "answer")

    def presented_fingerprint(self) -> str:
        """SHA-256 fingerprint of the certificate the peer presented in the DTLS handshake."""
        return presented_certificate_fingerprint(self._pc)

    # -- media, for calls --------------------------------------------------------------
    def attach_media(self, events: MediaEvents | None) -> None:
        """Who hears remote tracks and signaling and ICE state changes (None: nobody;
        remote tracks are then drained)."""
        self._media = events

    def _transceivers(self) -> dict[str, RTCRtpTransceiver]:
        found: dict[str, RTCRtpTransceiver] = {}
        for transceiver in self._pc.getTransceivers():
            found.setdefault(str(transceiver.kind), transceiver)
        return found

    def add_media(self) -> None:
        """Host: one sendrecv transceiver per kind, for the rest of the session (a
        replaced connection gets them again). The guest's come with the host's offer."""
        present = self._transceivers()
        for kind in KINDS:
            if kind not in self._media_kinds:
                self._media_kinds.append(kind)
            if kind not in present:
                self._add_transceiver(kind)

    def _add_transceiver(self, kind: str) -> None:
        transceiver = self._pc.addTransceiver(kind, direction="sendrecv")
        prefer_codecs(transceiver)
        self._attach_outgoing(kind)

    def sender(self, kind: str) -> RTCRtpSender | None:
        """The sender of the `kind` transceiver, if there is one yet."""
        transceiver = self._transceivers().get(kind)
        return transceiver.sender if transceiver is not None else None

    def set_outgoing(self, kind: str, track: MediaStreamTrack) -> None:
        """The track this side sends for `kind`, now and on every later connection."""
        self._outgoing[kind] = track
        self._attach_outgoing(kind)

    def _attach_outgoing(self, kind: str) -> None:
        transceiver = self._transceivers().get(kind)
        track = self._outgoing.get(kind)
        if transceiver is not None and track is not None and transceiver.sender.track is not track:
            transceiver.sender.replaceTrack(track)

    def _track(self, track: MediaStreamTrack) -> None:
        receiver = next(
            (t.receiver for t in self._pc.getTransceivers() if t.receiver.track is track), None
        )
        if self._media is None or receiver is None:
            drain(track)  # every remote track is read, or aiortc queues it without bound
            return
        self._media.peer_track(track, receiver)

    def _signaling_changed(self) -> None:
        if self._media is not None:
            self._media.signaling_changed(self._pc.signalingState)

    def _ice_changed(self) -> None:
        if self._media is not None:
            self._media.ice_changed(self._pc.iceConnectionState)

    @property
    def signaling_state(self) -> str:
        return str(self._pc.signalingState)

    @property
    def ice_state(self) -> str:
        return str(self._pc.iceConnectionState)

    async def renegotiate_offer(self) -> str:
        """createOffer + setLocalDescription (all candidates gathered): the offer."""
        await self._pc.setLocalDescription(await self._pc.createOffer())
        return str(self._pc.localDescription.sdp)

    async def renegotiate_answer(self) -> str:
        """Answer the applied remote offer, this side sending on every media transceiver."""
        for kind, transceiver in self._transceivers().items():
            if kind in KINDS:
                transceiver.direction = "sendrecv"
                self._attach_outgoing(kind)
        await self._pc.setLocalDescription(await self._pc.createAnswer())
        return str(self._pc.localDescription.sdp)

    async def apply_remote_description(self, sdp: str, kind: str) -> None:
        """The peer's offer or answer; one that drops or changes a media section of ours
        is refused (ValueError) before aiortc sees it: aiortc would take it and then
        fail in its connect task (an IndexError nobody can catch), media never starting."""
        local = self._pc.localDescription
        if local is not None and not keeps_sections(media_sections(local.sdp), sdp):
            raise ValueError("the description drops or changes media sections")
        await self._pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))

    def agree_large_packets(self) -> None:
        """Both daemons announced `large-packets`: send them where the path carries them."""
        self.packets.agree(self._pc, self.path())

    def path(self) -> str | None:
        """How the connection runs: loopback, LAN direct, Internet direct or relayed."""
        pair = nominated_pair(self._pc)
        if pair is None:
            return None
        local, remote = pair.local, pair.remote
        if "relay" in (local.type, remote.type):
            return "relayed"
        if remote.host.startswith("127.") or remote.host == "::1":
            return "loopback"
        if local.type == "host" and remote.type in ("host", "prflx") and _private(remote.host):
            return "lan-direct"
        return "internet-direct"

    def _old_closed(self, closing: asyncio.Future[None]) -> None:
        self._closing.discard(closing)
        if not closing.cancelled() and closing.exception() is not None:
            log.debug("a replaced connection failed to close: %r", closing.exception())

    async def close(self) -> None:
        self._media = None
        await self._pc.close()
        if self._closing:  # replaced ones still deleting a TURN allocation: not for long
            await asyncio.wait(self._closing, timeout=CLOSE_WAIT_SECONDS)
        self._set_state(PeerState.CLOSED)


def media_sections(sdp: str) -> list[str]:
    """The media kind of each `m=` section of an SDP, in order."""
    return [line[2:].split(" ", 1)[0] for line in sdp.splitlines() if line.startswith("m=")]


def keeps_sections(ours: list[str], sdp: str) -> bool:
    """`sdp` has every media section `ours` has, at the same place and of the same kind
    (an answer mirrors the offer; a new offer only adds sections, RFC 8829 5.2.2)."""
    return media_sections(sdp)[: len(ours)] == ours


def _private(host: str) -> bool:
    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return host.endswith(".local")
