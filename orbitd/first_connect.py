"""The first connection of a session, one ICE plan after another (issue #10).

aiortc uses one STUN and one TURN server per connection (`orbitd.ice_plan`: TURN over
UDP first, then over TCP, then TLS). When the first connection has not come up with
the current plan within `plan_seconds` (the connect timeout split over the plans, at
least `MIN_PLAN_SECONDS`), the host, once the PAKE keys exist and both daemons
announced `reconnect`, makes a new connection with the next plan and seals its offer
as a `reoffer` of the next generation (`orbitd.resignal`, the reconnect machinery).
The guest answers the newest reoffer with a new connection of its own (its next plan
too) and a sealed `reanswer`; an offer or answer of an older generation that arrives
late is dropped. Only when the last plan's time is up does the session end with
`connect_timeout`. Without `reconnect` (or with one plan) nothing changes: one
connection, the whole connect timeout.

The connection that comes up is verified like the first: the DTLS fingerprint the peer
presented must be the one in the sealed SDP of that generation, and the security code
is derived, exactly as in `orbitd.handshake`, from the PAKE keys and the fingerprints
of the sealed offer and answer of the generation that came up. Both sides verify the
same connection, so both read the same code whichever generation it is; it binds that
connection to the keys, and later reconnects keep it (`orbitd.resignal`).

The guest does not count plans (its own may differ from the host's): with `reconnect`
agreed it waits `guest_seconds` (a plan's time and twice the host's gathering) from the start
and again from each reoffer it takes; the host's `connect_timeout` ends the session for
both (the token is burned) before that.

A state machine with no I/O, taking `now`; its outputs are `orbitd.handshake`'s and the
two below, for the caller to carry out.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from orbitcore.protocol import relay

from .crypto import Seat
from .handshake import (
    Failed,
    Handshake,
    MakeAnswer,
    Output,
    Phase,
    PhaseChanged,
    SendRelay,
    UseAnswer,
    Verified,
)
from .resignal import Dropped, Foreign, Reanswered, Reoffered, Resignal

log = logging.getLogger("orbitd.first_connect")
GATHER_SECONDS = 5.0  # aioice waits up to this for its STUN and TURN servers when gathering
MIN_PLAN_SECONDS = 10.0  # a plan's gathering, offer, answer and ICE checks
TIMED_OUT = (
    "The connection to the other side could not be made, neither directly nor through "
    "any of the relay servers tried."
)
NOTHING_CAME = (
    "The other side joined, but nothing it sent arrived in time: the server did not pass "
    "the connection on."
)


@dataclass(frozen=True)
class NextPlan:
    """Host: a new connection with the next ICE plan; its offer goes to `reoffer()`."""


@dataclass(frozen=True)
class AnswerReoffer:
    """Guest: a new connection with the next ICE plan, answering this offer; its answer
    goes to `reanswer()`."""

    generation: int
    sdp: str


FirstOutput = Output | NextPlan | AnswerReoffer


def plan_seconds(connect_timeout: float, plans: int) -> float:
    """How long one plan may take: the connect timeout split over the plans."""
    if plans <= 1:
        return connect_timeout
    return max(connect_timeout / plans, MIN_PLAN_SECONDS)


class FirstConnect:
    def __init__(self, handshake: Handshake, *, plans: int, connect_timeout: float) -> None:
        self.handshake = handshake
        self.plans = plans  # how many the host tries (its own)
        self.connect_timeout = connect_timeout
        self.plan_seconds = plan_seconds(connect_timeout, plans)
        self.tried = 0  # plans tried, once started
        self.started: float | None = None
        # Guest, with `reconnect`: the end moves with each reoffer.
        # (The host's gathering of the old plan and of the new one may both come first.)
        self.guest_seconds = max(connect_timeout, MIN_PLAN_SECONDS) + 2 * GATHER_SECONDS
        self.guest_end: float | None = None
        self.due: float | None = None  # when `tick` has something to do
        self.resignal: Resignal | None = None
        self.local_sdp: str | None = None  # this side's sealed SDP of a generation > 0
        self.done = False

    @property
    def generation(self) -> int:
        return self.resignal.generation if self.resignal is not None else 0

    def _fallback(self) -> Resignal | None:
        """The sealed re-signaling, once the keys exist and both announced `reconnect`."""
        hs = self.handshake
        agreed = hs.agreement is not None and "reconnect" in hs.agreement.features
        if self.resignal is None and hs.keys is not None and agreed:
            self.resignal = Resignal(hs.seat, hs.keys, hs.invite.token, hs.boxes)
        return self.resignal

    def resignal_now(self) -> Resignal | None:
        """The re-signaling (`reconnect` agreed), made now if it is not yet."""
        return self._fallback()

    # -- time --------------------------------------------------------------------------
    def seat_taken(self, now: float) -> None:
        """The rendezvous says the peer's seat is taken: from now on the whole connect
        timeout, even if none of the peer's frames ever arrives (a relay that drops them
        must not leave both sides waiting for the peer forever)."""
        if self.started is None and self.due is None:
            self.due = now + self.connect_timeout

    def start(self, now: float) -> None:
        """The keys exist (phase `exchanging-keys`): the first plan's time starts."""
        if self.started is None:
            self.started, self.tried = now, 1
            self.guest_end = now + self.guest_seconds
            host = self.handshake.seat is Seat.HOST
            self.due = now + (self.plan_seconds if host else self.connect_timeout)

    def tick(self, now: float) -> list[FirstOutput]:
        """Host: the next plan when this one's time is up; either side: `connect_timeout`
        when there is none left."""
        if self.done or self.due is None or now < self.due:
            return []
        if self.started is None:  # the peer's seat is taken, its key exchange never came
            self.done = True
            return [Failed("connect_timeout", NOTHING_CAME)]
        fallback = self._fallback() is not None
        if self.handshake.seat is Seat.HOST:
            if fallback and self.tried < self.plans:
                self.tried += 1
                self.due = now + self.plan_seconds
                log.info("first connection: next plan", extra={"fields": {"tried": self.tried}})
                return [NextPlan()]
            end = self.due if fallback else self.started + self.connect_timeout
        else:
            end = (
                self.guest_end
                if fallback and self.guest_end
                else self.started + self.connect_timeout
            )
        if now < end:  # one connection (no fallback) gets the whole connect timeout
            self.due = end
            return []
        self.done = True
        return [Failed("connect_timeout", TIMED_OUT)]

    # -- signaling -----------------------------------------------------------------------
    def sealed(
        self, frame: relay.Pake | relay.Sealed | relay.Abort, now: float
    ) -> list[FirstOutput]:
        """A relay frame before the chat is ready: a reoffer or reanswer (a box of the
        reconnect kind), or the handshake's. A first offer or answer that comes after a
        newer generation's is stale: dropped."""
        resignal = self._fallback()
        if isinstance(frame, relay.Sealed) and resignal is not None and not self.done:
            opened = resignal.open(frame)
            if isinstance(opened, Reoffered):
                self.guest_end = max(self.guest_end or now, now + self.guest_seconds)
                self.due = self.guest_end
                return [*self._connecting(), AnswerReoffer(opened.generation, opened.sdp)]
            if isinstance(opened, Reanswered):
                return [*self._connecting(), UseAnswer(opened.sdp)]
            if not isinstance(opened, Foreign):
                reason = opened.reason if isinstance(opened, Dropped) else opened
                log.info("sealed frame dropped", extra={"fields": {"reason": str(reason)}})
                return []
        outputs: list[FirstOutput] = list(self.handshake.handle(frame))
        if any(isinstance(o, Failed) for o in outputs):
            self.done = True
        if self.generation > 0:
            stale = [o for o in outputs if isinstance(o, MakeAnswer | UseAnswer)]
            if stale:
                log.info("a first description after a newer generation's: dropped")
            outputs = [o for o in outputs if o not in stale]
        return outputs

    def _connecting(self) -> list[FirstOutput]:
        if self.handshake.phase is Phase.EXCHANGING_KEYS:
            self.handshake.phase = Phase.CONNECTING
            return [PhaseChanged(Phase.CONNECTING)]
        return []

    def reoffer(self, generation: int, sdp: str) -> list[FirstOutput]:
        """Host: the offer of the new connection, `generation`, sealed."""
        resignal = self._fallback()
        if resignal is None or self.done or generation <= resignal.generation:
            return []
        self.local_sdp = sdp
        return [SendRelay(resignal.reoffer(generation, sdp))]

    def reanswer(self, generation: int, sdp: str) -> list[FirstOutput]:
        """Guest: the answer to the reoffer of `generation`, sealed; none when a newer
        reoffer came meanwhile (that one gets the answer)."""
        resignal = self._fallback()
        if resignal is None or self.done or generation != resignal.generation:
            return []
        self.local_sdp = sdp
        return [SendRelay(resignal.reanswer(sdp))]

    def connected(self, presented_fingerprint: str) -> list[FirstOutput]:
        """The current generation's channel is open: verified against its sealed SDP."""
        if self.done:
            return []
        if self.generation == 0:
            outputs: list[FirstOutput] = list(self.handshake.connected(presented_fingerprint))
        else:
            assert self.resignal is not None
            if self.resignal.remote_sdp is None or self.local_sdp is None:
                return []  # not signalled yet: the channel cannot be this generation's
            outputs = list(
                self.handshake.connected(
                    presented_fingerprint,
                    local_sdp=self.local_sdp,
                    remote_sdp=self.resignal.remote_sdp,
                )
            )
        if any(isinstance(o, Verified | Failed) for o in outputs):
            self.done = True
        return outputs
