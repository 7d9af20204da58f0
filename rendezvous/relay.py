"""The signaling relay: the two sockets of each session, and what waits for them.

A client's frame is read by the protocol's relay channel (`read_client_frame`): one
it refuses is answered with an `error` frame. The relay reads a frame's envelope, never a
sealed box: relayed frames are forwarded as the exact text received; a message for a
peer that is not connected yet is held (bounded) and delivered when it connects.
"""

from __future__ import annotations

import contextlib
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any, Protocol

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
REPLACED = b"Replaced by a newer connection"

PROBLEMS = {
    "peer_queue_full": "The peer is not connected and too much is waiting for it.",
    "relay_unavailable": "The relay cannot reach its shared state; this one was not relayed.",
}
"""The `error` frame's message for each code `forward` may return."""


def other(role: Role) -> Role:
    return Role.GUEST if role is Role.HOST else Role.HOST


@dataclass(slots=True)  # one or two per open socket
class Held:
    messages: deque[str] = field(default_factory=deque)
    size: int = 0


@dataclass(slots=True)  # one or two per open socket
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


class RelayUnavailable(Exception):
    """The shared state did not answer a step a socket cannot go without (its seat)."""


class SeatRelay(Protocol):
    """What the service and the socket handler need from a relay: the in-memory one
    below (one instance) or `relay_redis.RedisRelay` (several instances sharing Redis)."""

    relayed: int

    @property
    def open_sockets(self) -> int: ...

    def local_sockets(self, token: str) -> list[web.WebSocketResponse]:
        """The session's sockets on this instance."""
        ...

    async def connected_roles(self, token: str) -> frozenset[Role]: ...

    async def attach(self, token: str, role: Role, ws: web.WebSocketResponse) -> None:
        """Give `ws` the seat (closing the socket it replaces with 4002, wherever it is);
        what arrives for the seat waits until `deliver_held`."""
        ...

    async def deliver_held(self, token: str, role: Role, ws: web.WebSocketResponse) -> None:
        """Send what was held for the seat, in order, then let relayed messages through."""
        ...

    async def detach(self, token: str, role: Role, ws: web.WebSocketResponse) -> bool:
        """Free the seat if `ws` still holds it; return whether it did."""
        ...

    async def forward(self, token: str, sender: Role, text: str) -> str | None:
        """Send `text` to the sender's peer, or hold it; return an error code if neither."""
        ...

    async def push(self, token: str, frame: str) -> None:
        """Send `frame` (a status) to every socket of the session, wherever it is."""
        ...

    async def end(self, token: str, frame: str) -> None:
        """Send `frame` (session-ended) to every socket of the session, close them with
        1000 and forget what was held."""
        ...

    async def close_all(self, code: int, message: bytes) -> None:
        """Shutting down: free this instance's seats and close its sockets."""
        ...


async def tell_and_close(ws: web.WebSocketResponse, frame: str) -> None:
    """A session's end on one socket: the frame, then close 1000."""
    if not ws.closed:
        with contextlib.suppress(ConnectionError):
            await ws.send_str(frame)
        await ws.close(code=WSCloseCode.OK, message=b"session ended")


class Relay:
    """The relay of one instance, all in memory (no `redis_url`)."""

    def __init__(self, *, held_messages_max: int, held_bytes_max: int) -> None:
        self.held_messages_max = held_messages_max
        self.held_bytes_max = held_bytes_max
        self._rooms: dict[str, Room] = {}
        self.relayed = 0

    @property
    def open_sockets(self) -> int:
        return sum(len(room.sockets) for room in self._rooms.values())

    def local_sockets(self, token: str) -> list[web.WebSocketResponse]:
        room = self._rooms.get(token)
        return list(room.sockets.values()) if room else []

    async def connected_roles(self, token: str) -> frozenset[Role]:
        room = self._rooms.get(token)
        return frozenset(room.sockets) if room else frozenset()

    async def attach(self, token: str, role: Role, ws: web.WebSocketResponse) -> None:
        room = self._rooms.setdefault(token, Room())
        previous = room.sockets.get(role)
        room.sockets[role] = ws
        if previous is not None and not previous.closed:
            await previous.close(code=CLOSE_REPLACED, message=REPLACED)

    async def deliver_held(self, token: str, role: Role, ws: web.WebSocketResponse) -> None:
        room = self._rooms.get(token)
        if room is None:
            return
        held = room.held[role]
        while held.messages:
            text = held.messages.popleft()
            held.size -= len(text.encode())
            await ws.send_str(text)

    async def detach(self, token: str, role: Role, ws: web.WebSocketResponse) -> bool:
        room = self._rooms.get(token)
        if room is None or room.sockets.get(role) is not ws:
            return False
        del room.sockets[role]
        if not room.sockets and not any(h.messages for h in room.held.values()):
            del self._rooms[token]
        return True

    async def forward(self, token: str, sender: Role, text: str) -> str | None:
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

    async def push(self, token: str, frame: str) -> None:
        for ws in self.local_sockets(token):
            if not ws.closed:
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(frame)

    async def end(self, token: str, frame: str) -> None:
        room = self._rooms.pop(token, None)
        for ws in list(room.sockets.values()) if room else []:
            await tell_and_close(ws, frame)

    async def close_all(self, code: int, message: bytes) -> None:
        for token in list(self._rooms):
            room = self._rooms.pop(token)
            for ws in room.sockets.values():
                await ws.close(code=code, message=message)


GOING_AWAY = WSCloseCode.GOING_AWAY
