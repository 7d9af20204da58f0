"""Sealed boxes bound to direction, sequence number and phase (feature `bound-boxes`),
recorded as the machines answer: a relay that replays, reorders, changes headers or
makes up aborts and key exchanges has no effect on a session once the confirms are read."""

from __future__ import annotations

from dataclasses import replace
from typing import TypeVar

from orbitcore.protocol import relay, signal
from orbitd.crypto import Invite, Seat, new_secret
from orbitd.handshake import Announcement, Handshake, Limits, Output, Verified
from orbitd.resignal import Dropped, RejoinAsked, Reoffered, Resignal
from tests.test_handshake import GUEST_SDP, HOST_SDP, TOKEN, deliver, frames, kinds

OLD = Announcement("1.2", ("chat", "calls", "reconnect", "resume"))


F = TypeVar("F", relay.Pake, relay.Sealed, relay.Abort)


def wire(frame: F) -> F:
    parsed = relay.CHANNEL.parse(frame.encode())  # as it would cross the relay
    assert isinstance(parsed, type(frame))
    return parsed


def sealed(outputs: list[Output]) -> relay.Sealed:
    (frame,) = frames(outputs)
    assert isinstance(frame, relay.Sealed)
    return frame


def ready(
    host_says: Announcement | None = None, guest_says: Announcement | None = None
) -> tuple[Handshake, Handshake, relay.Sealed, relay.Sealed]:
    """Two handshakes to `ready`; the host's offer and the guest's answer as sent."""
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret), host_says, Limits(60, 2000))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret), guest_says, Limits(60, 2000))
    guest_confirm = deliver(guest, host.start())
    host_confirm = deliver(host, guest.start())
    # The host's offer is ready before the guest's confirm came: held, then sealed.
    assert host.local_description(HOST_SDP) == []
    offer = sealed(deliver(host, guest_confirm))
    assert deliver(guest, host_confirm) == []
    assert kinds(guest.handle(wire(offer))) == ["phase connecting", "MakeAnswer"]
    answer = sealed(guest.local_description(GUEST_SDP))
    assert kinds(host.handle(wire(answer))) == ["phase connecting", "UseAnswer"]
    assert isinstance(host.connected("BB:BB:BB")[-1], Verified)
    assert isinstance(guest.connected("AA:AA:AA")[-1], Verified)
    return host, guest, offer, answer


def test_boxes_after_the_confirm_carry_seq_and_phase_in_their_header() -> None:
    host, guest, offer, answer = ready()
    assert (offer.seq, offer.phase) == (1, "handshake")
    assert (answer.seq, answer.phase) == (1, "handshake")  # each direction counts alone
    assert host.limits == guest.limits == Limits(60, 2000)


def test_the_hosts_offer_replayed_into_a_ready_session_has_no_effect() -> None:
    host, guest, offer, answer = ready()
    assert guest.handle(wire(offer)) == []
    assert host.handle(wire(answer)) == []
    # Its header raised so that it passes the order check: it no longer opens, dropped.
    assert guest.handle(wire(replace(offer, seq=7))) == []
    assert guest.handle(wire(replace(offer, phase="reconnect"))) == []
    assert guest.phase.value == host.phase.value == "ready"


def test_a_relay_that_makes_up_aborts_and_pakes_cannot_end_a_ready_chat() -> None:
    host, guest, _, _ = ready()
    for code in ("invite_mismatch", "protocol_error"):
        assert guest.handle(relay.Abort(code)) == []
    stranger = Handshake(Seat.GUEST, Invite(TOKEN, new_secret())).start()
    (pake,) = frames(stranger)
    assert isinstance(pake, relay.Pake)
    assert host.handle(wire(pake)) == []
    assert guest.phase.value == host.phase.value == "ready"


def test_an_unsealed_abort_during_the_handshake_is_the_servers_never_tampering() -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    guest_confirm = deliver(guest, host.start())
    host_confirm = deliver(host, guest.start())
    deliver(host, guest_confirm)
    deliver(guest, host_confirm)
    assert kinds(guest.handle(relay.Abort("invite_mismatch"))) == [
        "phase failed",
        "failed relay_aborted",
    ]


def test_a_sealed_abort_is_the_peers_and_travels_bound() -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    guest_confirm = deliver(guest, host.start())
    host_confirm = deliver(host, guest.start())
    deliver(host, guest_confirm)
    deliver(guest, host_confirm)
    # The guest gets an answer from the host: a protocol error, told to the host sealed.
    wrong = host._sealed(signal.Answer("v=0")).frame
    assert isinstance(wrong, relay.Sealed)
    told = guest.handle(wire(wrong))
    assert kinds(told) == ["send sealed", "phase failed", "failed protocol_error"]
    abort = sealed(told)
    assert (abort.seq, abort.phase) == (1, "handshake")
    assert kinds(host.handle(wire(abort))) == ["phase failed", "failed peer_aborted"]


def test_reconnect_boxes_continue_the_count_and_drop_replays_and_reordering() -> None:
    host_hs, guest_hs, _, _ = ready()
    assert host_hs.keys is not None and guest_hs.keys is not None
    host = Resignal(Seat.HOST, host_hs.keys, TOKEN, host_hs.boxes)
    guest = Resignal(Seat.GUEST, guest_hs.keys, TOKEN, guest_hs.boxes)
    first, second = guest.rejoin(), guest.rejoin()
    assert (first.seq, second.seq, first.phase) == (2, 3, "reconnect")
    assert host.open(wire(second)) == RejoinAsked(0)
    # A replayed rejoin would make a host with a live link rebuild it: dropped, as is
    # the older one that comes after the newer.
    assert isinstance(host.open(wire(second)), Dropped)
    assert isinstance(host.open(wire(first)), Dropped)
    reoffer = host.reoffer(1, HOST_SDP)
    assert (reoffer.seq, reoffer.phase) == (2, "reconnect")
    assert guest.open(wire(reoffer)) == Reoffered(1, HOST_SDP)
    # A box of the first handshake never opens as a reconnect box, nor the other way.
    assert isinstance(guest_hs.handle(wire(reoffer)), list)
    assert guest_hs.phase.value == "ready"


def test_a_12_peer_gets_the_old_boxes_and_the_chat_still_comes_up() -> None:
    host, guest, offer, answer = ready(guest_says=OLD)
    assert offer.seq is None and answer.seq is None
    assert host.agreement is not None and "bound-boxes" not in host.agreement.features
    # Without the binding a replayed description is still dropped, not fatal.
    assert guest.handle(wire(offer)) == []
    # An unsealed abort from such a peer may be real, but is never "tampering".
    secret = new_secret()
    old_host = Handshake(Seat.HOST, Invite(TOKEN, secret), OLD)
    new_guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    guest_confirm = deliver(new_guest, old_host.start())
    host_confirm = deliver(old_host, new_guest.start())
    deliver(old_host, guest_confirm)
    deliver(new_guest, host_confirm)
    assert kinds(new_guest.handle(relay.Abort("invite_mismatch"))) == [
        "phase failed",
        "failed peer_aborted",
    ]
