"""ICE failure and restarts in the negotiation machine: 2, 4 and 8 s, then giving up;
recorded with two machines over fake peer connections."""

from __future__ import annotations

from orbitd.negotiation import (
    Negotiator,
    Output,
)
from tests.negotiation_pair import (
    assert_both_stable,
    names,
    pair,
    settle,
)


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
