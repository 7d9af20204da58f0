"""Sealed re-signaling of a new peer connection, after the handshake (feature `reconnect`).

aiortc cannot restart ICE: a dead link is recovered with a new `RTCPeerConnection`
(a new generation of `orbitd.peer.Peer`), and its offer and answer travel sealed
like the first ones, through the rendezvous socket. The host leads: it alone numbers
generations and sends `reoffer`; the guest answers the newest with `reanswer`.

Security: the boxes are sealed under the session's signaling keys (from the PAKE the
users' security code derives from) with their own associated data, so only the other
daemon of this session can have made them, and a box of the first handshake never
opens as a reconnect box. The generation is authenticated with the SDP: the guest takes
only a reoffer newer than any it took (a replayed old one is dropped), the host only
the reanswer to its current generation. Once the new connection is up, the DTLS
fingerprint the peer presented must be the one in the sealed SDP of that generation;
that binds the new connection to the PAKE keys, so the security code the users
compared (derived from the keys and the first connection's fingerprints) stays valid
and is not shown anew.

The same boxes carry the first connection's next ICE plan before the chat is ready
(`orbitd.first_connect`); its `Resignal` goes on into the reconnects.

A state machine with no I/O: the caller sends the `relay.Sealed` frames it returns.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orbitcore.protocol import relay, signal
from orbitcore.protocol.frames import ProtocolError

from .boxes import Boxes
from .boxes import Opened as BoxOpened
from .crypto import SealError, Seat, SessionKeys
from .handshake import sdp_fingerprint

log = logging.getLogger("orbitd.resignal")


@dataclass(frozen=True)
class Reoffered:
    """Guest: the host's offer for `generation`; answer it on a new connection."""

    generation: int
    sdp: str


@dataclass(frozen=True)
class Reanswered:
    """Host: the guest's answer for the current generation; apply it."""

    generation: int
    sdp: str


@dataclass(frozen=True)
class RejoinAsked:
    """Host: the guest waits for a reoffer; the newest it saw is `generation`."""

    generation: int


@dataclass(frozen=True)
class Dropped:
    """A box that is not for now: `reason` for the log (nothing else happens)."""

    reason: str


@dataclass(frozen=True)
class Foreign(Dropped):
    """A box that does not open as a reconnect box (one of the first handshake's, say)."""


Opened = Reoffered | Reanswered | RejoinAsked | Dropped


class Resignal:
    def __init__(
        self, seat: Seat, keys: SessionKeys, token: str, boxes: Boxes | None = None
    ) -> None:
        self.seat = seat
        self._keys = keys
        # The handshake's (`bound-boxes`: one count per direction for the whole session).
        self.boxes = boxes or Boxes(seat, keys, token)
        self.generation = 0  # the connection the handshake verified
        self.remote_sdp: str | None = None  # the sealed SDP of `generation`'s peer

    def _seal(self, body: signal.Reoffer | signal.Reanswer | signal.Rejoin) -> relay.Sealed:
        return self.boxes.seal("reconnect", body.encode().encode())

    def reoffer(self, generation: int, sdp: str) -> relay.Sealed:
        """Host: seal the offer of a new connection, numbered `generation`."""
        if self.seat is not Seat.HOST or generation <= self.generation:
            raise ValueError("only the host offers, and each generation is newer")
        self.generation, self.remote_sdp = generation, None
        return self._seal(signal.Reoffer(generation, sdp))

    def reanswer(self, sdp: str) -> relay.Sealed:
        """Guest: seal the answer to the reoffer it took last."""
        if self.seat is not Seat.GUEST or self.remote_sdp is None:
            raise ValueError("only the guest answers, and only a reoffer it took")
        return self._seal(signal.Reanswer(self.generation, sdp))

    def rejoin(self) -> relay.Sealed:
        """Guest: ask for a reoffer newer than the newest it saw."""
        if self.seat is not Seat.GUEST:
            raise ValueError("only the guest asks")
        return self._seal(signal.Rejoin(self.generation))

    def open(self, frame: relay.Sealed) -> Opened:
        """A sealed frame from the relay during the chat."""
        try:
            opened = self.boxes.open(frame, "reconnect")
        except (SealError, ValueError):
            return Foreign("the box does not open as a reconnect box")
        if not isinstance(opened, BoxOpened):
            return Foreign(opened.reason) if frame.phase != "reconnect" else Dropped(opened.reason)
        if self.boxes.bound and not opened.bound:
            return Dropped("an unbound reconnect box from a peer that binds its boxes")
        try:
            body = signal.CHANNEL.parse(opened.plain)
        except ProtocolError:
            return Dropped("the sealed body is malformed")
        if isinstance(body, signal.Reoffer) and self.seat is Seat.GUEST:
            if body.generation <= self.generation:
                return Dropped(f"reoffer {body.generation} is not newer than {self.generation}")
            self.generation, self.remote_sdp = body.generation, body.sdp
            return Reoffered(body.generation, body.sdp)
        if isinstance(body, signal.Reanswer) and self.seat is Seat.HOST:
            if body.generation != self.generation or self.remote_sdp is not None:
                return Dropped(f"reanswer {body.generation} is not for {self.generation}")
            self.remote_sdp = body.sdp
            return Reanswered(body.generation, body.sdp)
        if isinstance(body, signal.Rejoin) and self.seat is Seat.HOST:
            if body.generation > self.generation:
                return Dropped(f"rejoin {body.generation} is ahead of {self.generation}")
            return RejoinAsked(body.generation)
        return Dropped(f"`{body.TYPE}` is not expected during the chat")

    def verify(self, presented_fingerprint: str) -> bool:
        """The new connection's peer presented the certificate its sealed SDP announced."""
        if self.remote_sdp is None:
            return False
        sealed = sdp_fingerprint(self.remote_sdp)
        return sealed is not None and presented_fingerprint.upper() == sealed
