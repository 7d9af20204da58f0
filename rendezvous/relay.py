"""The signaling relay: the two sockets of each session, and what waits for them.

The relay reads only a message's `type` and size. Payloads are forwarded as
the exact text received; a message for a peer that is not connected yet is
held (bounded) and delivered when it connects.
"""

from __future__ import annotations

import json
import logging
from collections import deque
from dataclasses import dataclass, field
from typing import Any

from aiohttp import WSCloseCode, web

from .session import Role

log = logging.getLogger("rendezvous.relay")

# Types forwarded to the peer. Chat itself never comes here: it travels on the
# daemons' own data channel. `pake` and `sealed` carry the key exchange and
# the sealed SDP/ICE of the daemons; the webrtc-* types are the seed's.
RELAYED_TYPES = frozenset(
    {"pake", "sealed", "abort", "webrtc-offer", "webrtc-answer", "webrtc-ice-candidate"}
)

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


def error_frame(code: str, message: str, answering: dict[str, Any] | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code, "message": message}
    if answering is not None:
        frame["in_reply_to"] = {k: answering[k] for k in ("type", "id") if k in answering}
    return json.dumps(frame)


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
