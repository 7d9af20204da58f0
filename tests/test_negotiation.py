"""Renegotiation as a pure state machine: two of them, each over a fake peer connection,
with the frames between them delivered by hand; what each asks for is recorded."""

from __future__ import annotations

import json
import random
from collections import deque
from typing import Any

import pytest

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
    RequestOffer,
    RequestRestart,
    Rollback,
    ScheduleTick,
    SendDescription,
    StateChanged,
    candidate_frame,
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
        return f"candidate {out.candidate['candidate']}"
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


def cand(text: str, mid: str | None = "0", index: int | None = 0) -> dict[str, Any]:
    return {"candidate": text, "sdpMid": mid, "sdpMLineIndex": index}


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
        self.wire: list[dict[str, Any]] = []  # frames for the peer
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
            self.applied.append(out.candidate["candidate"])
        else:
            frame = to_frame(out)
            if frame is not None:
                self.wire.append(json.loads(json.dumps(frame)))  # as it crosses the wire


def deliver_one(to: FakePC, frm: FakePC) -> None:
    frame = frm.wire.pop(0)
    to.trace.append(f"<- {frame['type']}")
    to.feed(to.neg.handle(frame, to.now))


def deliver(to: FakePC, frm: FakePC) -> bool:
    """Every frame `frm` has sent so far reaches `to` (in order)."""
    frames, frm.wire = frm.wire, []
    for frame in frames:
        to.trace.append(f"<- {frame['type']}")
        to.feed(to.neg.handle(frame, to.now))
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
def test_a_change_is_offered_answered_and_applied_on_both_sides() -> None:
    host, guest = pair()
    host.change("audio")
    settle(host, guest)
    assert host.trace == [
        "CreateOffer",
        "state offering",
        "send offer",
        "<- rtc-description",
        "apply answer",
        "state stable",
    ]
    assert guest.trace == [
        "<- rtc-description",
        "apply offer",
        "state answering",
        "CreateAnswer",
        "send answer",
        "state stable",
    ]
    assert host.negotiated == guest.negotiated == {"host:audio"}
    assert_both_stable(host, guest)


def test_an_offer_is_deferred_until_the_signaling_state_is_stable_again() -> None:
    neg = Negotiator("host", has_remote_description=True)
    assert neg.signaling_state_changed("have-remote-offer", 0) == []
    assert neg.negotiation_needed(1) == []  # not in stable: deferred, not lost
    assert neg.pending
    assert neg.signaling_state_changed("have-local-pranswer", 2) == []
    assert neg.signaling_state_changed("stable", 3) == [
        CreateOffer(ice_restart=False),
        StateChanged(NegotiationState.OFFERING),
    ]
    assert not neg.pending


def test_a_change_while_answering_is_offered_once_the_answer_is_out() -> None:
    host, guest = pair()
    host.change("audio")
    host.pump()
    deliver(guest, host)
    guest.pump()  # the guest answered the offer (and is stable again)...
    guest.trace.clear()
    guest.feed(guest.neg.remote_description("offer", json.dumps({"changes": []}), 0))
    assert names(list(guest.queue)) == ["apply offer", "state answering"]
    guest.change("video")  # ...and changes something while answering a second one
    assert names(list(guest.queue)) == ["apply offer", "state answering"]  # deferred
    guest.pump()
    assert guest.trace == [
        "apply offer",
        "state answering",
        "CreateAnswer",
        "send answer",
        "CreateOffer",  # the deferred change, retried when stable
        "state offering",
        "send offer",
    ]


def test_glare_the_host_offer_wins_and_the_guest_offers_its_change_after() -> None:
    host, guest = pair()
    host.change("audio")
    guest.change("video")
    host.pump()
    guest.pump()  # both offers are on the wire: glare
    settle(host, guest)
    assert host.trace == [
        "CreateOffer",
        "state offering",
        "send offer",
        "<- rtc-description",  # the guest's offer: ignored, the host is impolite
        "<- rtc-description",  # the guest's answer to the host's offer
        "<- rtc-description",  # and right behind it, its offer again: kept for later,
        "apply answer",  # not glare: the answer came first
        "apply offer",
        "state answering",
        "CreateAnswer",
        "send answer",
        "state stable",
    ]
    assert guest.trace == [
        "CreateOffer",
        "state offering",
        "send offer",
        "<- rtc-description",  # the host's offer crosses ours: we are polite
        "Rollback",
        "apply offer",
        "state answering",
        "CreateAnswer",
        "send answer",
        "CreateOffer",  # our change, offered again from stable
        "state offering",
        "send offer",
        "<- rtc-description",
        "apply answer",
        "state stable",
    ]
    assert host.negotiated == guest.negotiated == {"host:audio", "guest:video"}
    assert_both_stable(host, guest)


