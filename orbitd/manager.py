"""The daemon's one session at a time, and the UI's event sockets.

The heavy parts (aiortc) are imported when the first session starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import json
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiohttp import WSCloseCode, WSMsgType, web

from .chat import ChatError
from .crypto import Invite, Seat, new_secret, parse_invite
from .ice_servers import IceServers, from_join
from .rendezvous_client import RendezvousClient
from .settings import Config

if TYPE_CHECKING:
    from .session import ChatSession, SignalingChannel

log = logging.getLogger("orbitd.manager")


class Events:
    """The UI's WebSockets. Each has a bounded queue and a writer, so events keep their
    order and a stuck tab cannot make the daemon hoard memory (it is disconnected)."""

    QUEUE_MAX = 1000

    def __init__(self) -> None:
        self._queues: dict[web.WebSocketResponse, asyncio.Queue[str | None]] = {}

    def emit(self, event: dict[str, Any]) -> None:
        text = json.dumps(event)
        for ws, queue in list(self._queues.items()):
            try:
                queue.put_nowait(text)
            except asyncio.QueueFull:
                log.warning("UI socket too slow: disconnected")
                self._queues.pop(ws, None)
                while not queue.empty():
                    queue.get_nowait()
                queue.put_nowait(None)  # tells the writer to hang up

    async def serve(self, ws: web.WebSocketResponse, first: dict[str, Any]) -> None:
        """Send `first`, then every event, until the socket closes."""
        queue: asyncio.Queue[str | None] = asyncio.Queue(self.QUEUE_MAX)
        queue.put_nowait(json.dumps(first))
        self._queues[ws] = queue

        async def write() -> None:
            while (text := await queue.get()) is not None:
                await ws.send_str(text)
            await ws.close(code=WSCloseCode.POLICY_VIOLATION, message=b"too slow")

        writer = asyncio.create_task(write())
        try:
            async for msg in ws:
                if msg.type is WSMsgType.TEXT and msg.data == "ping":
                    queue.put_nowait(json.dumps({"type": "pong"}))
        finally:
            self._queues.pop(ws, None)
            writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, ConnectionError):
                await writer

    async def close_all(self) -> None:
        for ws in list(self._queues):
            await ws.close(code=WSCloseCode.GOING_AWAY, message=b"orbitd shutting down")
        self._queues.clear()


class SessionManager:
    def __init__(
        self, config: Config, events: Events, relay_only: Callable[[], bool] | None = None
    ) -> None:
        self.config = config
        self.events = events
        # "Hide my address" for the next session: the UI's switch, else the setting.
        self.relay_only = relay_only or (lambda: config.ice_relay_only)
        self.client = RendezvousClient(config.rendezvous, config.rendezvous_ca_file)
        self.session: ChatSession | None = None
        self._opening = False

    @property
    def busy(self) -> bool:
        """A session is running (or being opened)."""
        return self._opening or (self.session is not None and self.session.ended is None)

    def _busy(self) -> None:
        if self.busy:
            raise ChatError(
                409, "session_in_progress", "A session is already running: end it first."
            )

    async def _open(
        self,
        invite: Invite,
        seat: Seat,
        identity: str,
        status: dict[str, Any],
        channel: SignalingChannel | None = None,
        lan_peer: dict[str, str] | None = None,
        rendezvous_ice: IceServers | None = None,
    ) -> ChatSession:
        self._busy()
        self._opening = True
        try:
            # aiortc is loaded with the first session, not at start; in a thread, so that
            # the ~150 ms import does not stall the event loop (and the other requests).
            module = await asyncio.to_thread(importlib.import_module, "orbitd.session")
            signaling: SignalingChannel = self.client if channel is None else channel
            session: ChatSession = module.ChatSession(
                self.config,
                signaling,
                invite,
                seat,
                identity,
                status,
                self.events.emit,
                lan_peer=lan_peer,
                rendezvous_ice=rendezvous_ice,
                relay_only=self.relay_only(),
            )
            self.session = session
        finally:
            self._opening = False
        await session.start()
        return session

    async def open_lan(
        self,
        invite: Invite,
        seat: Seat,
        status: dict[str, Any],
        link: SignalingChannel,
        peer: dict[str, str],
    ) -> ChatSession:
        """A LAN session with `peer` ({"name", "fingerprint"}): signaling over `link`,
        straight to the other daemon; `status` made here (there is no rendezvous)."""
        return await self._open(invite, seat, seat.value, status, link, peer)

    async def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self._busy()
        issued = await self.client.issue(
            body.get("validity_option", "day"),
            body.get("ttl_minutes", 60),
            body.get("max_message_length", 2000),
        )
        invite = Invite(issued["token"], new_secret())
        identity = secrets.token_urlsafe(24)
        joined = await self.client.join(invite.token, identity)
        ice = from_join(joined, time.monotonic())
        session = await self._open(
            invite, Seat.HOST, identity, joined["session_status"], rendezvous_ice=ice
        )
        return issued | {"invite": str(invite), "role": "host", "session": session.snapshot()}

    async def join(self, text: object) -> dict[str, Any]:
        self._busy()
        invite = parse_invite(text)
        identity = secrets.token_urlsafe(24)
        joined = await self.client.join(invite.token, identity)
        seat = Seat(joined["role"])
        if seat is Seat.HOST:
            # We took an unused token's host seat: nobody made this invite here. Give it back.
            await self.client.end(invite.token, identity)
            raise ChatError(
                409, "invite_unused", "Nobody is waiting on this invite: ask for a fresh one."
            )
        ice = from_join(joined, time.monotonic())
        session = await self._open(
            invite, seat, identity, joined["session_status"], rendezvous_ice=ice
        )
        return {"role": seat.value, "session": session.snapshot()}

    def current(self) -> ChatSession:
        if self.session is None:
            raise ChatError(409, "no_session", "There is no session.")
        return self.session

    async def end(self) -> dict[str, Any]:
        session = self.current()
        if session.ended is not None:
            raise ChatError(409, "session_ended", "The session has already ended.")
        await session.end("manually_ended", tell_peer=True, tell_rendezvous=True)
        return session.snapshot()

    async def report(self, body: dict[str, Any]) -> dict[str, Any]:
        session = self.current()
        if session.lan_peer is not None:
            raise ChatError(
                409, "lan_session", "A LAN session has no server: there is nobody to report to."
            )
        report = {
            k: body.get(k) for k in ("reason", "details", "contact") if body.get(k) is not None
        }
        return await self.client.report({"token": session.token} | report)

    def state(self) -> dict[str, Any]:
        return {"session": self.session.snapshot() if self.session else None}

    async def close(self) -> None:
        if self.session is not None:  # also waits for an end already under way
            await self.session.end("manually_ended", tell_peer=True, tell_rendezvous=True)
        self.session = None
        await self.client.close()
