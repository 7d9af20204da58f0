"""The protocol version and features in the sealed handshake, as the pure state machine
records them: agreement, a major that differs, a confirm from before versioning."""

from __future__ import annotations

import json

import pytest

from orbitcore.protocol import relay, signal, version
from orbitd.crypto import Invite, Seat, new_secret, open_box, seal
from orbitd.handshake import (
    ANNOUNCE_FEATURES_ENV,
    ANNOUNCE_VERSION_ENV,
    Announcement,
    Failed,
    Handshake,
    MakeAnswer,
    Output,
    SendRelay,
    announced,
)
from tests.handshake_outputs import describe

TOKEN = "ABCD1234WXYZ"
AAD = b"chatorbit/signal/" + TOKEN.encode()


def relayed(to: Handshake, outputs: list[Output]) -> list[Output]:
    got: list[Output] = []
    for out in outputs:
        if isinstance(out, SendRelay):
            got += to.handle(relay.CHANNEL.parse(out.frame.encode()))
    return got


summary = describe


def exchange(
    host_says: Announcement, guest_says: Announcement
) -> tuple[Handshake, Handshake, list[Output], list[Output]]:
    """Both PAKE messages, then each side reads the other's sealed confirm."""
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret), host_says)
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret), guest_says)
    guest_sent = relayed(guest, host.start())
    host_sent = relayed(host, guest.start())
    return host, guest, relayed(host, guest_sent), relayed(guest, host_sent)


def test_the_confirm_announces_version_features_and_software() -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    (sealed,) = [o for o in relayed(guest, host.start()) if isinstance(o, SendRelay)]
    assert guest.keys is not None and isinstance(sealed.frame, relay.Sealed)
    body = json.loads(open_box(guest.keys.signal_send, sealed.frame.box, AAD))
    assert body == {
        "kind": "confirm",
        "seat": "guest",
        "protocol": version.PROTOCOL_VERSION,
        "features": list(version.FEATURES),
        "software": body["software"],
    }
    assert body["software"].startswith("orbitd ")


def test_same_major_agrees_on_the_features_both_announce() -> None:
    # A newer daemon: a feature this one does not know (and none of this one's newer ones).
    newer = Announcement("1.9", ("chat", "calls", "holograms"), "orbitd 9.0")
    host, guest, host_got, guest_got = exchange(Announcement(), newer)
    assert host_got == guest_got == []  # nothing to do: the handshake goes on
    assert host.agreement == version.Agreement("1.9", "orbitd 9.0", frozenset({"chat", "calls"}))
    assert guest.agreement is not None
    assert guest.agreement.peer_version == version.PROTOCOL_VERSION
    assert guest.agreement.features == {"chat", "calls"}
    without_calls = Announcement(features=("chat",))
    host, guest, _, _ = exchange(Announcement(), without_calls)
    assert host.agreement is not None and host.agreement.features == {"chat"}
    assert guest.agreement is not None and guest.agreement.features == {"chat"}


def test_another_major_fails_on_both_sides_each_by_itself() -> None:
    host, guest, host_got, guest_got = exchange(
        Announcement(), Announcement("2.0", ("chat",), "orbitd 3.0")
    )
    # Neither sends an abort: each reads the other's confirm and fails the same way.
    assert summary(host_got) == ["phase failed", "failed version_mismatch"]
    assert summary(guest_got) == ["phase failed", "failed version_mismatch"]
    host_failed, guest_failed = host_got[-1], guest_got[-1]
    assert isinstance(host_failed, Failed) and isinstance(guest_failed, Failed)
    assert "orbitd 3.0, protocol 2.0" in host_failed.reason
    assert "Update orbitd on this computer" in host_failed.reason
    assert f"protocol {version.PROTOCOL_VERSION})" in guest_failed.reason
    assert "Ask the other person to update" in guest_failed.reason
    assert host.agreement is None and host.incompatible is not None
    ours = version.PROTOCOL_VERSION
    assert (host.incompatible.peer_version, host.incompatible.local_version) == ("2.0", ours)
    assert guest.incompatible is not None and guest.incompatible.peer_version == ours


def test_a_confirm_from_before_versioning_is_protocol_1_0_with_chat_and_calls() -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    relayed(guest, host.start())
    relayed(host, guest.start())
    assert guest.keys is not None
    legacy = seal(guest.keys.signal_send, b'{"kind": "confirm", "seat": "guest"}', AAD)
    assert host.handle(relay.Sealed(legacy)) == []
    assert host.agreement == version.Agreement(
        version.LEGACY_VERSION, None, frozenset(version.LEGACY_FEATURES)
    )
    # ... and its offer/answer bodies are the same as ever.
    answer = seal(guest.keys.signal_send, b'{"kind": "answer", "sdp": "v=0"}', AAD)
    host.local_description("v=0\r\n")
    assert summary(host.handle(relay.Sealed(answer))) == ["phase connecting", "UseAnswer"]


@pytest.mark.parametrize(
    "body",
    [
        {"kind": "confirm", "seat": "guest", "protocol": "one"},
        {"kind": "confirm", "seat": "guest", "protocol": "1.1", "features": "chat"},
        {"kind": "confirm", "seat": "guest", "protocol": "1.1", "features": ["Chat!"]},
        {"kind": "confirm", "seat": "guest", "features": ["f"] * 65},
        {"kind": "confirm", "seat": "nobody"},
        {"kind": "offer"},
        {"kind": "wave"},
        {"type": "confirm", "seat": "guest"},
        ["confirm"],
    ],
)
def test_a_malformed_sealed_body_fails_with_protocol_error(body: object) -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    relayed(guest, host.start())
    relayed(host, guest.start())
    assert guest.keys is not None
    box = seal(guest.keys.signal_send, json.dumps(body).encode(), AAD)
    got = host.handle(relay.Sealed(box))
    assert summary(got) == ["send abort", "phase failed", "failed protocol_error"]


def test_an_offer_before_the_confirm_is_refused() -> None:
    secret = new_secret()
    host = Handshake(Seat.HOST, Invite(TOKEN, secret))
    guest = Handshake(Seat.GUEST, Invite(TOKEN, secret))
    relayed(host, guest.start())
    relayed(guest, host.start())
    assert host.keys is not None
    early = seal(host.keys.signal_send, signal.Offer("v=0").encode().encode(), AAD)
    got = guest.handle(relay.Sealed(early))
    assert summary(got) == ["send abort", "phase failed", "failed protocol_error"]
    assert not any(isinstance(o, MakeAnswer) for o in got)


def test_the_test_hooks_change_what_a_daemon_announces(monkeypatch: pytest.MonkeyPatch) -> None:
    assert announced() == Announcement()
    monkeypatch.setenv(ANNOUNCE_VERSION_ENV, "1.9")
    monkeypatch.setenv(ANNOUNCE_FEATURES_ENV, "chat,calls,files")
    assert announced() == Announcement("1.9", ("chat", "calls", "files"))
    monkeypatch.setenv(ANNOUNCE_VERSION_ENV, "two")
    with pytest.raises(ValueError):
        announced()
