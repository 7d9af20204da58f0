"""Two negotiation machines, each over a fake peer connection, with the frames between
them delivered by hand: the test bench for tests/test_negotiation*.py."""

from __future__ import annotations

import json
from collections import deque

from orbitcore.protocol.peer import CHANNEL, IceCandidate, RtcFrame
from orbitd.negotiation import (
    ApplyCandidate,
    ApplyRemoteDescription,
    CreateAnswer,
    CreateOffer,
    GaveUp,
    NegotiationFailed,
    NegotiationState,
    Negotiator,
    Output,
    RequestRestart,
    Rollback,
    ScheduleTick,
    SendDescription,
    StateChanged,
    to_frame,
)


def name(out: Output) -> str:
    if isinstance(out, CreateOffer):
        return "CreateOffer(restart)" if out.ice_restart else "CreateOffer"
    if isinstance(out, SendDescription):
        return f"send {out.kind}" + (" (restart)" if out.ice_restart else "")
    if isinstance(out, ApplyRemoteDescription):
        return f"apply {out.kind}" + (" (restart)" if out.ice_restart else "")
    if isinstance(out, ApplyCandidate):
        return f"candidate {out.candidate.candidate}"
    if isinstance(out, ScheduleTick):
        return f"tick at {out.at:g}"
    if isinstance(out, StateChanged):
        return f"state {out.state.value}"
    if isinstance(out, RequestRestart):
        return f"RequestRestart({out.attempt})"
    if isinstance(out, NegotiationFailed):
        return f"failed {out.step}"
    if isinstance(out, GaveUp):
        return "GaveUp"
    return type(out).__name__


def names(outputs: list[Output]) -> list[str]:
    return [name(o) for o in outputs]


def cand(text: str, mid: str | None = "0", index: int | None = 0) -> IceCandidate:
    return IceCandidate(text, mid, index)


class FakePC:
    """Just enough of a peer connection to run a Negotiator's outputs in order, one
    at a time (as the daemon must), reporting back as aiortc does: the signaling
    state changes during the operation, then the operation's completion.

    Media is a set of named changes ("host:audio"). An offer carries the offerer's
    changes not negotiated yet; they count as negotiated on both sides once the
    answer is applied. An answer cannot add m-lines, so the answerer's own changes
    need an offer of their own (perfect negotiation), unless the offerer made room
    for them (`answer_carries=True`: the aiortc flavour, where the host adds a
    transceiver for each kind the guest asked for).
    """

    def __init__(self, neg: Negotiator, *, answer_carries: bool = False) -> None:
        self.neg = neg
        self.who = neg.role.value
        self.answer_carries = answer_carries
        self.signaling = "stable"
        self.changes: list[str] = []
        self.negotiated: set[str] = set()
        self.local_offer: list[str] | None = None
        self.remote_offer: list[str] = []
        self.has_remote = neg.has_remote
        self.applied: list[str] = []  # candidates handed to addIceCandidate
        self.queue: deque[Output] = deque()
        self.trace: list[str] = []
        self.wire: list[RtcFrame] = []  # frames for the peer
        self.now = 0.0

    def feed(self, outputs: list[Output]) -> None:
        self.queue.extend(outputs)

    def change(self, what: str) -> None:
        """A local media change (addTrack), and the negotiation it needs."""
        self.changes.append(f"{self.who}:{what}")
        self.feed(self.neg.negotiation_needed(self.now))

    def _signal(self, state: str) -> None:
        self.signaling = state
        self.feed(self.neg.signaling_state_changed(state, self.now))

    def _unnegotiated(self) -> list[str]:
        return [c for c in self.changes if c not in self.negotiated]

    def pump(self) -> bool:
        ran = bool(self.queue)
        while self.queue:
            self.run(self.queue.popleft())
        return ran

    def run(self, out: Output) -> None:
        self.trace.append(name(out))
        neg, now = self.neg, self.now
        if isinstance(out, CreateOffer):
            assert self.signaling in ("stable", "have-local-offer"), self.signaling
            self.local_offer = self._unnegotiated()
            self._signal("have-local-offer")
            sdp = json.dumps({"from": self.who, "changes": self.local_offer})
            self.feed(neg.local_offer_created(sdp, now))
        elif isinstance(out, CreateAnswer):
            assert self.signaling == "have-remote-offer", self.signaling
            carried = self._unnegotiated() if self.answer_carries else []
            self.negotiated |= {*self.remote_offer, *carried}
            self._signal("stable")
            sdp = json.dumps({"from": self.who, "changes": carried})
            self.feed(neg.local_answer_created(sdp, now))
        elif isinstance(out, Rollback):
            assert self.signaling == "have-local-offer", "rollback with no local offer"
            self.local_offer = None
            self._signal("stable")
        elif isinstance(out, ApplyRemoteDescription):
            body = json.loads(out.sdp)
            if out.kind == "offer":
                if self.signaling not in ("stable", "have-remote-offer"):
                    # what aiortc raises (it has no implicit rollback either)
                    error = f'Cannot handle offer in signaling state "{self.signaling}"'
                    self.feed(neg.remote_description_failed(error, now))
                    return
                self.remote_offer = body["changes"]
                self.has_remote = True
                self._signal("have-remote-offer")
            else:
                assert self.signaling == "have-local-offer", self.signaling
                self.negotiated |= {*(self.local_offer or []), *body["changes"]}
                self.local_offer = None
                self.has_remote = True
                self._signal("stable")
            self.feed(neg.remote_description_applied(now))
        elif isinstance(out, ApplyCandidate):
            assert self.has_remote, "addIceCandidate before any remote description"
            self.applied.append(out.candidate.candidate)
        else:
            frame = to_frame(out)
            if frame is not None:
                self.wire.append(frame)


def _receive(to: FakePC, sent: RtcFrame) -> None:
    frame = CHANNEL.parse(sent.encode())  # as it crosses the wire
    assert isinstance(frame, RtcFrame) and frame == sent
    to.trace.append(f"<- {frame.TYPE}")
    to.feed(to.neg.handle(frame, to.now))


def deliver_one(to: FakePC, frm: FakePC) -> None:
    _receive(to, frm.wire.pop(0))


def deliver(to: FakePC, frm: FakePC) -> bool:
    """Every frame `frm` has sent so far reaches `to` (in order)."""
    frames, frm.wire = frm.wire, []
    for frame in frames:
        _receive(to, frame)
    return bool(frames)


def settle(a: FakePC, b: FakePC) -> None:
    for _ in range(100):
        moved = a.pump() | b.pump()
        moved = deliver(b, a) | moved
        moved = deliver(a, b) | moved
        if not moved:
            return
    raise AssertionError("no quiescence")


def pair(*, can_rollback: bool = True) -> tuple[FakePC, FakePC]:
    host = Negotiator("host", can_rollback=can_rollback, has_remote_description=True)
    guest = Negotiator("guest", can_rollback=can_rollback, has_remote_description=True)
    carries = not can_rollback
    return FakePC(host, answer_carries=carries), FakePC(guest, answer_carries=carries)


def assert_both_stable(host: FakePC, guest: FakePC) -> None:
    for side in (host, guest):
        assert side.neg.state is NegotiationState.STABLE
        assert side.signaling == "stable"
        assert not side.queue and not side.wire


# -- offers, deferral, glare ---------------------------------------------------------------
