"""The first connection, plan after plan, as a pure machine: record what it asks for."""

from __future__ import annotations

from collections.abc import Sequence

from orbitcore.protocol import relay
from orbitd.crypto import Invite, Seat, new_secret
from orbitd.first_connect import (
    MIN_PLAN_SECONDS,
    AnswerReoffer,
    FirstConnect,
    FirstOutput,
    NextPlan,
    plan_seconds,
)
from orbitd.handshake import (
    Announcement,
    Handshake,
    MakeAnswer,
    SendRelay,
    UseAnswer,
    Verified,
)
from tests.handshake_outputs import describe

TOKEN = "ABCD1234WXYZ"
HOST_SDP = ["v=0\r\na=fingerprint:sha-256 A0:A0\r\n", "v=0\r\na=fingerprint:sha-256 A1:A1\r\n"]
GUEST_SDP = ["v=0\r\na=fingerprint:sha-256 B0:B0\r\n", "v=0\r\na=fingerprint:sha-256 B1:B1\r\n"]
NO_RECONNECT = Announcement(features=("chat", "calls"))


kinds = describe


def sent(outputs: Sequence[FirstOutput]) -> list[relay.Pake | relay.Sealed | relay.Abort]:
    frames = [o.frame for o in outputs if isinstance(o, SendRelay)]
    return [relay.CHANNEL.parse(f.encode()) for f in frames]  # type: ignore[misc]


def pair(
    plans: int = 2, announce: Announcement | None = None
) -> tuple[FirstConnect, FirstConnect, list[relay.Sealed]]:
    """Both machines with their keys exchanged and started at 0; the host's first offer
    made (returned, not yet delivered)."""
    secret = new_secret()
    host_hs = Handshake(Seat.HOST, Invite(TOKEN, secret), announce)
    guest_hs = Handshake(Seat.GUEST, Invite(TOKEN, secret), announce)
    host = FirstConnect(host_hs, plans=plans, connect_timeout=20.0)
    guest = FirstConnect(guest_hs, plans=1, connect_timeout=20.0)
    to_host = sent(guest_hs.start())
    to_guest = sent(host_hs.start())
    out_h = [o for f in to_host for o in host.sealed(f, 0.0)]
    out_g = [o for f in to_guest for o in guest.sealed(f, 0.0)]
    assert kinds(out_h) == ["phase exchanging-keys", "send sealed", "MakeOffer"]
    host.start(0.0)
    guest.start(0.0)
    for f in sent(out_h):  # the host's confirm
        assert guest.sealed(f, 0.0) == []
    for f in sent(out_g):  # the guest's confirm
        assert host.sealed(f, 0.0) == []
    offer = sent(host_hs.local_description(HOST_SDP[0]))
    return host, guest, offer  # type: ignore[return-value]


def deliver(to: FirstConnect, outputs: Sequence[FirstOutput], now: float) -> list[FirstOutput]:
    return [o for f in sent(outputs) for o in to.sealed(f, now)]


def test_the_first_plan_fails_so_the_host_reoffers_generation_1_verified_by_its_fingerprint() -> (
    None
):
    host, guest, offer = pair()
    assert plan_seconds(20.0, 2) == 10.0 and host.due == 10.0 and guest.due == 20.0
    got = [o for f in offer for o in guest.sealed(f, 0.5)]
    assert kinds(got) == ["phase connecting", "MakeAnswer"]
    answer_0 = guest.handshake.local_description(GUEST_SDP[0])
    assert kinds(deliver(host, answer_0, 0.6)) == ["phase connecting", "UseAnswer"]
    assert host.tick(9.9) == []
    assert host.tick(10.0) == [NextPlan()]
    assert host.due == 20.0
    reoffer = host.reoffer(1, HOST_SDP[1])
    assert kinds(reoffer) == ["send sealed"]
    got = deliver(guest, reoffer, 10.5)
    assert got == [AnswerReoffer(1, HOST_SDP[1])]
    assert guest.due == 40.5  # a plan's time and the host's gathering, from each reoffer
    reanswer = guest.reanswer(1, GUEST_SDP[1])
    assert kinds(reanswer) == ["send sealed"]
    assert deliver(host, reanswer, 10.6) == [UseAnswer(GUEST_SDP[1])]
    # Generation 1 comes up: each side checks the fingerprint sealed for generation 1.
    assert kinds(guest.connected("a0:a0")) == ["phase failed", "failed fingerprint_mismatch"]
    assert kinds(host.connected("B1:B1")) == ["phase ready", "Verified"]
    assert host.done and host.tick(100.0) == []
    assert host.resignal is not None and host.resignal.generation == 1


