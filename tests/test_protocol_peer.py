"""The `peer` and `signal` channels' own rules, beside the generic round trips of
tests/test_protocol_docs.py: refusals answered by `error`, the families the session
routes by, the sealed bodies' `kind`."""

from __future__ import annotations

import json

import pytest

from orbitcore.protocol import peer, signal
from orbitcore.protocol.frames import ProtocolError


def refused(text: str) -> ProtocolError:
    with pytest.raises(ProtocolError) as caught:
        peer.CHANNEL.parse(text)
    return caught.value


def test_a_refusal_becomes_an_error_frame_that_names_what_it_answers() -> None:
    error = peer.refusal(refused('{"type": "ack", "message_id": 7}'))
    assert json.loads(error.encode()) == {
        "type": "error",
        "code": "protocol_error",
        "message": "`ack.message_id` must be a string.",
        "in_reply_to": "ack",
    }
    unreadable = peer.refusal(refused("{nope"))
    assert unreadable.in_reply_to is None and "in_reply_to" not in unreadable.to_dict()
    assert peer.CHANNEL.parse(unreadable.encode()) == unreadable
    big = peer.refusal(refused(" " * (peer.CHANNEL.max_bytes + 1)))
    assert big.code == "frame_too_large"


def test_every_peer_frame_is_of_one_family() -> None:
    families = (
        peer.ChatFrame,
        peer.CallFrame,
        peer.FileFrame,
        peer.RtcFrame,
        peer.LinkFrame,
        peer.StreamFrame,
    )
    for kind, cls in peer.CHANNEL.frames.items():
        found = [f for f in families if issubclass(cls, f)]
        assert len(found) == (0 if cls is peer.Error else 1), kind
    assert {t for t, c in peer.CHANNEL.frames.items() if issubclass(c, peer.CallFrame)} == {
        "call-invite",
        "call-accept",
        "call-decline",
        "call-hangup",
        "call-mute",
    }


def test_a_message_larger_than_the_longest_allowed_text_is_refused() -> None:
    body = {
        "type": "message",
        "message_id": "m-1",
        "encrypted": "A" * 90_001,
        "signature": "0" * 64,
        "timestamp": 1,
    }
    assert "at most 90000 characters" in refused(json.dumps(body)).message
    body["encrypted"] = "A" * 90_000  # 16000 characters of 4-byte UTF-8, sealed, in base64
    assert isinstance(peer.CHANNEL.parse(json.dumps(body)), peer.Message)


def test_sealed_bodies_are_named_by_kind_and_a_type_is_not_enough() -> None:
    assert json.loads(signal.Offer("v=0").encode()) == {"kind": "offer", "sdp": "v=0"}
    with pytest.raises(ProtocolError, match="`kind`"):
        signal.CHANNEL.parse('{"type": "offer", "sdp": "v=0"}')
    with pytest.raises(ValueError):
        peer.CHANNEL.register(signal.Offer)  # a `kind` frame on a `type` channel


def test_a_newer_confirm_with_more_members_is_read() -> None:
    body = {
        "kind": "confirm",
        "seat": "host",
        "protocol": "1.9",
        "features": ["chat", "files"],
        "software": "orbitd 9.0",
        "resume": {"token": "later"},
    }
    confirm = signal.CHANNEL.parse(json.dumps(body))
    assert confirm == signal.Confirm("host", "1.9", ("chat", "files"), "orbitd 9.0")
