"""The conversation model with no I/O: envelopes, acks, deletes, limits, bad frames."""

from __future__ import annotations

import dataclasses
import json

import pytest

from orbitcore.protocol.frames import ProtocolError, dispatch
from orbitcore.protocol.peer import CHANNEL, Message, Reject
from orbitd.chat import ChatError, ChatOutput, Conversation, Notify, Send
from orbitd.crypto import Seat, key_schedule, keyed_signature, signature

SHARED = b"k" * 32


def pair(limit: int = 200) -> tuple[Conversation, Conversation]:
    host = Conversation(key_schedule(SHARED, "ABCD1234WXYZ", Seat.HOST), limit)
    guest = Conversation(key_schedule(SHARED, "ABCD1234WXYZ", Seat.GUEST), limit)
    return host, guest


def wire(outputs: list[Send | Notify]) -> list[str]:
    return [o.frame.encode() for o in outputs if isinstance(o, Send)]


def envelope(send: Send) -> Message:
    assert isinstance(send.frame, Message)
    return send.frame


def receive(conversation: Conversation, text: str) -> list[ChatOutput]:
    """A frame as the session hands it over: read from the wire, to its handler."""
    outputs: list[ChatOutput] = dispatch(conversation, CHANNEL.parse(text))
    return outputs


def events(outputs: list[Send | Notify]) -> list[dict[str, object]]:
    return [o.event for o in outputs if isinstance(o, Notify)]


def test_message_ack_and_delete_round_trip() -> None:
    host, guest = pair()
    message, send = host.compose("hello bob", now=1705752000.5)
    body = json.loads(send.frame.encode())
    assert body["type"] == "message"
    assert set(body) == {"type", "message_id", "encrypted", "signature", "timestamp"}
    assert "hello bob" not in send.frame.encode()
    assert body["signature"] == signature("hello bob")
    assert body["timestamp"] == 1705752000

    received = receive(guest, send.frame.encode())
    assert events(received) == [
        {
            "type": "message",
            "message": {
                "message_id": message.message_id,
                "author": "peer",
                "text": "hello bob",
                "timestamp": 1705752000,
                "status": "delivered",
                "deleted": False,
            },
        }
    ]
    [ack] = wire(received)
    assert events(receive(host, ack)) == [
        {"type": "message-status", "message_id": message.message_id, "status": "delivered"}
    ]
    assert host.messages[message.message_id].status.value == "delivered"

    deleting = host.delete(message.message_id)
    assert events(deleting) == [{"type": "message-deleted", "message_id": message.message_id}]
    assert events(receive(guest, wire(deleting)[0])) == [
        {"type": "message-deleted", "message_id": message.message_id}
    ]
    assert guest.listing()[0]["text"] == "" and guest.listing()[0]["deleted"] is True


def test_limits_and_ownership() -> None:
    host, guest = pair(limit=200)
    for text, code in (
        ("x" * 201, "message_too_long"),
        ("   ", "empty_message"),
        (None, "empty_message"),
    ):
        try:
            host.compose(text, now=0)
        except ChatError as exc:
            assert exc.code == code and exc.status == 422
        else:
            raise AssertionError(f"{text!r} was accepted")
    _, send = host.compose("x" * 200, now=0)
    received = receive(guest, send.frame.encode())
    peer_id = envelope(send).message_id
    try:
        guest.delete(peer_id)
    except ChatError as exc:
        assert (exc.status, exc.code) == (403, "not_your_message")
    else:
        raise AssertionError("deleted the peer's message")
    assert events(received)


def test_receiver_enforces_the_limit_and_signature_too() -> None:
    host, guest = pair(limit=300)
    strict_guest = pair(limit=200)[1]
    _, send = host.compose("y" * 250, now=0)
    refused = receive(strict_guest, send.frame.encode())
    assert [json.loads(f) for f in wire(refused)] == [
        {"type": "reject", "message_id": envelope(send).message_id, "code": "message_too_long"}
    ]
    assert events(refused) == []
    failed = receive(host, wire(refused)[0])
    assert events(failed) == [
        {
            "type": "message-status",
            "message_id": envelope(send).message_id,
            "status": "failed",
            "code": "message_too_long",
        }
    ]

    _, forged = host.compose("pay alice", now=0)
    tampered = dataclasses.replace(envelope(forged), signature=signature("pay mallory"))
    assert [o.frame for o in receive(guest, tampered.encode()) if isinstance(o, Send)] == [
        Reject(envelope(forged).message_id, "bad_signature")
    ]
    garbled = dataclasses.replace(
        envelope(forged), encrypted="AAAA" + envelope(forged).encrypted[4:]
    )
    assert json.loads(wire(receive(guest, garbled.encode()))[0])["code"] == "undecryptable"
    assert guest.messages == {}  # neither was taken


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("not json", "not JSON"),
        ('{"type": "ack"}', "needs `message_id`"),
        ('{"type": "whatever", "message_id": "x"}', "Unknown frame type"),
        ('{"type": "message", "message_id": "x", "encrypted": 5}', "must be a string"),
        ('{"type": "ack", "message_id": "a b"}', "well-formed"),
    ],
)
def test_garbage_from_the_peer_never_reaches_the_conversation(text: str, reason: str) -> None:
    with pytest.raises(ProtocolError, match=reason):
        CHANNEL.parse(text)


