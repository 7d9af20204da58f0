"""The conversation model with no I/O: envelopes, acks, deletes, limits, bad frames."""

from __future__ import annotations

import json

from orbitd.chat import ChatError, Conversation, Notify, Send
from orbitd.crypto import Seat, key_schedule, signature

SHARED = b"k" * 32


def pair(limit: int = 200) -> tuple[Conversation, Conversation]:
    host = Conversation(key_schedule(SHARED, "ABCD1234WXYZ", Seat.HOST), limit)
    guest = Conversation(key_schedule(SHARED, "ABCD1234WXYZ", Seat.GUEST), limit)
    return host, guest


def wire(outputs: list[Send | Notify]) -> list[str]:
    return [json.dumps(o.frame) for o in outputs if isinstance(o, Send)]


def events(outputs: list[Send | Notify]) -> list[dict[str, object]]:
    return [o.event for o in outputs if isinstance(o, Notify)]


def test_message_ack_and_delete_round_trip() -> None:
    host, guest = pair()
    message, send = host.compose("hello bob", now=1705752000.5)
    assert send.frame["type"] == "message"
    assert set(send.frame) == {"type", "message_id", "encrypted", "signature", "timestamp"}
    assert "hello bob" not in json.dumps(send.frame)
    assert send.frame["signature"] == signature("hello bob")
    assert send.frame["timestamp"] == 1705752000

    received = guest.handle(json.dumps(send.frame))
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
    assert events(host.handle(ack)) == [
        {"type": "message-status", "message_id": message.message_id, "status": "delivered"}
    ]
    assert host.messages[message.message_id].status.value == "delivered"

    deleting = host.delete(message.message_id)
    assert events(deleting) == [{"type": "message-deleted", "message_id": message.message_id}]
    assert events(guest.handle(wire(deleting)[0])) == [
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
    received = guest.handle(json.dumps(send.frame))
    peer_id = send.frame["message_id"]
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
    refused = strict_guest.handle(json.dumps(send.frame))
    assert [json.loads(f) for f in wire(refused)] == [
        {"type": "reject", "message_id": send.frame["message_id"], "code": "message_too_long"}
    ]
    assert events(refused) == []
    failed = host.handle(wire(refused)[0])
    assert events(failed)[0]["status"] == "failed"

    _, forged = host.compose("pay alice", now=0)
    tampered = dict(forged.frame, signature=signature("pay mallory"))
    assert json.loads(wire(guest.handle(json.dumps(tampered)))[0])["code"] == "bad_signature"
    garbled = dict(forged.frame, encrypted="AAAA" + forged.frame["encrypted"][4:])
    assert json.loads(wire(guest.handle(json.dumps(garbled)))[0])["code"] == "undecryptable"


def test_garbage_from_the_peer_is_reported_not_fatal() -> None:
    _, guest = pair()
    assert events(guest.handle("not json"))[0]["code"] == "bad_peer_frame"
    assert guest.handle(json.dumps({"type": "ack"})) == []
    assert guest.handle(json.dumps({"type": "whatever", "message_id": "x"})) == []
    assert events(guest.handle(json.dumps({"type": "end"}))) == [{"type": "peer-ended"}]


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
