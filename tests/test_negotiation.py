"""Renegotiation as a pure state machine: two of them, each over a fake peer connection,
with the frames between them delivered by hand; what each asks for is recorded."""

from __future__ import annotations

import json
import random

import pytest

from orbitcore.protocol.frames import ProtocolError
from orbitcore.protocol.peer import CHANNEL, RtcDescription, RtcNegotiate, RtcRestart
from orbitd.negotiation import (
    ApplyCandidate,
    CreateAnswer,
    CreateOffer,
    NegotiationFailed,
    NegotiationState,
    Negotiator,
    Output,
    RequestOffer,
    RequestRestart,
    SendDescription,
    StateChanged,
    candidate_frame,
    to_frame,
)
from tests.negotiation_pair import (
    FakePC,
    assert_both_stable,
    cand,
    deliver,
    deliver_one,
    names,
    pair,
    settle,
)


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
    assert neg.handle(RtcDescription("answer", "v=0"), 0) == []
    assert neg.remote_description("pranswer", "x", 0) == []
    assert neg.handle(RtcNegotiate(), 0) == []  # the host asks no guest
    assert neg.handle(RtcRestart(1), 0) == []  # nor a restart


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ({"type": "rtc-description", "kind": "pranswer", "sdp": "x"}, '"offer"'),
        ({"type": "rtc-description", "kind": "offer", "sdp": 5}, "must be a string"),
        ({"type": "rtc-description", "kind": "offer", "sdp": "x", "ice_restart": 1}, "true"),
        ({"type": "rtc-candidate", "candidate": "x"}, "an object"),
        ({"type": "rtc-candidate", "candidate": {"candidate": "c6"}}, "sdpMid"),
        ({"type": "rtc-candidate", "candidate": {"candidate": 6, "sdpMid": "0"}}, "a string"),
        (
            {"type": "rtc-candidate", "candidate": {"candidate": "c", "sdpMLineIndex": True}},
            "integer",
        ),
        ({"type": "rtc-restart", "attempt": "1"}, "an integer"),
        ({"type": "something-else"}, "Unknown frame type"),
    ],
)
def test_malformed_negotiation_frames_never_reach_the_machine(
    body: dict[str, object], reason: str
) -> None:
    with pytest.raises(ProtocolError, match=reason):
        CHANNEL.parse(json.dumps(body))


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
    assert neg.remote_candidate(cand("c5", mid=None, index=0), 4) == [
        ApplyCandidate(cand("c5", mid=None, index=0))
    ]  # the index alone tells it apart


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
def test_frames_for_the_peer() -> None:
    def wire(out: Output) -> object:
        frame = to_frame(out)
        return None if frame is None else json.loads(frame.encode())

    assert wire(SendDescription("offer", "v=0", True)) == {
        "type": "rtc-description",
        "kind": "offer",
        "sdp": "v=0",
        "ice_restart": True,
    }
    assert wire(RequestOffer()) == {"type": "rtc-negotiate"}
    assert wire(RequestRestart(2)) == {"type": "rtc-restart", "attempt": 2}
    assert wire(CreateAnswer()) is None
    assert json.loads(candidate_frame(cand("c1", mid=None, index=1)).encode()) == {
        "type": "rtc-candidate",
        "candidate": {"candidate": "c1", "sdpMLineIndex": 1},
    }
