"""The durable stream: recorded outputs of the machine, and a property test that any
sequence of sends, deliveries, lost connections and reconnects delivers every frame
exactly once and in order."""

from __future__ import annotations

from collections import deque

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orbitcore.protocol import peer as wire
from orbitcore.protocol.frames import Frame, ProtocolError
from orbitd.durable import DurableStream, StreamFull


def chat(n: int) -> wire.Ack:
    return wire.Ack(f"m{n}")


def test_frames_carry_sequence_numbers_and_the_cumulative_ack() -> None:
    alice, bob = DurableStream(), DurableStream()
    first = alice.send(chat(1))
    assert first == wire.Seq(1, 0, {"type": "ack", "message_id": "m1"})
    got = bob.handle_seq(first)
    assert got.frame == chat(1) and got.ack == wire.SeqAck(1)
    reply = bob.send(chat(2))
    assert reply == wire.Seq(1, 1, {"type": "ack", "message_id": "m2"})
    assert alice.handle_seq(reply).frame == chat(2)  # its ack retired alice's frame 1
    assert alice.unacked() == []
    assert bob.unacked() == [chat(2)]
    assert bob.handle_seq_ack(wire.SeqAck(1)) == [chat(2)]


def test_a_new_connection_resends_what_is_unacknowledged_and_duplicates_are_dropped() -> None:
    alice, bob = DurableStream(), DurableStream()
    first = alice.send(chat(1))
    alice.send(chat(2))
    alice.send(chat(3))
    assert first is not None
    assert bob.handle_seq(first).frame == chat(1)  # 2 and 3 die with the connection
    alice.disconnected()
    bob.disconnected()
    assert alice.send(chat(4)) is None  # queued while down
    resend = alice.connected()
    assert resend == [
        wire.SeqAck(0),
        wire.Seq(1, 0, chat(1).to_dict()),
        wire.Seq(2, 0, chat(2).to_dict()),
        wire.Seq(3, 0, chat(3).to_dict()),
        wire.Seq(4, 0, chat(4).to_dict()),
    ]
    taken = [bob.handle_seq(s) for s in resend[1:] if isinstance(s, wire.Seq)]
    assert [r.frame for r in taken] == [None, chat(2), chat(3), chat(4)]
    assert [r.ack.ack for r in taken] == [1, 2, 3, 4]


def test_the_queue_is_bounded_with_a_clear_error() -> None:
    stream = DurableStream(limit_frames=2)
    stream.send(chat(1))
    stream.send(chat(2))
    with pytest.raises(StreamFull, match="2 frames are waiting"):
        stream.send(chat(3))
    stream.handle_seq_ack(wire.SeqAck(1))
    assert stream.send(chat(3)) is not None
    by_bytes = DurableStream(limit_bytes=60)
    by_bytes.send(chat(1))
    with pytest.raises(StreamFull):
        by_bytes.send(chat(2))


@pytest.mark.parametrize(
    ("envelope", "says"),
    [
        (wire.Seq(2, 0, chat(1).to_dict()), "skips ahead"),
        (wire.Seq(0, 0, chat(1).to_dict()), "counts from 1"),
        (wire.Seq(1, -1, chat(1).to_dict()), "counts from 1"),
        (wire.Seq(1, 5, chat(1).to_dict()), "never sent"),
    ],
)
def test_a_hostile_envelope_is_refused(envelope: wire.Seq, says: str) -> None:
    with pytest.raises(ProtocolError, match=says):
        DurableStream().handle_seq(envelope)


def test_a_bad_inner_frame_is_taken_and_acknowledged_but_refused() -> None:
    stream = DurableStream()
    for seq, inner in enumerate(({"type": "rtc-negotiate"}, {"type": "ack"}, {"type": "nope"}), 1):
        got = stream.handle_seq(wire.Seq(seq, 0, inner))
        assert got.frame is None and got.refused is not None
    assert got.ack == wire.SeqAck(3)  # never asked for again


def test_only_durable_frames_are_queued() -> None:
    with pytest.raises(TypeError):
        DurableStream().send(wire.RtcNegotiate())


Step = tuple[str, int]
STEPS = st.lists(
    st.tuples(st.sampled_from(["send", "deliver", "drop", "reconnect"]), st.integers(0, 1)),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(STEPS)
def test_exactly_once_in_order_across_any_reconnects(steps: list[Step]) -> None:
    streams = (DurableStream(), DurableStream())
    wires: tuple[deque[Frame], deque[Frame]] = (deque(), deque())  # side i's frames in flight
    sent: tuple[list[Frame], list[Frame]] = ([], [])
    got: tuple[list[Frame], list[Frame]] = ([], [])
    up = True

    def deliver(side: int) -> None:
        other = 1 - side
        frame = wires[side].popleft()
        if isinstance(frame, wire.Seq):
            received = streams[other].handle_seq(frame)
            if received.frame is not None:
                got[other].append(received.frame)
            wires[other].append(received.ack)
        else:
            assert isinstance(frame, wire.SeqAck)
            streams[other].handle_seq_ack(frame)

    def reconnect() -> None:
        for side in (0, 1):
            wires[side].extend(streams[side].connected())

    for action, side in steps:
        if action == "send":
            frame = chat(len(sent[side]) + 1000 * side)
            sent[side].append(frame)
            envelope = streams[side].send(frame)
            if envelope is not None:
                wires[side].append(envelope)
        elif action == "deliver" and up and wires[side]:
            deliver(side)
        elif action == "drop" and up:
            up = False
            for side_ in (0, 1):
                wires[side_].clear()
                streams[side_].disconnected()
        elif action == "reconnect" and not up:
            up = True
            reconnect()
    if not up:
        reconnect()
    while wires[0] or wires[1]:
        deliver(0 if wires[0] else 1)
    assert got[1] == sent[0]
    assert got[0] == sent[1]
    assert streams[0].unacked() == [] and streams[1].unacked() == []