def test_the_peer_ending_and_a_resend_and_stray_acks() -> None:
    host, guest = pair()
    assert events(receive(guest, '{"type": "end"}')) == [{"type": "peer-ended"}]
    _, send = host.compose("twice", now=0)
    first, again = receive(guest, send.frame.encode()), receive(guest, send.frame.encode())
    assert (
        wire(first)
        == wire(again)
        == [
            json.dumps(
                {"type": "ack", "message_id": envelope(send).message_id}, separators=(",", ":")
            )
        ]
    )
    assert events(again) == []  # shown once
    assert receive(host, '{"type": "ack", "message_id": "nobody"}') == []
    assert receive(host, '{"type": "delete", "message_id": "nobody"}') == []


def test_wipe_forgets_messages_and_keys() -> None:
    host, _ = pair()
    message, _ = host.compose("secret plans", now=0)
    host.wipe()
    assert host.messages == {} and message.text == ""
    try:
        host.compose("more", now=0)
    except ChatError as exc:
        assert exc.code == "session_ended"
    else:
        raise AssertionError("composed after wipe")


def test_a_queued_message_is_sending_then_sent_and_unacknowledged_ones_end_not_delivered() -> None:
    host, guest = pair()
    queued, _ = host.compose("while away", 1.0, queued=True)
    delivered, later = host.compose("after", 2.0)
    assert queued.status == "sending" and delivered.status == "sent"
    assert events(host.went_out([queued.message_id, delivered.message_id])) == [
        {"type": "message-status", "message_id": queued.message_id, "status": "sent"}
    ]
    for frame in wire(receive(guest, later.frame.encode())):
        receive(host, frame)  # the guest's ack of "after"
    assert events(host.undelivered([queued.message_id, delivered.message_id])) == [
        {
            "type": "message-status",
            "message_id": queued.message_id,
            "status": "failed",
            "code": "not_delivered",
        }
    ]
    assert host.undelivered([queued.message_id]) == []  # once


def keyed_pair() -> tuple[Conversation, Conversation]:
    host_keys = key_schedule(SHARED, "ABCD1234WXYZ", Seat.HOST)
    guest_keys = key_schedule(SHARED, "ABCD1234WXYZ", Seat.GUEST)
    return (
        Conversation(host_keys, 200, keyed_signature=True),
        Conversation(guest_keys, 200, keyed_signature=True),
    )


def test_a_keyed_signature_reveals_nothing_of_the_text_and_is_checked() -> None:
    host, guest = keyed_pair()
    message, send = host.compose("yes", now=1.0)
    frame = envelope(send)
    assert frame.signature != signature("yes")  # a guessable text is not confirmed by it
    host_keys = key_schedule(SHARED, "ABCD1234WXYZ", Seat.HOST)
    assert host_keys.mac_send != host_keys.mac_recv  # one key per direction
    assert frame.signature == keyed_signature(host_keys.mac_send, message.message_id, "yes")
    assert events(receive(guest, frame.encode()))[0]["type"] == "message"

    # The seed's unkeyed form, or the right MAC of another message id, is refused.
    _, other = host.compose("yes", now=2.0)
    for forged in (
        dataclasses.replace(envelope(other), signature=signature("yes")),
        dataclasses.replace(envelope(other), signature=frame.signature),
    ):
        assert receive(guest, forged.encode()) == [Send(Reject(forged.message_id, "bad_signature"))]


def test_a_peer_without_keyed_signature_gets_and_sends_the_seed_form() -> None:
    host, _ = keyed_pair()
    _, guest = pair()
    _, send = guest.compose("hi", now=1.0)
    assert envelope(send).signature == signature("hi")
    assert receive(host, send.frame.encode()) == [  # the session never mixes the two forms
        Send(Reject(envelope(send).message_id, "bad_signature"))
    ]
    legacy_host, _ = pair()
    assert events(receive(legacy_host, send.frame.encode()))[0]["type"] == "message"