def test_both_sides_read_the_same_code_from_the_generation_that_came_up() -> None:
    host, guest, offer = pair()
    [o for f in offer for o in guest.sealed(f, 0.5)]
    assert host.tick(10.0) == [NextPlan()]
    assert deliver(guest, host.reoffer(1, HOST_SDP[1]), 10.5) == [AnswerReoffer(1, HOST_SDP[1])]
    deliver(host, guest.reanswer(1, GUEST_SDP[1]), 10.6)
    host_out, guest_out = host.connected("B1:B1"), guest.connected("A1:A1")
    host_sas = [o.sas for o in host_out if isinstance(o, Verified)]
    guest_sas = [o.sas for o in guest_out if isinstance(o, Verified)]
    assert host_sas == guest_sas and len(host_sas) == 1
    assert guest.resignal is not None and guest.resignal.generation == 1


def test_a_stale_answer_of_generation_0_after_generation_1_is_ignored() -> None:
    host, guest, offer = pair()
    [o for f in offer for o in guest.sealed(f, 0.5)]
    answer_0 = guest.handshake.local_description(GUEST_SDP[0])
    assert host.tick(10.0) == [NextPlan()]
    reoffer = host.reoffer(1, HOST_SDP[1])
    late = deliver(host, answer_0, 10.2)  # generation 1 is current: not applied
    assert kinds(late) == ["phase connecting"]
    assert kinds(host.connected("B0:B0")) == []  # not signalled: cannot be generation 1's
    deliver(guest, reoffer, 10.5)
    assert deliver(host, guest.reanswer(1, GUEST_SDP[1]), 10.6) == [UseAnswer(GUEST_SDP[1])]
    assert kinds(host.connected("B1:B1")) == ["phase ready", "Verified"]


def test_a_first_offer_after_a_reoffer_is_stale_for_the_guest_and_an_old_answer_is_not_sent() -> (
    None
):
    host, guest, offer = pair()
    assert host.tick(10.0) == [NextPlan()]
    reoffer = host.reoffer(1, HOST_SDP[1])
    got = deliver(guest, reoffer, 10.5)
    assert kinds(got) == ["phase connecting", "AnswerReoffer 1"]
    got = [o for f in offer for o in guest.sealed(f, 10.6)]  # generation 0's offer, late
    assert not any(isinstance(o, MakeAnswer) for o in got)
    assert guest.reanswer(0, GUEST_SDP[0]) == []  # only the newest reoffer is answered


def test_every_plan_fails_then_connect_timeout() -> None:
    host, guest, _ = pair(plans=3)
    assert plan_seconds(20.0, 3) == MIN_PLAN_SECONDS == 10.0
    assert host.tick(10.0) == [NextPlan()]
    assert host.tick(20.0) == [NextPlan()]
    assert [kinds(host.tick(t)) for t in (29.9, 30.0, 40.0)] == [[], ["failed connect_timeout"], []]
    # The guest (no reoffer came) waits longer than the host's first plan and gathering.
    assert guest.tick(20.0) == [] and guest.due == 30.0
    assert kinds(guest.tick(30.0)) == ["failed connect_timeout"]


def test_without_reconnect_one_connection_gets_the_whole_connect_timeout() -> None:
    host, guest, _ = pair(plans=2, announce=NO_RECONNECT)
    assert host.tick(10.0) == []  # no next plan: the other daemon cannot take a reoffer
    assert host.due == 20.0 and host.resignal is None
    assert kinds(host.tick(20.0)) == ["failed connect_timeout"]
    assert kinds(guest.tick(20.0)) == ["failed connect_timeout"]


def test_one_plan_is_the_old_behaviour() -> None:
    host, _, _ = pair(plans=1)
    assert host.due == 20.0 and host.tick(19.9) == []
    assert kinds(host.tick(20.0)) == ["failed connect_timeout"]


def test_the_connect_timeout_starts_when_the_peers_seat_is_taken() -> None:
    # A relay that passes on nothing: the rendezvous says both seats are taken, and no
    # key exchange ever comes. Both sides end instead of waiting for the peer forever.
    for seat in (Seat.HOST, Seat.GUEST):
        first = FirstConnect(
            Handshake(seat, Invite(TOKEN, new_secret())), plans=3, connect_timeout=20.0
        )
        assert first.tick(100.0) == []  # alone at the rendezvous: no deadline
        first.seat_taken(100.0)
        first.seat_taken(110.0)  # the status again: the deadline stays
        assert [kinds(first.tick(t)) for t in (119.9, 120.0, 130.0)] == [
            [],
            ["failed connect_timeout"],
            [],
        ]
    # Once the keys exist the plans' own clock takes over.
    host, _, _ = pair(plans=2)
    host.seat_taken(0.0)
    assert host.due == 10.0 and host.tick(10.0) == [NextPlan()]
