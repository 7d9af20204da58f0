"""The handshake between two daemons, as a state machine with no I/O.

Over the rendezvous relay: each side sends its SPAKE2 message (`pake`), then
a sealed `confirm`; the host seals its WebRTC offer, the guest its answer.
The sealed bodies are `orbitcore.protocol.signal`'s frames. The confirm carries
each side's protocol version and features: each side reads the other's and runs
`version.negotiate` on its own, so an incompatible major fails the handshake with
`version_mismatch` on both sides; otherwise `agreement` holds the features both
announced (a confirm without a version is a 1.0 daemon's).
A box that does not open means the other side used another secret, or the
relay changed something: the handshake fails with `invite_mismatch` and the
caller burns the token. Once WebRTC is up, the DTLS fingerprint the peer
really presented must be the one in its sealed SDP; then both users get the
short authentication string to compare.

Inputs are the relay frames (`handle`) and what the caller's WebRTC stack
reports (`local_description`, `connected`); outputs are instructions.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from enum import StrEnum

from orbitcore.protocol import relay, signal, version
from orbitcore.protocol.frames import Frame, ProtocolError, dispatch

from . import __version__
from .boxes import FEATURE as BOUND_BOXES
from .boxes import Boxes, Opened
from .crypto import (
    Invite,
    Pake,
    SealError,
    Seat,
    SessionKeys,
    b64,
    short_auth_string,
    unb64,
)

log = logging.getLogger("orbitd.handshake")
FINGERPRINT_RE = re.compile(r"^a=fingerprint:sha-256 ([0-9A-Fa-f:]+)\s*$", re.M)


class Phase(StrEnum):
    WAITING = "waiting-for-peer"
    EXCHANGING_KEYS = "exchanging-keys"
    CONNECTING = "connecting"
    READY = "ready"
    FAILED = "failed"


@dataclass(frozen=True)
class SendRelay:
    frame: relay.Pake | relay.Sealed | relay.Abort


@dataclass(frozen=True)
class MakeOffer:
    pass


@dataclass(frozen=True)
class MakeAnswer:
    offer_sdp: str


@dataclass(frozen=True)
class UseAnswer:
    answer_sdp: str


@dataclass(frozen=True)
class Verified:
    sas: str
    keys: SessionKeys


@dataclass(frozen=True)
class Failed:
    code: str
    reason: str


@dataclass(frozen=True)
class PhaseChanged:
    phase: Phase


Output = SendRelay | MakeOffer | MakeAnswer | UseAnswer | Verified | Failed | PhaseChanged

MISMATCH = "The invite was wrong or has been tampered with. This token is now burned."
RELAY_ABORTED = "The server ended the connection attempt."
UNSEALED_ABORT = "The other side or the server ended the connection attempt."
ANNOUNCE_VERSION_ENV = "ORBITD_ANNOUNCE_PROTOCOL_VERSION"  # test hooks, docs/protocol.md
ANNOUNCE_FEATURES_ENV = "ORBITD_ANNOUNCE_FEATURES"


@dataclass(frozen=True)
class Limits:
    """The session's countdown and message limit, as the host issued them (sealed in its
    confirm): what a `session-status` from the relay must agree with."""

    ttl_minutes: int | None = None
    max_message_length: int | None = None


@dataclass(frozen=True)
class Announcement:
    """What this daemon says of itself in its sealed confirm."""

    protocol: str = version.PROTOCOL_VERSION
    features: tuple[str, ...] = version.FEATURES
    software: str = f"orbitd {__version__}"


def announced() -> Announcement:
    """This daemon's announcement. Tests make a daemon claim another protocol version
    (`ORBITD_ANNOUNCE_PROTOCOL_VERSION`) or feature list (`ORBITD_ANNOUNCE_FEATURES`,
    comma-separated); this is the one place those are read."""
    claimed = os.environ.get(ANNOUNCE_VERSION_ENV) or version.PROTOCOL_VERSION
    version.major(claimed)  # a malformed test hook fails loudly, at the start
    features = os.environ.get(ANNOUNCE_FEATURES_ENV)
    listed = version.FEATURES if features is None else tuple(filter(None, features.split(",")))
    return Announcement(claimed, listed)


def sdp_fingerprint(sdp: str) -> str | None:
    found = FINGERPRINT_RE.search(sdp)
    return found.group(1).upper() if found else None


class Handshake:
    def __init__(
        self,
        seat: Seat,
        invite: Invite,
        announcement: Announcement | None = None,
        limits: Limits | None = None,
    ) -> None:
        self.seat = seat
        self.known_limits = limits or Limits()  # what this side knows (sealed in its confirm)
        self.limits: Limits | None = None  # the host's, once both confirms are read
        self.invite = invite
        self.announcement = announcement or Announcement()
        # The peer's confirm, read: what both can use, or why they cannot talk.
        self.agreement: version.Agreement | None = None
        self.incompatible: version.Incompatible | None = None
        self.phase = Phase.WAITING
        self._pake = Pake(seat, invite)
        self._peer_pake: bytes | None = None
        self.keys: SessionKeys | None = None
        self.local_sdp: str | None = None
        self.remote_sdp: str | None = None
        self.boxes: Boxes | None = None  # once the keys exist (shared with `resignal`)
        self._held_sdp: str | None = None  # host: its offer, sealed once the confirm is read

    # -- outputs helpers ---------------------------------------------------
    def _set_phase(self, phase: Phase) -> list[Output]:
        if phase is self.phase:
            return []
        log.debug("handshake phase %s -> %s", self.phase, phase)
        self.phase = phase
        return [PhaseChanged(phase)]

    def _fail(self, code: str, reason: str, *, tell_peer: bool) -> list[Output]:
        if self.phase is Phase.FAILED:
            return []
        out: list[Output] = []
        if tell_peer:
            if self.boxes is not None and self.boxes.bound:
                out.append(self._sealed(signal.Abort(code)))
            else:
                out.append(SendRelay(relay.Abort(code)))
        out += self._set_phase(Phase.FAILED)
        out.append(Failed(code, reason))
        return out

    def _sealed(self, body: signal.SignalFrame) -> SendRelay:
        assert self.boxes is not None
        confirm = isinstance(body, signal.Confirm)  # every version must read it
        return SendRelay(self.boxes.seal("handshake", body.encode().encode(), legacy=confirm))

    def _dropped(self, reason: str) -> list[Output]:
        """A frame the relay may have replayed, reordered or made up: no effect."""
        log.info("protocol_error", extra={"fields": {"channel": "signal", "dropped": reason}})
        return []

    def _confirm(self) -> signal.Confirm:
        mine = self.announcement
        return signal.Confirm(
            "host" if self.seat is Seat.HOST else "guest",
            mine.protocol,
            mine.features,
            mine.software,
            self.known_limits.ttl_minutes,
            self.known_limits.max_message_length,
        )

    # -- inputs --------------------------------------------------------------
    def start(self) -> list[Output]:
        """The first frame: our PAKE message (the relay holds it until the peer comes)."""
        return [SendRelay(relay.Pake(b64(self._pake.outbound)))]

    def handle(self, frame: Frame) -> list[Output]:
        """A relay frame from the peer: `pake`, `sealed` or `abort` (any other is refused)."""
        if self.phase is Phase.FAILED:
            return []
        outputs: list[Output] = dispatch(self, frame)
        return outputs

    def handle_pake(self, frame: relay.Pake) -> list[Output]:
        try:
            message = unb64(frame.msg)
        except ValueError:
            return self._fail(
                "protocol_error", "The peer sent a malformed key exchange.", tell_peer=True
            )
        if self._peer_pake is not None:
            if message == self._peer_pake or self.agreement is not None:
                # a resend after a reconnect, or (the keys proven by the peer's confirm)
                # one the relay made up
                return []  # the same message again (a resend after a reconnect)
            return self._fail("invite_mismatch", MISMATCH, tell_peer=True)
        self._peer_pake = message
        try:
            self.keys = self._pake.finish(message)
        except SealError:
            return self._fail("invite_mismatch", MISMATCH, tell_peer=True)
        self.boxes = Boxes(self.seat, self.keys, self.invite.token)
        out = self._set_phase(Phase.EXCHANGING_KEYS)
        out.append(self._sealed(self._confirm()))
        if self.seat is Seat.HOST:
            out.append(MakeOffer())
        return out

    def handle_sealed(self, frame: relay.Sealed) -> list[Output]:
        if self.keys is None or self.boxes is None:
            return self._fail(
                "protocol_error", "A sealed message came before the key exchange.", tell_peer=True
            )
        try:
            opened = self.boxes.open(frame, "handshake")
        except (SealError, ValueError):
            if self.agreement is not None:  # the peer's confirm proved the keys: the relay
                return self._dropped("a box that does not open")
            return self._fail("invite_mismatch", MISMATCH, tell_peer=True)
        if not isinstance(opened, Opened):
            return self._dropped(opened.reason)
        try:
            body = signal.CHANNEL.parse(opened.plain)
        except ProtocolError:
            return self._fail(
                "protocol_error", "The peer sent a malformed sealed message.", tell_peer=True
            )
        expected_peer = Seat.GUEST if self.seat is Seat.HOST else Seat.HOST
        if isinstance(body, signal.Confirm):
            if body.seat != expected_peer.value:  # our own box reflected back
                return self._fail("invite_mismatch", MISMATCH, tell_peer=True)
            return self._negotiate(body)
        if self.boxes.bound and not opened.bound:
            return self._dropped(f"an unbound `{body.TYPE}` from a peer that binds its boxes")
        if isinstance(body, signal.Abort):
            if body.code == "invite_mismatch":  # sealed: one of our boxes was changed
                return self._fail("invite_mismatch", MISMATCH, tell_peer=False)
            return self._fail(
                "peer_aborted", "The other side gave up the connection.", tell_peer=False
            )
        if self.remote_sdp is not None:  # a replay (of a peer that does not bind its boxes)
            return self._dropped(f"a second `{body.TYPE}`")
        if self.agreement is None:
            return self._fail(
                "protocol_error", "The peer sent an unexpected description.", tell_peer=True
            )
        if isinstance(body, signal.Offer) and self.seat is Seat.GUEST:
            self.remote_sdp = body.sdp
            return [*self._set_phase(Phase.CONNECTING), MakeAnswer(body.sdp)]
        if isinstance(body, signal.Answer) and self.seat is Seat.HOST:
            self.remote_sdp = body.sdp
            return [*self._set_phase(Phase.CONNECTING), UseAnswer(body.sdp)]
        return self._fail(
            "protocol_error", "The peer sent an unexpected description.", tell_peer=True
        )

    def _negotiate(self, confirm: signal.Confirm) -> list[Output]:
        """The peer's confirm: can we talk, and with which features?"""
        if self.agreement is not None or self.incompatible is not None:
            return []  # the same confirm again
        if confirm.protocol is None:  # a daemon older than versioning
            peer_version, features = version.LEGACY_VERSION, version.LEGACY_FEATURES
        else:
            peer_version, features = confirm.protocol, confirm.features or ()
        mine = self.announcement
        result = version.negotiate(
            peer_version,
            features,
            confirm.software,
            local_version=mine.protocol,
            local_features=mine.features,
        )
        if isinstance(result, version.Incompatible):
            # The peer reads our confirm and fails the same way by itself: no abort.
            self.incompatible = result
            log.info("protocol versions differ: %s here, %s there", mine.protocol, peer_version)
            return self._fail("version_mismatch", result.message(), tell_peer=False)
        self.agreement = result
        assert self.boxes is not None
        self.boxes.bound = BOUND_BOXES in result.features
        host_says = confirm if self.seat is Seat.GUEST else self._confirm()
        self.limits = Limits(host_says.ttl_minutes, host_says.max_message_length)
        held, self._held_sdp = self._held_sdp, None
        return [self._sealed(signal.Offer(held))] if held is not None else []

    def handle_abort(self, frame: relay.Abort) -> list[Output]:
        """An unsealed abort: anyone on the way could have made it up. Never read as
        tampering; once the chat is ready, ignored (it no longer needs the relay)."""
        if self.phase is Phase.READY:
            return self._dropped("an unsealed abort during the chat")
        if self.boxes is not None and self.boxes.bound:  # the peer would have sealed it
            return self._fail("relay_aborted", RELAY_ABORTED, tell_peer=False)
        return self._fail("peer_aborted", UNSEALED_ABORT, tell_peer=False)

    def local_description(self, sdp: str) -> list[Output]:
        """Our offer (host) or answer (guest) is ready: seal it for the peer."""
        self.local_sdp = sdp
        if self.seat is Seat.HOST and self.agreement is None:
            self._held_sdp = sdp  # sealed once the guest's confirm says how (`bound-boxes`)
            return []
        body = signal.Offer(sdp) if self.seat is Seat.HOST else signal.Answer(sdp)
        return [self._sealed(body)]

    def connected(
        self,
        presented_fingerprint: str,
        *,
        local_sdp: str | None = None,
        remote_sdp: str | None = None,
    ) -> list[Output]:
        """WebRTC is up and the peer presented this DTLS certificate fingerprint. It is
        checked against the sealed SDP, and the security code derived from both sides'
        fingerprints: those of the first offer and answer, or (`local_sdp`, `remote_sdp`)
        of the later generation that came up instead (`orbitd.first_connect`)."""
        local_sdp = local_sdp or self.local_sdp
        remote_sdp = remote_sdp or self.remote_sdp
        if self.keys is None or remote_sdp is None or local_sdp is None:
            return self._fail(
                "protocol_error", "Connected before the handshake was done.", tell_peer=False
            )
        sealed_fp = sdp_fingerprint(remote_sdp)
        local_fp = sdp_fingerprint(local_sdp)
        if sealed_fp is None or local_fp is None or presented_fingerprint.upper() != sealed_fp:
            return self._fail(
                "fingerprint_mismatch",
                "The peer's connection certificate is not the one it announced: refused.",
                tell_peer=False,
            )
        host_fp, guest_fp = (
            (local_fp, sealed_fp) if self.seat is Seat.HOST else (sealed_fp, local_fp)
        )
        sas = short_auth_string(self.keys, host_fp, guest_fp)
        return [*self._set_phase(Phase.READY), Verified(sas, self.keys)]
