"""The signaling relay: the two sockets of each session, and what waits for them.

A client's frame is read by the protocol's relay channel (`read_client_frame`): one
it refuses is answered with an `error` frame. The relay reads a frame's envelope, never a
sealed box: relayed frames are forwarded as the exact text received; a message for a
peer that is not connected yet is held (bounded) and delivered when it connects.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from orbitcore.protocol import relay as wire
from orbitcore.protocol.frames import Frame, ProtocolError, read_json

from .session import Role

log = logging.getLogger("rendezvous.relay")

# What a client may send: the frames forwarded to the peer, `ping` and `ice-refresh`. Chat
# itself never comes here: it travels on the daemons' own data channel.
ACCEPTED = frozenset({cls.TYPE for cls in wire.RELAYED} | {wire.Ping.TYPE, wire.IceRefresh.TYPE})

CLOSE_UNAUTHORIZED = 4001
CLOSE_REPLACED = 4002
CLOSE_ENDED = 4003
CLOSE_NOT_FOUND = 4004
CLOSE_RATE_LIMITED = 4029


def other(role: Role) -> Role:
    return Role.GUEST if role is Role.HOST else Role.HOST


@dataclass
class Held:
    messages: deque[str] = field(default_factory=deque)
    size: int = 0


@dataclass
class Room:
    sockets: dict[Role, web.WebSocketResponse] = field(default_factory=dict)
    held: dict[Role, Held] = field(default_factory=lambda: {Role.HOST: Held(), Role.GUEST: Held()})


def refusal(code: str, message: str, answering: wire.InReplyTo | None = None) -> wire.Error:
    """The `error` frame for a refused client frame."""
    return wire.Error(code=code, message=message, in_reply_to=answering)


def answering(body: dict[str, Any]) -> wire.InReplyTo:
    """What an error about `body` echoes: its `type` and `id`, when they are short, valid
    text or a safe integer (an echo must encode)."""
    return wire.InReplyTo(type=_echo(body.get("type")), id=_echo(body.get("id")))


@dataclass(frozen=True)
class Received:
    """A client's frame the rendezvous accepts, and what an error about it echoes."""

    frame: Frame
    answering: wire.InReplyTo


def _echo(value: object) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and abs(value) <= 2**53:
        return value
    if isinstance(value, str) and len(value) <= 64 and _encodes(value):
        return value
    return None


def _encodes(value: str) -> bool:
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return value.isprintable()


def read_client_frame(text: str, max_bytes: int) -> Received | wire.Error:
    """A client's frame (one the rendezvous accepts), or the `error` that refuses it."""
    try:
        body = read_json(text, max_bytes=max_bytes)
    except ProtocolError as exc:
        return refusal("invalid_json", f"Invalid message format: {exc.message}")
    if not isinstance(body, dict) or not isinstance(body.get("type"), str):
        return refusal(
            "invalid_message", "Invalid message format: an object with a 'type' is expected."
        )
    kind = body["type"]
    if kind not in ACCEPTED:
        shown = kind[:40] if _encodes(kind) else "?"
        return refusal(
            "unknown_type", f"Messages of type {shown!r} are not relayed.", answering(body)
        )
    try:
        return Received(wire.CHANNEL.parse(body), answering(body))
    except ProtocolError as exc:
        return refusal("invalid_message", f"Invalid message format: {exc.message}", answering(body))


class Relay:
    def __init__(self, *, held_messages_max: int, held_bytes_max: int) -> None:
        self.held_messages_max = held_messages_max
        self.held_bytes_max = held_bytes_max
        self._rooms: dict[str, Room] = {}
        self.relayed = 0

    @property
    def open_sockets(self) -> int:
        return sum(len(room.sockets) for room in self._rooms.values())

    def connected_roles(self, token: str) -> frozenset[Role]:
        room = self._rooms.get(token)
        return frozenset(room.sockets) if room else frozenset()

    def sockets(self, token: str) -> list[web.WebSocketResponse]:
        room = self._rooms.get(token)
        return list(room.sockets.values()) if room else []

    def attach(
        self, token: str, role: Role, ws: web.WebSocketResponse
    ) -> web.WebSocketResponse | None:
        """Register `ws` for the seat; return the socket it replaces, if any."""
        room = self._rooms.setdefault(token, Room())
        previous = room.sockets.get(role)
        room.sockets[role] = ws
        return previous

    def detach(self, token: str, role: Role, ws: web.WebSocketResponse) -> bool:
        """Unregister `ws` if it still holds the seat; return whether it did."""
        room = self._rooms.get(token)
        if room is None or room.sockets.get(role) is not ws:
            return False
        del room.sockets[role]
        return True

    def take_held(self, token: str, role: Role) -> list[str]:
        room = self._rooms.get(token)
        if room is None:
            return []
        held = room.held[role]
        messages = list(held.messages)
        held.messages.clear()
        held.size = 0
        return messages

    async def forward(self, token: str, sender: Role, text: str) -> str | None:
        """Send `text` to the sender's peer, or hold it. Return an error code if neither."""
        room = self._rooms.setdefault(token, Room())
        target = room.sockets.get(other(sender))
        if target is not None and not target.closed:
            await target.send_str(text)
            self.relayed += 1
            return None
        held = room.held[other(sender)]
        size = len(text.encode())
        if len(held.messages) >= self.held_messages_max or held.size + size > self.held_bytes_max:
            return "peer_queue_full"
        held.messages.append(text)
        held.size += size
        self.relayed += 1
        return None

    def drop(self, token: str) -> list[web.WebSocketResponse]:
        """Forget a session's room and held messages; return its sockets to close."""
        room = self._rooms.pop(token, None)
        return list(room.sockets.values()) if room else []

    def forget_if_empty(self, token: str) -> None:
        room = self._rooms.get(token)
        if (
            room is not None
            and not room.sockets
            and not any(h.messages for h in room.held.values())
        ):
            del self._rooms[token]

    def tokens(self) -> list[str]:
        return list(self._rooms)

    async def close_all(self, code: int, message: bytes) -> None:
        for token in list(self._rooms):
            for ws in self.drop(token):
                await ws.close(code=code, message=message)


GOING_AWAY = WSCloseCode.GOING_AWAY
