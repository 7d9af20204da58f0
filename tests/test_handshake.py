"""The daemon-to-daemon handshake as a pure state machine: record what it asks for."""

from __future__ import annotations

from dataclasses import replace

import pytest

from orbitcore.protocol import relay
from orbitd.crypto import (
    NONCE_BYTES,
    Invite,
    InviteError,
    Seat,
    new_secret,
    open_box,
    parse_invite,
    seal,
    unb64,
)
from orbitd.handshake import (
    Handshake,
    MakeAnswer,
    Output,
    Phase,
    PhaseChanged,
    SendRelay,
    UseAnswer,
    Verified,
)
from tests.handshake_outputs import describe

TOKEN = "ABCD1234WXYZ"
HOST_SDP = "v=0\r\na=fingerprint:sha-256 AA:AA:AA\r\n"
GUEST_SDP = "v=0\r\na=fingerprint:sha-256 BB:BB:BB\r\n"


kinds = describe


def frames(outputs: list[Output]) -> list[relay.Pake | relay.Sealed | relay.Abort]:
    return [o.frame for o in outputs if isinstance(o, SendRelay)]


def deliver(to: Handshake, outputs: list[Output]) -> list[Output]:
    got: list[Output] = []
    for frame in frames(outputs):
        got += to.handle(relay.CHANNEL.parse(frame.encode()))  # as it would cross the wire
    return got


def run_to_connecting(
    host_secret: str, guest_secret: str
) -> tuple[Handshake, Handshake, list[list[str]]]:
    host = Handshake(Seat.HOST, Invite(TOKEN, host_secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, guest_secret))
    trace = []
    h0, g0 = host.start(), guest.start()
    trace += [kinds(h0), kinds(g0)]
    g1 = deliver(guest, h0)  # guest gets the host's pake (held by the relay)
    h1 = deliver(host, g0)
    trace += [kinds(g1), kinds(h1)]
    # Each reads the other's sealed confirm: the versions agree, nothing to do yet.
    assert deliver(host, g1) == [] and deliver(guest, h1) == []
    return host, guest, trace


def test_same_secret_reaches_ready_with_equal_sas() -> None:
    secret = new_secret()
    host, guest, trace = run_to_connecting(secret, secret)
    assert trace == [
        ["send pake"],
        ["send pake"],
        ["phase exchanging-keys", "send sealed"],
        ["phase exchanging-keys", "send sealed", "MakeOffer"],
    ]
    offer = host.local_description(HOST_SDP)
    assert kinds(offer) == ["send sealed"]
    assert all(HOST_SDP not in f.encode() for f in frames(offer))  # the relay sees ciphertext
    g2 = deliver(guest, offer)
    assert g2 == [PhaseChanged(Phase.CONNECTING), MakeAnswer(HOST_SDP)]
    answer = guest.local_description(GUEST_SDP)
    h2 = deliver(host, answer)
    assert h2 == [PhaseChanged(Phase.CONNECTING), UseAnswer(GUEST_SDP)]

    h3, g3 = host.connected("bb:bb:bb"), guest.connected("AA:AA:AA")
    assert kinds(h3) == ["phase ready", "Verified"] and kinds(g3) == ["phase ready", "Verified"]
    host_v, guest_v = h3[-1], g3[-1]
    assert isinstance(host_v, Verified) and isinstance(guest_v, Verified)
    assert host_v.sas == guest_v.sas
    assert host_v.keys.chat_send == guest_v.keys.chat_recv
    assert host_v.keys.chat_recv == guest_v.keys.chat_send
    assert host_v.keys.chat_send != host_v.keys.chat_recv


def test_wrong_secret_fails_on_both_sides_as_invite_mismatch() -> None:
    host = Handshake(Seat.HOST, Invite(TOKEN, new_secret()))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, new_secret()))  # well-formed, but another
    guest_confirm = deliver(guest, host.start())
    deliver(host, guest.start())
    # Both derived keys, different ones: the guest's real sealed confirm, a box of full
    # length, does not open under the host's key.
    (box,) = frames(guest_confirm)
    assert isinstance(box, relay.Sealed)
    assert len(unb64(box.box)) > NONCE_BYTES + 16
    host_out = deliver(host, guest_confirm)
    assert kinds(host_out) == ["send abort", "phase failed", "failed invite_mismatch"]
    # Its abort is unsealed (no shared key): anyone could have made it up, so it is never
    # read as tampering; the guest learns of the mismatch from the host's confirm, which
    # the relay passes on before the abort.
    assert kinds(deliver(guest, host_out)) == ["phase failed", "failed peer_aborted"]
    assert host.handle(relay.Pake("AAAA")) == []  # failed stays failed


