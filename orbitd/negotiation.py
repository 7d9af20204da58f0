"""Renegotiation of the WebRTC connection between the two daemons, with no I/O.

The first offer/answer travels sealed over the rendezvous relay (`handshake`).
Everything after that — audio and video for a call, ICE restarts — is an
offer/answer exchange this machine drives, usually over the already-open data
channel. It is the "perfect negotiation" pattern made deterministic:

* Offers are made only when nothing is outstanding (signaling state `stable`,
  no offer of ours out, no answer of ours being made). A change that comes
  at another time sets the pending flag and is offered when that is so again.
  (One exception: an ICE restart offer replaces an unanswered offer of ours,
  presumed lost with the connection.)
* Glare (both sides offer at once): the guest is polite — it rolls its own
  offer back, answers the host's and then offers its change again; the host
  is impolite and ignores an offer that crosses its own. An offer that comes
  right behind the answer to ours (or while we answer) is not glare: it waits
  its turn.
* A stack that cannot roll back a local offer (aiortc) passes
  `can_rollback=False`: the guest then never offers; it asks the host to
  (`RequestOffer`), and glare cannot happen at all.
* Remote ICE candidates wait until a remote description is applied, are
  applied in the order they came, and are dropped when seen before (keyed by
  candidate, sdpMid and sdpMLineIndex).
* ICE failure (or `disconnected` for longer than `disconnect_grace`): an ICE
  restart 2 s later, then 4 s, then 8 s after each further failure; an
  attempt that does not connect within `attempt_timeout` has failed too. The
  host makes the restart offers, the guest asks for them (`RequestRestart`).
  Success resets the count; the third failed restart is `GaveUp`, and only
  `reset` (a manual reconnection) starts over.

Inputs are methods named after what happened, each taking `now` (monotonic
seconds) and returning the outputs: instructions for the caller, which runs
them in order, one at a time, and reports back (`local_offer_created`,
`remote_description_applied`, ...). `ScheduleTick(at)` asks for `tick(at)`.

Peer frames: `orbitcore.protocol.peer`'s `RtcFrame`s (`rtc-description`,
`rtc-candidate`, `rtc-negotiate` — the guest asks the host for an offer — and
`rtc-restart` — the guest asks for an ICE restart); `to_frame` makes ours, `handle`
takes the peer's (read and checked before they come here), one `handle_<type>` each.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Literal

from orbitcore.protocol.frames import dispatch
from orbitcore.protocol.peer import (
    IceCandidate,
    RtcCandidate,
    RtcDescription,
    RtcFrame,
    RtcNegotiate,
    RtcRestart,
)

from .crypto import Seat

log = logging.getLogger("orbitd.negotiation")

BACKOFF = (2.0, 4.0, 8.0)  # seconds before the 1st, 2nd and 3rd ICE restart
DISCONNECT_GRACE = 5.0  # `disconnected` for longer than this counts as a failure
ATTEMPT_TIMEOUT = 20.0  # a restart not connected after this long has failed

Candidate = IceCandidate
CandidateKey = tuple[str, str | None, int | None]
DescriptionKind = Literal["offer", "answer"]


class NegotiationState(StrEnum):
    STABLE = "stable"  # nothing outstanding
    OFFERING = "offering"  # our offer is being made, or awaits its answer
    ANSWERING = "answering"  # the peer's offer is being applied and answered
    RECOVERING = "recovering"  # ICE failed: a restart is scheduled or under way
    GAVE_UP = "gave-up"  # three restarts failed: a manual reconnection is needed


# -- outputs ----------------------------------------------------------------------
@dataclass(frozen=True)
class CreateOffer:
    """createOffer + setLocalDescription, then `local_offer_created(sdp)`. With
    `ice_restart`, new ICE credentials, and any unanswered offer of ours is abandoned."""

    ice_restart: bool = False


@dataclass(frozen=True)
class CreateAnswer:
    """createAnswer + setLocalDescription, then `local_answer_created(sdp)`."""


@dataclass(frozen=True)
class SendDescription:
    kind: DescriptionKind
    sdp: str
    ice_restart: bool = False


@dataclass(frozen=True)
class ApplyRemoteDescription:
    """setRemoteDescription, then `remote_description_applied` or `_failed`."""

    kind: str
    sdp: str
    ice_restart: bool = False


@dataclass(frozen=True)
class Rollback:
    """Undo our unanswered local offer (setLocalDescription({type: "rollback"}))."""


@dataclass(frozen=True)
class ApplyCandidate:
    """addIceCandidate; a failure is logged and otherwise ignored."""

    candidate: Candidate


@dataclass(frozen=True)
class RequestOffer:
    """Guest without rollback: ask the host to make an offer (our change is pending)."""


@dataclass(frozen=True)
class RequestRestart:
    """Guest: ask the host for ICE restart number `attempt`."""

    attempt: int


@dataclass(frozen=True)
class ScheduleTick:
    at: float


@dataclass(frozen=True)
class NegotiationFailed:
    """A step failed: "create-offer", "create-answer", "apply-offer" or "apply-answer".

    The exchange is abandoned (buffered candidates are dropped); the media change
    it carried did not happen. The caller logs it and may end the call.
    """

    step: str
    error: str


@dataclass(frozen=True)
class GaveUp:
    reason: str


@dataclass(frozen=True)
class StateChanged:
    state: NegotiationState


Output = (
    CreateOffer
    | CreateAnswer
    | SendDescription
    | ApplyRemoteDescription
    | Rollback
    | ApplyCandidate
    | RequestOffer
    | RequestRestart
    | ScheduleTick
    | NegotiationFailed
    | GaveUp
    | StateChanged
)


def to_frame(out: Output) -> RtcFrame | None:
    """The data-channel frame for an output meant for the peer (None for the others)."""
    if isinstance(out, SendDescription):
        return RtcDescription(out.kind, out.sdp, out.ice_restart)
    if isinstance(out, RequestOffer):
        return RtcNegotiate()
    if isinstance(out, RequestRestart):
        return RtcRestart(out.attempt)
    return None


def candidate_frame(candidate: Candidate) -> RtcCandidate:
    """The frame for one of our own candidates (a stack that trickles them)."""
    return RtcCandidate(candidate)


class Negotiator:
    def __init__(
        self,
        role: Seat | str,
        *,
        can_rollback: bool = True,
        has_remote_description: bool = False,
        backoff: tuple[float, ...] = BACKOFF,
        disconnect_grace: float = DISCONNECT_GRACE,
        attempt_timeout: float = ATTEMPT_TIMEOUT,
    ) -> None:
        self.role = Seat(role)
        self.polite = self.role is Seat.GUEST
        self.can_rollback = can_rollback
        self.backoff = backoff
        self.disconnect_grace = disconnect_grace
        self.attempt_timeout = attempt_timeout
        self.state = NegotiationState.STABLE
        self._clear(has_remote_description)

    def _clear(self, has_remote_description: bool) -> None:
        self.signaling = "stable"  # as the stack last reported it
        self.ice = "new"
        self.pending = False  # a change waits to be offered (or requested)
        self.restart_pending = False  # host: an ICE restart waits for `stable`
        self.has_remote = has_remote_description
        self.pending_candidates: list[Candidate] = []
        self.seen: set[CandidateKey] = set()
        self.attempts = 0  # ICE restarts in the current failure episode
        self.gave_up = False
        self._making_offer = False  # CreateOffer out, local_offer_created not yet in
        self._offer_restart = False  # ... and that offer is an ICE restart
        self._stale_offers = 0  # local_offer_created calls to drop (superseded offers)
        self._offer_out = False  # our offer was sent and is not answered yet
        self._applying: str | None = None  # kind of remote description being applied
        self._applying_restart = False
        self._answering = False  # CreateAnswer out, local_answer_created not yet in
        self._queued_offer: tuple[str, bool] | None = None  # an offer that came while busy
        self._restart_at: float | None = None  # when the next restart is due
        self._attempt_deadline: float | None = None  # when the current restart has failed
        self._disconnected_deadline: float | None = None

    # -- state ---------------------------------------------------------------------
    def _set_state(self, state: NegotiationState) -> list[Output]:
        if state is self.state:
            return []
        log.debug("negotiation (%s) %s -> %s", self.role.value, self.state, state)
        self.state = state
        return [StateChanged(state)]

    def _settle(self, out: list[Output]) -> list[Output]:
        """Every input ends here: the state follows from the flags."""
        if self.gave_up:
            state = NegotiationState.GAVE_UP
        elif self._in_episode():
            state = NegotiationState.RECOVERING
        elif self._making_offer or self._offer_out:
            state = NegotiationState.OFFERING
        elif self._applying is not None or self._answering:
            state = NegotiationState.ANSWERING
        else:
            state = NegotiationState.STABLE
        return out + self._set_state(state)

    def _in_episode(self) -> bool:
        return (
            self._restart_at is not None
            or self._attempt_deadline is not None
            or self.restart_pending
        )

    def _idle(self) -> bool:
        """Nothing outstanding: an offer may be made now."""
        return (
            self.signaling == "stable"
            and not self._making_offer
            and not self._offer_out
            and not self._answering
            and self._applying is None
        )

    def _offers(self) -> bool:
        """Whether this side makes offers itself (else it asks the host to)."""
        return not self.polite or self.can_rollback

    # -- internal steps ----------------------------------------------------------------
    def _create_offer(self, *, ice_restart: bool) -> list[Output]:
        out: list[Output] = []
        if self._making_offer:  # a restart supersedes an offer still being made
            self._stale_offers += 1
        self._making_offer = True
        self._offer_restart = ice_restart
        self._offer_out = False
        self.pending = False  # the offer carries every change made so far
        if ice_restart:
            self.restart_pending = False
        out.append(CreateOffer(ice_restart))
        return out

    def _resume(self) -> list[Output]:
        """Whatever waited for `stable`: a queued remote offer, a restart, a change."""
        if self.gave_up or not self._idle():
            return []
        if self._queued_offer is not None:
            sdp, restart = self._queued_offer
            self._queued_offer = None
            return self._accept_offer(sdp, restart)
        if self.restart_pending:
            log.info("negotiation: making the deferred ICE restart offer")
            return self._create_offer(ice_restart=True)
        if self.pending:
            log.info("negotiation: retrying the deferred negotiation")
            if not self._offers():
                self.pending = False
                return [RequestOffer()]
            return self._create_offer(ice_restart=False)
        return []

    def _accept_offer(self, sdp: str, ice_restart: bool) -> list[Output]:
        self._applying = "offer"
        self._applying_restart = ice_restart
        return [ApplyRemoteDescription("offer", sdp, ice_restart)]

    def _flush_candidates(self) -> list[Output]:
        backlog, self.pending_candidates = self.pending_candidates, []
        return [ApplyCandidate(c) for c in backlog]

    def _new_ice_generation(self) -> None:
        """An ICE restart: the candidates seen so far belong to the old credentials."""
        self.seen.clear()
        self.pending_candidates.clear()

    def _ice_trouble(self, now: float, why: str) -> list[Output]:
        """ICE failed (or stayed disconnected, or a restart did not connect)."""
        if self.gave_up or self._restart_at is not None:
            return []
        self._attempt_deadline = None
        self._disconnected_deadline = None
        if self.attempts >= len(self.backoff):
            log.warning("negotiation: ICE restarts exhausted (%s)", why)
            self.gave_up = True
            self.restart_pending = False
            self.pending = False
            self._queued_offer = None
            return [GaveUp(f"ICE failed and {self.attempts} restarts did not bring it back")]
        self._restart_at = now + self.backoff[self.attempts]
        log.info(
            "negotiation: ICE %s, restart %d at +%.0fs",
            why,
            self.attempts + 1,
            self.backoff[self.attempts],
        )
        return [ScheduleTick(self._restart_at)]

    def _restart(self, now: float) -> list[Output]:
        """Begin the next ICE restart attempt (the host offers, the guest asks)."""
        self._restart_at = None
        self.attempts += 1
        self._attempt_deadline = now + self.attempt_timeout
        out: list[Output] = [ScheduleTick(self._attempt_deadline)]
        if self.polite:
            return [*out, RequestRestart(self.attempts)]
        if self._answering or self._applying is not None:
            self.restart_pending = True  # our answer is a local matter: it will finish
            return out
        # An unanswered offer of ours is presumed lost with the connection: the
        # restart offer replaces it (CreateOffer(ice_restart=True) abandons it).
        return out + self._create_offer(ice_restart=True)

    def _ice_recovered(self) -> None:
        if self.attempts or self._in_episode() or self._disconnected_deadline is not None:
            log.info("negotiation: ICE connected again after %d restart(s)", self.attempts)
        self.attempts = 0
        self._restart_at = None
        self._attempt_deadline = None
        self._disconnected_deadline = None
        self.restart_pending = False

    # -- inputs: what the caller wants -------------------------------------------------
    def negotiation_needed(self, now: float) -> list[Output]:
        """Our media changed (tracks added, removed or redirected)."""
        if self.gave_up:
            return []
        if not self._idle():
            log.info("negotiation: deferring until stable (signaling %s)", self.signaling)
            self.pending = True
            return self._settle([])
        if not self._offers():
            return self._settle([RequestOffer()])
        return self._settle(self._create_offer(ice_restart=False))

    def reset(self, now: float) -> list[Output]:
        """A new peer connection: forget candidates, pending work, restarts, giving up."""
        log.info("negotiation: reset")
        self._clear(False)
        return self._settle([])

    # -- inputs: what the stack reports ------------------------------------------------
    def signaling_state_changed(self, state: str, now: float) -> list[Output]:
        self.signaling = state
        return self._settle(self._resume() if state == "stable" else [])

    def local_offer_created(self, sdp: str, now: float) -> list[Output]:
        if self._stale_offers:
            self._stale_offers -= 1
            return []  # superseded (rolled back, or replaced by a restart offer)
        if not self._making_offer:
            log.warning("negotiation: an offer nobody asked for, not sent")
            return []
        self._making_offer = False
        self._offer_out = True
        restart = self._offer_restart
        if restart:
            self._new_ice_generation()
        return self._settle([SendDescription("offer", sdp, restart)])

    def local_answer_created(self, sdp: str, now: float) -> list[Output]:
        if not self._answering:
            log.warning("negotiation: an answer nobody asked for, not sent")
            return []
        self._answering = False
        out: list[Output] = [SendDescription("answer", sdp, self._applying_restart)]
        self._applying_restart = False
        return self._settle(out + self._resume())

    def remote_description_applied(self, now: float) -> list[Output]:
        kind, self._applying = self._applying, None
        if kind is None:
            return []
        self.has_remote = True
        out = self._flush_candidates()
        if kind == "offer":
            self._answering = True
            out.append(CreateAnswer())
            return self._settle(out)
        self._offer_out = False  # our offer is answered
        return self._settle(out + self._resume())

    def remote_description_failed(self, error: str, now: float) -> list[Output]:
        kind, self._applying = self._applying, None
        if kind is None:
            return []
        log.warning("negotiation: the remote %s did not apply: %s", kind, error)
        for dropped in self.pending_candidates:
            self.seen.discard(dropped.key())  # a resend after recovery is welcome
        self.pending_candidates.clear()
        self._applying_restart = False
        out: list[Output] = [NegotiationFailed(f"apply-{kind}", error)]
        if kind == "answer":
            self._offer_out = False
            if self.can_rollback:
                out.append(Rollback())  # back to stable rather than stuck in have-local-offer
        return self._settle(out + self._resume())

    def local_offer_failed(self, error: str, now: float) -> list[Output]:
        if self._stale_offers:
            self._stale_offers -= 1
            return []
        if not self._making_offer:
            return []
        log.warning("negotiation: our offer could not be made: %s", error)
        self._making_offer = False
        return self._settle([NegotiationFailed("create-offer", error), *self._resume()])

    def local_answer_failed(self, error: str, now: float) -> list[Output]:
        if not self._answering:
            return []
        log.warning("negotiation: our answer could not be made: %s", error)
        self._answering = False
        self._applying_restart = False
        out: list[Output] = [NegotiationFailed("create-answer", error)]
        if self.can_rollback:
            out.append(Rollback())  # leave have-remote-offer; the peer's offer is refused
        return self._settle(out + self._resume())

    def ice_state_changed(self, state: str, now: float) -> list[Output]:
        self.ice = state
        out: list[Output] = []
        if state in ("connected", "completed"):
            self._ice_recovered()
        elif state == "failed":
            out = self._ice_trouble(now, "failed")
        elif (
            state == "disconnected"
            and self._disconnected_deadline is None
            and not self._in_episode()
        ):
            self._disconnected_deadline = now + self.disconnect_grace
            out = [ScheduleTick(self._disconnected_deadline)]
        return self._settle(out)

    def tick(self, now: float) -> list[Output]:
        out: list[Output] = []
        if self._disconnected_deadline is not None and now >= self._disconnected_deadline:
            self._disconnected_deadline = None
            if self.ice == "disconnected":
                out += self._ice_trouble(now, "stayed disconnected")
        if self._attempt_deadline is not None and now >= self._attempt_deadline:
            if self.ice in ("connected", "completed"):
                self._ice_recovered()  # the stack never reported a change: it stayed up
            else:
                out += self._ice_trouble(now, "restart did not connect")
        if self._restart_at is not None and now >= self._restart_at:
            out += self._restart(now)
        return self._settle(out)

    # -- inputs: what the peer sends ---------------------------------------------------
    def remote_description(
        self, kind: str, sdp: str, now: float, *, ice_restart: bool = False
    ) -> list[Output]:
        if self.gave_up:
            return []
        if kind == "answer":
            if not self._offer_out or self._applying is not None:
                log.info("negotiation: an answer to no offer of ours, ignored")
                return []
            self._applying = "answer"
            self._applying_restart = self._offer_restart
            return self._settle([ApplyRemoteDescription("answer", sdp, self._offer_restart)])
        if kind != "offer":
            log.warning("negotiation: a description of kind %r, ignored", kind)
            return []
        out: list[Output] = []
        if ice_restart:
            self._new_ice_generation()
            if self.polite and self._restart_at is not None:  # the host's restart is ours
                self._restart_at = None
                self.attempts += 1
                self._attempt_deadline = now + self.attempt_timeout
                out.append(ScheduleTick(self._attempt_deadline))
        if self._answering or self._applying is not None:
            # The peer answered ours (being applied) and then offered: no glare, just
            # early. Or we are still answering its previous offer. Either way: next.
            self._queued_offer = (sdp, ice_restart)
            return self._settle(out)
        collision = self._making_offer or self._offer_out or self.signaling == "have-local-offer"
        if collision:
            if not self.polite:
                log.info("negotiation: glare, ignoring the guest's offer (ours stands)")
                return self._settle(out)
            log.info("negotiation: glare, rolling back our offer for the host's")
            if self._making_offer:
                self._stale_offers += 1
            self._making_offer = False
            self._offer_out = False
            self.pending = True  # our change is offered again once stable
            return self._settle([*out, Rollback(), *self._accept_offer(sdp, ice_restart)])
        return self._settle(out + self._accept_offer(sdp, ice_restart))

    def remote_candidate(self, candidate: Candidate, now: float) -> list[Output]:
        key = candidate.key()
        if key in self.seen:
            return []
        self.seen.add(key)
        if self.has_remote and self._applying is None:
            return [ApplyCandidate(candidate)]
        self.pending_candidates.append(candidate)
        return []

    def offer_requested(self, now: float) -> list[Output]:
        """Host: the guest has a change to negotiate and asks us to offer."""
        if self.polite:
            log.warning("negotiation: the host asked the guest for an offer, ignored")
            return []
        return self.negotiation_needed(now)

    def restart_requested(self, now: float) -> list[Output]:
        """Host: the guest saw ICE fail and asks for a restart."""
        if self.polite or self.gave_up or self._attempt_deadline is not None:
            return []  # not ours to do, too late, or one is under way already
        return self._settle(self._restart(now))

    def handle(self, frame: RtcFrame, now: float) -> list[Output]:
        """One negotiation frame from the peer, to its `handle_<type>`."""
        outputs: list[Output] = dispatch(self, frame, now)
        return outputs

    def handle_rtc_description(self, frame: RtcDescription, now: float) -> list[Output]:
        return self.remote_description(frame.kind, frame.sdp, now, ice_restart=frame.ice_restart)

    def handle_rtc_candidate(self, frame: RtcCandidate, now: float) -> list[Output]:
        return self.remote_candidate(frame.candidate, now)

    def handle_rtc_negotiate(self, frame: RtcNegotiate, now: float) -> list[Output]:
        return self.offer_requested(now)

    def handle_rtc_restart(self, frame: RtcRestart, now: float) -> list[Output]:
        return self.restart_requested(now)