def test_glare_while_the_guest_is_still_making_its_offer_drops_that_offer() -> None:
    host, guest = pair()
    host.change("audio")
    guest.change("video")  # CreateOffer is queued on the guest, not run yet
    host.pump()
    deliver(guest, host)  # the host's offer arrives while the guest makes its own
    assert names(list(guest.queue)) == [
        "CreateOffer",
        "state offering",
        "Rollback",
        "apply offer",
        "state answering",
    ]
    settle(host, guest)
    sent = [t for t in guest.trace if t.startswith("send")]
    assert sent == ["send answer", "send offer"]  # the superseded offer never left
    assert host.negotiated == guest.negotiated == {"host:audio", "guest:video"}
    assert_both_stable(host, guest)


@pytest.mark.parametrize("can_rollback", [True, False])
@pytest.mark.parametrize("seed", range(300))
def test_any_interleaving_ends_stable_with_every_change_on_both_sides(
    seed: int, can_rollback: bool
) -> None:
    """Changes on both sides at random moments, each side running one output at a
    time, each direction of the (ordered) channel delivering one frame at a time."""
    rng = random.Random(seed)
    host, guest = pair(can_rollback=can_rollback)
    todo = [(host, "audio"), (host, "screen"), (guest, "video"), (guest, "mic2")]
    rng.shuffle(todo)
    todo = todo[: rng.randint(2, 4)]
    for _ in range(400):
        moves: list[tuple[str, FakePC]] = []
        if todo:
            moves.append(("change", todo[-1][0]))
        for side in (host, guest):
            if side.queue:
                moves.append(("step", side))
            if side.wire:
                moves.append(("deliver", side))
        if not moves:
            break
        move, side = rng.choice(moves)
        if move == "change":
            side.change(todo.pop()[1])
        elif move == "step":
            side.run(side.queue.popleft())
        else:
            deliver_one(guest if side is host else host, side)
    settle(host, guest)
    expected = {c for side in (host, guest) for c in side.changes}
    assert host.negotiated == guest.negotiated == expected
    assert_both_stable(host, guest)
    assert "Rollback" not in host.trace
    if not can_rollback:
        assert "Rollback" not in guest.trace


def test_without_rollback_the_guest_asks_the_host_to_offer_and_glare_cannot_happen() -> None:
    host, guest = pair(can_rollback=False)
    host.change("audio")
    guest.change("video")  # at once
    settle(host, guest)
    assert "Rollback" not in host.trace + guest.trace
    assert [t for t in guest.trace if not t.startswith("state")] == [
        "RequestOffer",
        "<- rtc-description",
        "apply offer",
        "CreateAnswer",
        "send answer",
        "<- rtc-description",  # the host's second offer, made for the request
        "apply offer",
        "CreateAnswer",
        "send answer",
    ]
    assert [t for t in host.trace if not t.startswith("state")] == [
        "CreateOffer",
        "send offer",
        "<- rtc-negotiate",  # while the host's offer is out: deferred
        "<- rtc-description",
        "apply answer",
        "CreateOffer",
        "send offer",
        "<- rtc-description",
        "apply answer",
    ]
    assert host.negotiated == guest.negotiated == {"host:audio", "guest:video"}
    assert_both_stable(host, guest)


def test_a_guest_change_alone_without_rollback_is_one_request_and_one_offer() -> None:
    host, guest = pair(can_rollback=False)
    guest.change("video")
    assert guest.trace == [] and names(list(guest.queue)) == ["RequestOffer"]
    settle(host, guest)
    assert host.negotiated == guest.negotiated == {"guest:video"}
    assert host.trace.count("CreateOffer") == 1
    assert_both_stable(host, guest)


def test_an_answer_to_no_offer_is_ignored() -> None:
    neg = Negotiator("guest", has_remote_description=True)
    assert neg.remote_description("answer", "v=0", 0) == []
    assert neg.handle({"type": "rtc-description", "kind": "pranswer", "sdp": "x"}, 0) == []
    assert neg.handle({"type": "rtc-description", "kind": "offer", "sdp": 5}, 0) == []
    assert neg.handle({"type": "rtc-candidate", "candidate": "x"}, 0) == []
    assert neg.handle({"type": "rtc-negotiate"}, 0) == []  # the host asks no guest
    assert neg.handle({"type": "something-else"}, 0) == []


