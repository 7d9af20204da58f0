"""Sealed re-signaling as a pure machine: generations, replays, other boxes, fingerprints."""

from __future__ import annotations

import pytest

from orbitcore.protocol import relay, signal
from orbitd.crypto import Invite, Pake, Seat, SessionKeys, new_secret, seal
from orbitd.resignal import Dropped, Reanswered, RejoinAsked, Reoffered, Resignal

TOKEN = "ABCD1234WXYZ"
HOST_SDP = "v=0\r\na=fingerprint:sha-256 aa:aa:aa\r\n"
GUEST_SDP = "v=0\r\na=fingerprint:sha-256 BB:BB:BB\r\n"


def keys() -> tuple[SessionKeys, SessionKeys]:
    secret = new_secret()
    host, guest = Pake(Seat.HOST, Invite(TOKEN, secret)), Pake(Seat.GUEST, Invite(TOKEN, secret))
    return host.finish(guest.outbound), guest.finish(host.outbound)


def pair() -> tuple[Resignal, Resignal]:
    host_keys, guest_keys = keys()
    return Resignal(Seat.HOST, host_keys, TOKEN), Resignal(Seat.GUEST, guest_keys, TOKEN)


def wire(frame: relay.Sealed) -> relay.Sealed:
    parsed = relay.CHANNEL.parse(frame.encode())  # as it would cross the relay
    assert isinstance(parsed, relay.Sealed)
    return parsed


def test_a_reoffer_and_its_reanswer_then_both_fingerprints_check() -> None:
    host, guest = pair()
    assert guest.open(wire(host.reoffer(1, HOST_SDP))) == Reoffered(1, HOST_SDP)
    assert host.open(wire(guest.reanswer(GUEST_SDP))) == Reanswered(1, GUEST_SDP)
    assert guest.verify("AA:AA:AA") and host.verify("bb:bb:bb")
    assert not guest.verify("AA:AA:AB") and not host.verify("AA:AA:AA")


def test_a_replayed_or_older_reoffer_is_dropped_and_a_newer_one_taken() -> None:
    host, guest = pair()
    first = wire(host.reoffer(1, HOST_SDP))
    third = wire(host.reoffer(3, HOST_SDP))  # attempt 2's was lost on the way
    assert guest.open(third) == Reoffered(3, HOST_SDP)
    assert isinstance(guest.open(first), Dropped)
    assert isinstance(guest.open(third), Dropped)  # the same box again
    assert guest.generation == 3


def test_the_host_takes_only_the_answer_to_its_current_generation_once() -> None:
    host, guest = pair()
    guest.open(wire(host.reoffer(1, HOST_SDP)))
    old_answer = wire(guest.reanswer(GUEST_SDP))
    guest.open(wire(host.reoffer(2, HOST_SDP)))
    assert isinstance(host.open(old_answer), Dropped)
    answer = wire(guest.reanswer(GUEST_SDP))
    assert host.open(answer) == Reanswered(2, GUEST_SDP)
    assert isinstance(host.open(answer), Dropped)


def test_boxes_of_the_first_handshake_another_session_or_a_reflection_do_not_count() -> None:
    host, guest = pair()
    host_keys, _ = keys()
    first_handshake = relay.Sealed(
        seal(
            host._keys.signal_send,
            signal.Offer(HOST_SDP).encode().encode(),
            f"chatorbit/signal/{TOKEN}".encode(),
        )
    )
    stranger = Resignal(Seat.HOST, host_keys, TOKEN).reoffer(1, HOST_SDP)
    for box in (first_handshake, stranger, relay.Sealed("bm90IGEgYm94")):
        assert isinstance(guest.open(box), Dropped)
        assert isinstance(host.open(box), Dropped)
    assert isinstance(host.open(host.reoffer(1, HOST_SDP)), Dropped)  # its own, reflected
    assert guest.generation == 0 and guest.remote_sdp is None


def test_a_malformed_body_and_a_wrong_direction_are_dropped() -> None:
    host, guest = pair()
    aad = f"chatorbit/signal/{TOKEN}/reconnect".encode()
    garbage = relay.Sealed(seal(host._keys.signal_send, b'{"kind": "reoffer"}', aad))
    assert guest.open(garbage) == Dropped("the sealed body is malformed")
    answer_from_host = relay.Sealed(
        seal(host._keys.signal_send, signal.Reanswer(1, HOST_SDP).encode().encode(), aad)
    )
    assert isinstance(guest.open(answer_from_host), Dropped)


def test_only_the_host_offers_and_only_the_guest_answers() -> None:
    host, guest = pair()
    with pytest.raises(ValueError):
        guest.reoffer(1, GUEST_SDP)
    with pytest.raises(ValueError):
        guest.reanswer(GUEST_SDP)  # no reoffer taken yet
    with pytest.raises(ValueError):
        host.reanswer(HOST_SDP)
    host.reoffer(2, HOST_SDP)
    with pytest.raises(ValueError):
        host.reoffer(2, HOST_SDP)


def test_the_guest_asks_to_rejoin_with_the_newest_generation_it_saw() -> None:
    host, guest = pair()
    assert host.open(wire(guest.rejoin())) == RejoinAsked(0)
    guest.open(wire(host.reoffer(1, HOST_SDP)))
    host.reoffer(2, HOST_SDP)  # lost on the way
    assert host.open(wire(guest.rejoin())) == RejoinAsked(1)
    ahead = Resignal(Seat.GUEST, guest._keys, TOKEN)
    ahead.generation = 9  # a rejoin from the future: not this host's
    assert isinstance(host.open(wire(ahead.rejoin())), Dropped)
    assert isinstance(guest.open(wire(guest.rejoin())), Dropped)  # reflected
    with pytest.raises(ValueError):
        host.rejoin()