def test_wrong_secret_detected_from_the_confirm_itself() -> None:
    host = Handshake(Seat.HOST, Invite(TOKEN, new_secret()))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, new_secret()))
    g_after = deliver(guest, host.start())
    h_after = deliver(host, guest.start())
    # Each side now receives the other's sealed confirm: neither opens.
    g_result = deliver(guest, [o for o in h_after if isinstance(o, SendRelay)])
    h_result = deliver(host, [o for o in g_after if isinstance(o, SendRelay)])
    assert "failed invite_mismatch" in kinds(g_result)
    assert "failed invite_mismatch" in kinds(h_result)
    assert not any(isinstance(o, MakeAnswer) for o in g_result)


def test_a_relay_that_changes_the_sealed_sdp_is_caught() -> None:
    secret = new_secret()
    host, guest, _ = run_to_connecting(secret, secret)
    offer = frames(host.local_description(HOST_SDP))[0]
    assert host.keys is not None
    # The relay cannot reseal without the key; flipping one byte breaks the box.
    assert isinstance(offer, relay.Sealed)
    box = bytearray(offer.box.encode())
    box[20] = ord("A") if box[20] != ord("A") else ord("B")
    # The confirms proved both have the keys: a box that does not open is the relay's
    # doing, dropped without effect; the real one still goes through.
    assert guest.handle(replace(offer, box=box.decode())) == []
    assert kinds(guest.handle(offer)) == ["phase connecting", "MakeAnswer"]


def test_a_box_that_does_not_open_before_the_confirm_is_a_mismatch() -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    (confirm,) = frames(deliver(guest, host.start()))
    deliver(host, guest.start())
    assert isinstance(confirm, relay.Sealed)
    box = bytearray(confirm.box.encode())
    box[20] = ord("A") if box[20] != ord("A") else ord("B")
    out = host.handle(relay.Sealed(box.decode()))
    assert kinds(out) == ["send abort", "phase failed", "failed invite_mismatch"]


def test_a_reflected_box_is_refused() -> None:
    secret = new_secret()
    host, _guest, _ = run_to_connecting(secret, secret)
    assert host.keys is not None
    # A box the host sealed itself, replayed back to it, is under the other direction's key.
    own = seal(
        host.keys.signal_send,
        b'{"kind": "confirm", "seat": "host"}',
        b"chatorbit/signal/" + TOKEN.encode(),
    )
    assert host.handle(relay.Sealed(own)) == []  # after the confirms: dropped
    with pytest.raises(ValueError):
        open_box(host.keys.signal_recv, own, b"chatorbit/signal/" + TOKEN.encode())


def test_a_presented_certificate_that_differs_from_the_sealed_sdp_is_refused() -> None:
    secret = new_secret()
    host, guest, _ = run_to_connecting(secret, secret)
    deliver(guest, host.local_description(HOST_SDP))
    guest.local_description(GUEST_SDP)
    out = guest.connected("CC:CC:CC")  # someone else's DTLS certificate
    assert kinds(out) == ["phase failed", "failed fingerprint_mismatch"]


def test_duplicate_pake_is_ignored_but_a_different_one_fails() -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    first = guest.start()
    assert kinds(deliver(host, first)) == ["phase exchanging-keys", "send sealed", "MakeOffer"]
    assert deliver(host, first) == []
    other = Handshake(Seat.GUEST, Invite(TOKEN, secret)).start()
    assert kinds(deliver(host, other)) == ["send abort", "phase failed", "failed invite_mismatch"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("ABCD1234WXYZ-abcdefghijkmnpqr", Invite("ABCD1234WXYZ", "abcdefghijkmnpqr")),
        ("  abcd1234wxyz-ABCDEFGHIJKMNPQR \n", Invite("ABCD1234WXYZ", "abcdefghijkmnpqr")),
        (
            "http://127.0.0.1:7170/join#ABCD1234WXYZ-abcdefghijkmnpqr",
            Invite("ABCD1234WXYZ", "abcdefghijkmnpqr"),
        ),
    ],
)
def test_invites_are_read_leniently(text: str, expected: Invite) -> None:
    assert parse_invite(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "",
        "ABCD1234WXYZ",
        "ABCD1234WXY-abcdefghijkmnpqr",
        "ABCD1234WXYZ-abc",
        "ABCD1234WXYZ-abcdefghijklmnop",
        5,
    ],
)
def test_malformed_invites_say_what_is_wrong(text: object) -> None:
    with pytest.raises(InviteError) as refused:
        parse_invite(text)
    assert str(refused.value)
