"""One chat session of this daemon: the seat at the rendezvous, the handshake,
the WebRTC connection and the conversation, tied together. I/O lives here and in
three helpers, one per side; the decisions live in `handshake`, `first_connect` and
`chat`.

- `ChatSession` (here): what it owns, what the UI sees (`snapshot`), the user's
  actions, and the end that wipes it all.
- `session_relay.RelayFrames`: the signaling channel's frames, the status checks and
  countdown, the refresh of the rendezvous's ICE servers.
- `session_setup.ChatSetup`: the handshake and first connection carried out, the chat
  set up once the peer is verified, the connection's path watched.
- `session_peer.PeerFrames`: the data channel's frames to their handlers, what goes to
  the peer (the durable stream's glue), a connection lost and back.

Everything is in memory. `end()` wipes it: messages, keys and the invite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine
from typing import Any

from orbitcore.protocol import peer as wire

from .call import Call
from .chat import ChatError, Conversation
from .connecting import Connecting
from .crypto import Invite, Seat
from .durable import DurableStream
from .files import FileTransfers
from .first_connect import FirstConnect
from .handshake import Failed, Handshake, Limits, announced
from .ice_plan import IcePlans
from .ice_servers import IceServers
from .peer import Peer
from .reconnect import Reconnector
from .rendezvous_client import RendezvousError
from .session_peer import PeerFrames
from .session_relay import RelayFrames, Signaling, SignalingChannel
from .session_setup import ChatSetup
from .settings import Config

__all__ = ["ChatSession", "RelayFrames", "Signaling", "SignalingChannel"]

log = logging.getLogger("orbitd.session")
RELAY_UNAVAILABLE = (
    "Hiding your address needs a relay (TURN) server, and none is known: neither your "
    "settings nor the server name one. Turn off \u201chide my address\u201d or add a TURN server."
)
Emit = Callable[[dict[str, Any]], None]


class ChatSession:
    """One chat session: it owns the pieces below, and its three helpers (one per side,
    see the module's docstring) act on them."""

    def __init__(
        self,
        config: Config,
        client: SignalingChannel,
        invite: Invite,
        seat: Seat,
        identity: str,
        status: dict[str, Any],
        emit: Emit,
        *,
        lan_peer: dict[str, str] | None = None,
        rendezvous_ice: IceServers | None = None,
        relay_only: bool = False,
    ) -> None:
        self.config = config
        self.client = client
        # `lan_peer` ({"name", "fingerprint"}): a LAN session with that nearby daemon. Its
        # invite (the session id and the spoken code) is nothing to share: not kept here.
        self.lan_peer = lan_peer
        self.invite: Invite | None = None if lan_peer else invite
        self.token = invite.token
        self.seat = seat
        self.identity = identity
        self.status = status
        self.max_message_length = int(status.get("max_message_length", 2000))
        self.emit = emit
        self.handshake = Handshake(seat, invite, announced(), _limits(status))
        # The ICE servers: the user's and the rendezvous's, one STUN and one TURN server
        # per connection; `ice_plans.advance()` before a new connection tries the next.
        self.ice_plans = IcePlans(
            config.ice_servers,
            config.ice_username,
            config.ice_credential,
            rendezvous=rendezvous_ice.servers if rendezvous_ice else None,
            relay_only=relay_only,
            lan=lan_peer is not None,
        )
        self.relay_frames = RelayFrames(self)
        self.setup = ChatSetup(self)
        self.peer_frames = PeerFrames(self)
        self.peer = Peer(config, self._peer_message, self.peer_frames.state, self.ice_plans)
        # The first connection: the next ICE plan when one does not come up in its time.
        self.first = FirstConnect(
            self.handshake,
            plans=len(self.ice_plans.plans),
            connect_timeout=config.connect_timeout_seconds,
        )
        self.connecting = Connecting(self.first, self.peer, self.setup.connect_due)
        self.path: str | None = None  # how the connection runs, once it does
        self.conversation: Conversation | None = None
        self.call: Call | None = None
        self.reconnect: Reconnector | None = None  # when both announce `reconnect`
        self.durable: DurableStream | None = None  # when both announce `resume`
        self.files: FileTransfers | None = None  # when both announce `files`
        self.sas: str | None = None
        self.ended: dict[str, Any] | None = None
        self.peer_lost = False
        self.socket: Signaling = client.signaling(self.token, identity, self.relay_frames.frame)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ending: asyncio.Future[None] | None = None
        # The rendezvous's ICE servers (`orbitd.ice_servers`); fresh ones are asked for
        # (`ice-refresh`) when a fifth of their credentials' life is left.
        self.rendezvous_ice = rendezvous_ice

    # -- what the UI sees ----------------------------------------------------
    @property
    def phase(self) -> str:
        if self.ended is not None:
            return "ended"
        if self.reconnect is not None and self.reconnect.attempt is not None:
            return "reconnecting"
        if self.peer_lost:
            return "peer-lost"
        return self.handshake.phase.value

    def snapshot(self) -> dict[str, Any]:
        remaining = None
        ends_at = self.relay_frames.ends_at
        if ends_at is not None:
            remaining = max(0, int(ends_at - time.monotonic()))
        return {
            "token": self.token,
            "role": self.seat.value,
            "phase": self.phase,
            "state": self.status.get("state"),
            "participants": self.status.get("participants"),
            "ttl_minutes": (self.status.get("timer") or {}).get("ttl_minutes"),
            "remaining_seconds": remaining,
            "max_message_length": self.max_message_length,
            "sas": self.sas,
            "attempt": self.reconnect.attempt if self.reconnect else None,
            "ended": self.ended,
            "messages": self.conversation.listing() if self.conversation else [],
            "call": self.call.snapshot() if self.call else None,
            "files": self.files.listing() if self.files else [],
            "lan": self.lan_peer,
            "protocol": self._protocol(),
            "path": self.path if self.ended is None else None,
            "relay_only": self.ice_plans.relay_only,
        }

    def _protocol(self) -> dict[str, Any] | None:
        """The peer's protocol version and what both can use (or why they cannot talk)."""
        agreed, refused = self.handshake.agreement, self.handshake.incompatible
        if agreed is not None:
            return {
                "version": self.handshake.announcement.protocol,
                "peer_version": agreed.peer_version,
                "features": sorted(agreed.features),
                "compatible": True,
            }
        if refused is not None:
            return {
                "version": refused.local_version,
                "peer_version": refused.peer_version,
                "features": [],
                "compatible": False,
            }
        return None

    def has_feature(self, name: str) -> bool:
        """Both daemons announced this feature."""
        agreed = self.handshake.agreement
        return agreed is not None and name in agreed.features

    def publish(self) -> None:
        self.emit({"type": "session", "session": self.snapshot()})

    # -- running ---------------------------------------------------------------
    async def start(self) -> None:
        self.socket.start()
        self.relay_frames.arm_ice_refresh()
        self.relay_frames.update_status(self.status)
        if not self.ice_plans.usable:  # relay-only with no TURN: say so, do not hang
            await self.failed(Failed("relay_unavailable", RELAY_UNAVAILABLE))
            return
        await self.setup.run(self.handshake.start())
        self.publish()

    def spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task failed", exc_info=task.exception())

    def _peer_message(self, text: str) -> None:
        """A data-channel frame (`Peer`'s callback; tests/hostile_peer.py wraps it)."""
        self.peer_frames.message(text)

    async def failed(self, failure: Failed, *, tell_rendezvous: bool = True) -> None:
        log.warning("session failed", extra={"fields": {"code": failure.code}})
        event = {"type": "error", "code": failure.code, "message": failure.reason}
        if self.handshake.incompatible is not None:  # the UI words it with both versions
            event["peer_version"] = self.handshake.incompatible.peer_version
            event["local_version"] = self.handshake.incompatible.local_version
        self.emit(event)
        # A wrong or tampered invite burns the token: nobody gets a second guess.
        await self.end(failure.code, tell_peer=False, tell_rendezvous=tell_rendezvous)

    # -- the user's actions ------------------------------------------------------
    def send_message(self, text: object) -> dict[str, Any]:
        if self.ended is not None:
            raise ChatError(409, "session_ended", "The session has ended.")
        if self.conversation is None:
            raise ChatError(409, "not_connected", "The chat is not connected yet.")
        if self.durable is not None:
            return self.peer_frames.send_durable(self.conversation, self.durable, text)
        message, send = self.conversation.compose(text, time.time())
        try:
            self.peer.send(send.frame.encode())
        except ConnectionError:
            raise ChatError(
                409, "not_connected", "The connection to the other side is down."
            ) from None
        return message.public()

    def delete_message(self, message_id: str) -> None:
        if self.conversation is None:
            raise ChatError(404, "message_not_found", "No such message.")
        self.peer_frames.chat(self.conversation.delete(message_id))

    async def end(self, reason: str, *, tell_peer: bool, tell_rendezvous: bool) -> None:
        """End and wipe. Idempotent: every caller returns when the one ending is complete
        (a shutdown must not cut short an end that the peer started, or media threads
        would outlive the connection)."""
        if self._ending is None:
            self.ended = {"reason": reason, "ended_at": int(time.time())}
            self._ending = asyncio.ensure_future(self._end(reason, tell_peer, tell_rendezvous))
        await asyncio.shield(self._ending)

    async def _end(self, reason: str, tell_peer: bool, tell_rendezvous: bool) -> None:
        log.info("session ended", extra={"fields": {"reason": reason}})
        told_peer = tell_peer and self.conversation is not None
        if told_peer:
            self.peer_frames.send(wire.End())
        self.connecting.cancel()
        self.relay_frames.stop()
        self.setup.stop()
        if self.reconnect is not None:
            await self.reconnect.close()
        if tell_rendezvous:
            with contextlib.suppress(RendezvousError):
                await self.client.end(self.token, self.identity)
        if self.call is not None:
            await self.call.close()
            self.call = None
        if self.files is not None:
            self.files.end()
        if self.durable is not None and self.conversation is not None:
            unacked = [f.message_id for f in self.durable.unacked() if isinstance(f, wire.Message)]
            self.peer_frames.chat(self.conversation.undelivered(unacked))
            self.durable.wipe()
        # Wiped before the UI hears of the end: a page (or a test) that reads the state on
        # `session-ended` must find no message, even while the socket below closes.
        if self.conversation is not None:
            self.conversation.wipe()
        self.conversation = None
        self.emit({"type": "session-ended", "reason": reason})
        await self.socket.close()
        self.invite = None
        self.sas = None
        if told_peer:
            await asyncio.sleep(0.05)  # let the "end" frame leave before the connection closes
        await self.peer.close()
        self.publish()
        for task in list(self._tasks):
            task.cancel()


def _limits(status: dict[str, Any]) -> Limits:
    """The countdown and message limit this side knows (sealed in its confirm)."""
    timer = status.get("timer") or {}
    ttl, length = timer.get("ttl_minutes"), status.get("max_message_length")
    return Limits(
        ttl if isinstance(ttl, int) and not isinstance(ttl, bool) else None,
        length if isinstance(length, int) and not isinstance(length, bool) else None,
    )