# -- failures of a step -------------------------------------------------------------------
def test_an_offer_that_does_not_apply_drops_its_candidates_and_says_so() -> None:
    neg = Negotiator("guest")
    assert neg.remote_candidate(cand("a"), 0) == []
    assert names(neg.remote_description("offer", "sdp", 1)) == ["apply offer", "state answering"]
    assert neg.remote_candidate(cand("b"), 2) == []
    assert neg.remote_description_failed("bad sdp", 3) == [
        NegotiationFailed("apply-offer", "bad sdp"),
        StateChanged(NegotiationState.STABLE),
    ]
    assert neg.pending_candidates == []
    assert neg.remote_candidate(cand("a"), 4) == []  # may come again: buffered again
    assert neg.pending_candidates == [cand("a")]


@pytest.mark.parametrize(("can_rollback", "then"), [(True, ["Rollback"]), (False, [])])
def test_an_answer_that_cannot_be_made_is_reported(can_rollback: bool, then: list[str]) -> None:
    # aiortc 1.16 raises ValueError from setLocalDescription(answer) when a transceiver
    # of ours has no m-line in the offer: the exchange is refused, not left hanging.
    neg = Negotiator("guest", can_rollback=can_rollback, has_remote_description=True)
    neg.remote_description("offer", "sdp", 0)
    assert names(neg.remote_description_applied(1)) == ["CreateAnswer"]
    out = neg.local_answer_failed("None is not in list", 2)
    assert names(out) == ["failed create-answer", *then, "state stable"]


def test_an_offer_that_cannot_be_made_is_reported_and_the_machine_is_free_again() -> None:
    neg = Negotiator("host", has_remote_description=True)
    assert names(neg.negotiation_needed(0)) == ["CreateOffer", "state offering"]
    assert names(neg.local_offer_failed("closed", 1)) == ["failed create-offer", "state stable"]
    assert names(neg.negotiation_needed(2)) == ["CreateOffer", "state offering"]


# -- candidates ------------------------------------------------------------------------------
def test_candidates_wait_for_the_remote_description_then_flush_in_order_without_duplicates() -> (
    None
):
    neg = Negotiator("guest")  # a fresh connection: no remote description yet
    assert neg.remote_candidate(cand("c1"), 0) == []
    assert neg.remote_candidate(cand("c2"), 0) == []
    assert neg.remote_candidate(cand("c1"), 0) == []  # the same one again
    assert neg.remote_candidate(cand("c1", mid="1", index=1), 0) == []  # another m-line
    assert neg.handle(candidate_frame(cand("c3")), 0) == []
    assert names(neg.remote_description("offer", "sdp", 1)) == ["apply offer", "state answering"]
    assert neg.remote_candidate(cand("c4"), 2) == []  # while it is being applied
    assert names(neg.remote_description_applied(3)) == [
        "candidate c1",
        "candidate c2",
        "candidate c1",  # sdpMid 1: not the same candidate
        "candidate c3",
        "candidate c4",
        "CreateAnswer",
    ]
    assert neg.remote_candidate(cand("c2"), 4) == []
    assert neg.remote_candidate(cand("c5"), 4) == [ApplyCandidate(cand("c5"))]
    assert neg.remote_candidate({"candidate": "c6"}, 4) == []  # neither sdpMid nor index
    assert neg.remote_candidate({"candidate": 6, "sdpMid": "0"}, 4) == []


def test_candidates_over_the_pair_reach_addicecandidate_after_the_offer() -> None:
    host, guest = pair()
    guest.neg.has_remote = guest.has_remote = False  # as on a connection just made
    host.change("audio")
    host.pump()
    host.wire[:0] = [candidate_frame(cand("early"))]  # a candidate overtakes its offer
    host.wire.append(candidate_frame(cand("late")))
    host.wire.append(candidate_frame(cand("early")))
    settle(host, guest)
    assert guest.applied == ["early", "late"]
    assert guest.trace.index("apply offer") < guest.trace.index("candidate early")


