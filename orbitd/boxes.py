"""The session's sealed signaling boxes, bound to their place in the conversation
(feature `bound-boxes`, issue #11).

The rendezvous cannot open a box, but it can replay, reorder or drop one. Once both
daemons announced `bound-boxes` in their confirms, every later box (offer, answer,
sealed abort, reoffer, reanswer, rejoin) travels with a header in the relay's `sealed`
frame, `seq` (this direction's count, from 1) and `phase` (`handshake` or
`reconnect`), and is sealed with associated data that binds both and the direction:
`chatorbit/signal/<token>/<phase>/<host->guest|guest->host>/<seq>`. The receiver
opens only a box whose `seq` is above every one it took from this peer; a replayed or
reordered one is dropped without effect (a gap is fine: the relay may drop boxes
anyway). A box whose header was changed does not open.

The confirm itself is sealed the old way (`chatorbit/signal/<token>`) so that any
version can read it; a replayed confirm is harmless (read once). Without the feature
on both sides (a 1.2 daemon), every box is sealed the old way, as before.

No I/O: the handshake and `orbitd.resignal` share one `Boxes` per session, so the
count runs across the first handshake and every reconnect.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from orbitcore.protocol import relay

from .crypto import Seat, SessionKeys, open_box, seal

FEATURE = "bound-boxes"
BoxPhase = Literal["handshake", "reconnect"]


@dataclass(frozen=True)
class Opened:
    """A box that opened: its plaintext, and whether it was bound (seq and phase)."""

    plain: bytes
    bound: bool


@dataclass(frozen=True)
class Skipped:
    """A box not opened, and why (for an info log line; nothing else happens)."""

    reason: str


class Boxes:
    def __init__(self, seat: Seat, keys: SessionKeys, token: str) -> None:
        self.keys = keys
        self.token = token
        host_to_guest, guest_to_host = "host->guest", "guest->host"
        self._out, self._in = (
            (host_to_guest, guest_to_host) if seat is Seat.HOST else (guest_to_host, host_to_guest)
        )
        self.bound = False  # both announced `bound-boxes`: set once the peer's confirm is read
        self.sent = 0  # the last seq sealed
        self.taken = 0  # the highest seq opened from the peer

    def _legacy_aad(self, phase: BoxPhase) -> bytes:
        suffix = "" if phase == "handshake" else f"/{phase}"
        return f"chatorbit/signal/{self.token}{suffix}".encode()

    def _aad(self, phase: BoxPhase, direction: str, seq: int) -> bytes:
        return f"chatorbit/signal/{self.token}/{phase}/{direction}/{seq}".encode()

    def seal(self, phase: BoxPhase, plain: bytes, *, legacy: bool = False) -> relay.Sealed:
        """A box for the peer: bound once both announced the feature (never the confirm,
        `legacy`, which every version must read)."""
        if legacy or not self.bound:
            return relay.Sealed(seal(self.keys.signal_send, plain, self._legacy_aad(phase)))
        self.sent += 1
        aad = self._aad(phase, self._out, self.sent)
        return relay.Sealed(seal(self.keys.signal_send, plain, aad), seq=self.sent, phase=phase)

    def open(self, frame: relay.Sealed, phase: BoxPhase) -> Opened | Skipped:
        """A box from the peer, read as one of `phase`. Raises `SealError` when it does
        not open (the caller decides whether that is a mismatch or only dropped)."""
        if frame.seq is None:
            plain = open_box(self.keys.signal_recv, frame.box, self._legacy_aad(phase))
            return Opened(plain, bound=False)
        if frame.phase != phase:
            return Skipped(f"a box of phase {frame.phase}, not {phase}")
        if not self.bound:
            return Skipped("a bound box before the peer's confirm")
        if frame.seq <= self.taken:
            return Skipped(f"box {frame.seq} replayed or out of order (taken {self.taken})")
        plain = open_box(self.keys.signal_recv, frame.box, self._aad(phase, self._in, frame.seq))
        self.taken = frame.seq
        return Opened(plain, bound=True)
