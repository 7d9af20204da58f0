"""Frames the peer sends as soon as it has verified the connection can arrive before this
side has (each side verifies on its own): `PeerFrames` keeps them and reads them, in
order, once this side is ready; dropping one left a gap in the durable stream that was
never filled (every later `seq` refused as skipping ahead)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from orbitcore.protocol import peer as wire
from orbitd.durable import DurableStream
from orbitd.session_peer import EARLY_MAX, PeerFrames


class Conversation:
    def __init__(self) -> None:
        self.deleted: list[str] = []

    def handle_delete(self, frame: wire.Delete) -> list[Any]:
        self.deleted.append(frame.message_id)
        return []


def session() -> Any:
    return SimpleNamespace(
        ended=None,
        conversation=None,
        durable=DurableStream(),
        reconnect=None,
        call=None,
        files=None,
        peer=SimpleNamespace(generation=0, send=lambda text: None),
        emit=lambda event: None,
    )


def envelope(seq: int, message_id: str) -> str:
    return wire.Seq(seq, 0, wire.Delete(message_id).to_dict()).encode()


def test_frames_before_this_side_is_ready_are_read_once_it_is() -> None:
    chat = session()
    frames = PeerFrames(chat)
    frames.message(envelope(1, "m-1"))  # the peer was ready first
    chat.conversation = Conversation()
    frames.ready()
    frames.message(envelope(2, "m-2"))
    assert chat.conversation.deleted == ["m-1", "m-2"]  # no gap: seq 2 is taken


def test_only_those_of_the_current_connection_and_only_so_many() -> None:
    chat = session()
    frames = PeerFrames(chat)
    frames.message(envelope(1, "old"))
    chat.peer.generation = 1  # that connection was replaced before the chat was ready
    for n in range(EARLY_MAX + 5):
        frames.message(envelope(n + 1, f"m-{n}"))
    chat.conversation = Conversation()
    frames.ready()
    assert chat.conversation.deleted == [f"m-{n}" for n in range(EARLY_MAX - 1)]