# -- reset -----------------------------------------------------------------------------------
def test_reset_forgets_candidates_the_seen_set_retries_and_the_pending_flag() -> None:
    neg = Negotiator("host", backoff=(2.0,))
    neg.remote_candidate(cand("c1"), 0)
    neg.remote_candidate(cand("c2"), 0)
    neg.signaling_state_changed("have-remote-offer", 0)
    neg.negotiation_needed(0)
    assert neg.pending and neg.pending_candidates and neg.seen
    neg.ice_state_changed("failed", 0)
    neg.tick(2)
    neg.ice_state_changed("failed", 3)
    assert neg.gave_up
    assert neg.negotiation_needed(4) == []  # gave up: a manual reconnection is needed

    assert neg.reset(10) == [StateChanged(NegotiationState.STABLE)]
    assert (neg.pending, neg.pending_candidates, neg.seen, neg.attempts) == (False, [], set(), 0)
    assert not neg.gave_up and neg.signaling == "stable"
    assert neg.remote_candidate(cand("c1"), 11) == []  # seen before the reset: new now
    assert neg.pending_candidates == [cand("c1")]  # and no remote description yet
    assert names(neg.ice_state_changed("failed", 12)) == ["tick at 14", "state recovering"]
    assert neg.signaling_state_changed("stable", 12) == []  # nothing was pending
    assert neg.reset(13) == [StateChanged(NegotiationState.STABLE)]
    assert names(neg.negotiation_needed(14)) == ["CreateOffer", "state offering"]


# -- ICE recovery ------------------------------------------------------------------------------
def test_ice_failure_restarts_after_2_4_and_8_seconds_then_gives_up() -> None:
    neg = Negotiator("host", has_remote_description=True)
    trace: list[tuple[float, list[str]]] = []

    def at(now: float, outputs: list[Output]) -> None:
        trace.append((now, names(outputs)))

    at(100, neg.ice_state_changed("failed", 100))
    at(101, neg.tick(101))
    at(102, neg.tick(102))
    at(102, neg.local_offer_created("restart-1", 102))
    at(102, neg.ice_state_changed("checking", 102))
    at(103, neg.ice_state_changed("failed", 103))
    at(107, neg.tick(107))
    at(107, neg.local_offer_created("restart-2", 107))
    at(108, neg.ice_state_changed("failed", 108))
    at(116, neg.tick(116))
    at(116, neg.local_offer_created("restart-3", 116))
    at(117, neg.ice_state_changed("failed", 117))
    at(200, neg.tick(200))
    at(200, neg.ice_state_changed("failed", 200))
    assert trace == [
        (100, ["tick at 102", "state recovering"]),
        (101, []),
        (102, ["tick at 122", "CreateOffer(restart)"]),
        (102, ["send offer (restart)"]),
        (102, []),
        (103, ["tick at 107"]),
        (107, ["tick at 127", "CreateOffer(restart)"]),
        (107, ["send offer (restart)"]),
        (108, ["tick at 116"]),
        (116, ["tick at 136", "CreateOffer(restart)"]),
        (116, ["send offer (restart)"]),
        (117, ["GaveUp", "state gave-up"]),
        (200, []),
        (200, []),
    ]


def test_a_success_between_restarts_resets_the_backoff() -> None:
    neg = Negotiator("host", has_remote_description=True)
    assert names(neg.ice_state_changed("failed", 0)) == ["tick at 2", "state recovering"]
    assert names(neg.tick(2)) == ["tick at 22", "CreateOffer(restart)"]
    neg.local_offer_created("restart", 2)
    assert names(neg.ice_state_changed("failed", 3)) == ["tick at 7"]  # the 2nd: 4 s
    assert names(neg.tick(7)) == ["tick at 27", "CreateOffer(restart)"]
    neg.local_offer_created("restart", 7)
    assert names(neg.remote_description("answer", "a", 8)) == ["apply answer (restart)"]
    assert names(neg.remote_description_applied(8)) == []
    assert names(neg.ice_state_changed("completed", 9)) == ["state stable"]
    assert neg.attempts == 0
    assert names(neg.ice_state_changed("failed", 50)) == ["tick at 52", "state recovering"]
    assert names(neg.tick(27)) == []  # the old attempt deadline: nothing due
    assert names(neg.tick(52)) == ["tick at 72", "CreateOffer(restart)"]


def test_a_restart_that_never_connects_counts_as_failed() -> None:
    neg = Negotiator("host", has_remote_description=True, attempt_timeout=10)
    neg.ice_state_changed("failed", 0)
    assert names(neg.tick(2)) == ["tick at 12", "CreateOffer(restart)"]
    neg.ice_state_changed("checking", 3)
    assert names(neg.tick(12)) == ["tick at 16"]  # no verdict from ICE: the next, in 4 s
    assert names(neg.tick(16)) == ["tick at 26", "CreateOffer(restart)"]
    neg.ice_state_changed("completed", 17)  # then the connection comes back
    assert neg.attempts == 0 and neg.tick(26) == []


def test_disconnected_for_longer_than_the_grace_counts_as_a_failure() -> None:
    neg = Negotiator("host", has_remote_description=True, disconnect_grace=5)
    assert names(neg.ice_state_changed("disconnected", 0)) == ["tick at 5"]
    assert neg.ice_state_changed("connected", 3) == []  # came back in time
    assert neg.tick(5) == []
    assert names(neg.ice_state_changed("disconnected", 10)) == ["tick at 15"]
    assert names(neg.tick(15)) == ["tick at 17", "state recovering"]
    assert names(neg.tick(17)) == ["tick at 37", "CreateOffer(restart)"]


def test_a_restart_replaces_our_unanswered_offer_and_waits_for_our_answer() -> None:
    neg = Negotiator("host", has_remote_description=True)
    neg.negotiation_needed(0)
    neg.negotiation_needed(0)  # deferred behind the first
    neg.ice_state_changed("failed", 1)
    # The restart comes while the first offer is still being made: that one is dropped.
    assert names(neg.tick(3)) == ["tick at 23", "CreateOffer(restart)"]
    assert neg.local_offer_created("superseded", 3) == []
    assert names(neg.local_offer_created("restart", 3)) == ["send offer (restart)"]
    assert not neg.pending  # the restart offer carries the deferred change too

    answering = Negotiator("host", has_remote_description=True)
    answering.remote_description("offer", "o", 0)
    answering.ice_state_changed("failed", 1)
    assert names(answering.tick(3)) == ["tick at 23"]  # not yet: our answer is under way
    assert names(answering.remote_description_applied(4)) == ["CreateAnswer"]
    assert names(answering.local_answer_created("a", 5)) == [
        "send answer",
        "CreateOffer(restart)",
    ]


def test_the_guest_asks_for_a_restart_and_the_host_makes_it() -> None:
    host, guest = pair()
    host.neg.ice_state_changed("completed", 0)  # the host has not noticed anything
    guest.feed(guest.neg.ice_state_changed("failed", 10))
    guest.now = 12
    guest.feed(guest.neg.tick(12))
    settle(host, guest)
    assert guest.trace == [
        "tick at 12",
        "state recovering",
        "tick at 32",
        "RequestRestart(1)",
        "<- rtc-description",
        "apply offer (restart)",
        "CreateAnswer",
        "send answer (restart)",
    ]
    assert host.trace == [
        "<- rtc-restart",
        "tick at 20",  # host.now is 0: its attempt deadline
        "CreateOffer(restart)",
        "state recovering",
        "send offer (restart)",
        "<- rtc-description",
        "apply answer (restart)",
    ]
    assert names(host.neg.restart_requested(1)) == []  # a second request: one is under way
    for side in (host, guest):
        side.feed(side.neg.ice_state_changed("completed", 13))
    settle(host, guest)
    assert_both_stable(host, guest)
    assert host.neg.attempts == guest.neg.attempts == 0


def test_a_restart_offer_from_the_host_counts_as_the_guest_attempt() -> None:
    guest = Negotiator("guest", has_remote_description=True)
    assert names(guest.ice_state_changed("failed", 0)) == ["tick at 2", "state recovering"]
    out = guest.remote_description("offer", "restart", 1, ice_restart=True)
    assert names(out) == ["tick at 21", "apply offer (restart)"]
    assert guest.attempts == 1
    assert guest.tick(2) == []  # no request of its own: the host's restart is under way


def test_the_guest_gives_up_after_three_unanswered_requests() -> None:
    guest = Negotiator("guest", has_remote_description=True, attempt_timeout=10)
    outputs: list[str] = []
    guest.ice_state_changed("failed", 0)
    for now in (2, 12, 16, 26, 34, 44):
        outputs += [f"{now}: {n}" for n in names(guest.tick(now))]
    assert outputs == [
        "2: tick at 12",
        "2: RequestRestart(1)",
        "12: tick at 16",
        "16: tick at 26",
        "16: RequestRestart(2)",
        "26: tick at 34",
        "34: tick at 44",
        "34: RequestRestart(3)",
        "44: GaveUp",
        "44: state gave-up",
    ]


def test_frames_for_the_peer() -> None:
    assert to_frame(SendDescription("offer", "v=0", True)) == {
        "type": "rtc-description",
        "kind": "offer",
        "sdp": "v=0",
        "ice_restart": True,
    }
    assert to_frame(RequestOffer()) == {"type": "rtc-negotiate"}
    assert to_frame(RequestRestart(2)) == {"type": "rtc-restart", "attempt": 2}
    assert to_frame(CreateAnswer()) is None
