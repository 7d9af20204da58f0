"""One chat session of this daemon: the seat at the rendezvous, the handshake,
the WebRTC connection and the conversation, tied together. I/O lives here;
the decisions live in `handshake` and `chat`.

Everything is in memory. `end()` wipes it: messages, keys and the invite.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Coroutine, Sequence
from typing import Any, Protocol

from orbitcore.protocol import peer as wire
from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame, ProtocolError, dispatch

from .call import Call
from .chat import ChatError, ChatOutput, Conversation, Send
from .connecting import Connecting
from .crypto import Invite, Seat
from .durable import DURABLE, DurableStream, StreamFull
from .first_connect import NOTHING_CAME, AnswerReoffer, FirstConnect, FirstOutput, NextPlan
from .handshake import (
    Failed,
    Handshake,
    Limits,
    MakeAnswer,
    MakeOffer,
    Phase,
    PhaseChanged,
    SendRelay,
    UseAnswer,
    Verified,
    announced,
)
from .ice_plan import IcePlans
from .ice_servers import IceServers
from .peer import Peer, PeerState
from .reconnect import Reconnector
from .rendezvous_client import RendezvousError
from .settings import Config

log = logging.getLogger("orbitd.session")
PATH_CHECK_SECONDS = 1.0  # aiortc has no event for a new selected pair: a look each second
RELAY_UNAVAILABLE = (
    "Hiding your address needs a relay (TURN) server, and none is known: neither your "
    "settings nor the server name one. Turn off \u201chide my address\u201d or add a TURN server."
)
STATUS_SLACK_SECONDS = 5.0  # a countdown pushed again may be this much shorter (rounding, latency)
Emit = Callable[[dict[str, Any]], None]
OnFrame = Callable[[Frame], None]


class Signaling(Protocol):
    """The session's signaling socket: relay frames out (`send`), in through `on_frame`."""

    def start(self) -> None: ...

    async def send(self, frame: Frame) -> None: ...

    async def close(self) -> None: ...


class SignalingChannel(Protocol):
    """What carries a session's first, sealed signaling and burns its token: the
    rendezvous (`RendezvousClient`) or, on a LAN, the other daemon itself (`LanLink`).

    `on_frame` gets the relay frames (`pake`, `sealed`, `abort`) and the channel's own
    `session-status` / `session-ended` (`orbitcore.protocol.relay`'s, already parsed);
    `end` burns the token for good.
    """

    def signaling(self, token: str, identity: str, on_frame: OnFrame) -> Signaling: ...

    async def end(self, token: str, identity: str) -> None: ...


class RelayFrames:
    """A session's handler of each relay frame type its signaling channel delivers."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session

    def handle_session_status(self, frame: relay.SessionStatus) -> None:
        self.session.status_changed(frame.status)

    def handle_session_ended(self, frame: relay.SessionEnded) -> None:
        self.session.ended_elsewhere(frame.reason)

    def handle_error(self, frame: relay.Error) -> None:
        log.warning("rendezvous error frame", extra={"fields": {"code": frame.code}})

    def handle_ice_servers(self, frame: relay.IceServers) -> None:
        self.session.ice_refreshed(frame)

    def handle_pake(self, frame: relay.Pake) -> None:
        self.session.handshake_frame(frame)

    def handle_sealed(self, frame: relay.Sealed) -> None:
        self.session.handshake_frame(frame)

    def handle_abort(self, frame: relay.Abort) -> None:
        self.session.handshake_frame(frame)


class ChatSession:
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
        self._emit = emit
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
        self.peer = Peer(config, self._peer_message, self._peer_state, self.ice_plans)
        # The first connection: the next ICE plan when one does not come up in its time.
        self.first = FirstConnect(
            self.handshake,
            plans=len(self.ice_plans.plans),
            connect_timeout=config.connect_timeout_seconds,
        )
        self.connecting = Connecting(self.first, self.peer, self._connect_due)
        self.path: str | None = None  # how the connection runs, once it does
        self._path_timer: asyncio.TimerHandle | None = None
        self.conversation: Conversation | None = None
        self.call: Call | None = None
        self.reconnect: Reconnector | None = None  # when both announce `reconnect`
        self.durable: DurableStream | None = None  # when both announce `resume`
        self.sas: str | None = None
        self.ended: dict[str, Any] | None = None
        self.peer_lost = False
        self._relay_frames = RelayFrames(self)
        self._socket: Signaling = client.signaling(self.token, identity, self._relay_frame)
        self._tasks: set[asyncio.Task[Any]] = set()
        self._ends_at: float | None = None
        self._end_timer: asyncio.TimerHandle | None = None
        self._ending: asyncio.Future[None] | None = None
        # The rendezvous's ICE servers (`orbitd.ice_servers`); fresh ones are asked for
        # (`ice-refresh`) when a fifth of their credentials' life is left.
        self.rendezvous_ice = rendezvous_ice
        self._ice_timer: asyncio.TimerHandle | None = None

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
        if self._ends_at is not None:
            remaining = max(0, int(self._ends_at - time.monotonic()))
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

    def _publish(self) -> None:
        self._emit({"type": "session", "session": self.snapshot()})

    # -- running ---------------------------------------------------------------
    async def start(self) -> None:
        self._socket.start()
        self._arm_ice_refresh()
        self._update_status(self.status)
        if not self.ice_plans.usable:  # relay-only with no TURN: say so, do not hang
            await self._failed(Failed("relay_unavailable", RELAY_UNAVAILABLE))
            return
        await self._run(self.handshake.start())
        self._publish()

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)

    def _task_done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("session task failed", exc_info=task.exception())

    def _relay_frame(self, frame: Frame) -> None:
        """A frame from the signaling channel, to its one handler (`RelayFrames`); one
        that has none is logged as `protocol_error` and dropped."""
        if self.ended is not None:
            return
        try:
            dispatch(self._relay_frames, frame)
        except ProtocolError as exc:
            log.warning(
                "protocol_error",
                extra={"fields": {"channel": "relay", "type": relay.CHANNEL.logged_type(exc)}},
            )

    def handshake_frame(self, frame: relay.Pake | relay.Sealed | relay.Abort) -> None:
        if self.reconnect is not None and isinstance(frame, relay.Sealed):
            self.reconnect.sealed(frame)  # re-signaling during the chat
            return
        now = asyncio.get_running_loop().time()
        self._spawn(self._run(self.first.sealed(frame, now)))

    def status_changed(self, status: dict[str, Any]) -> None:
        contradiction = self._contradicts(status)
        if contradiction is not None:  # the relay's word against the sealed handshake's
            log.info("session-status ignored", extra={"fields": {"contradicts": contradiction}})
            return
        self._update_status(status)
        if self.reconnect is not None:
            self.reconnect.signaling_news()
        self._publish()

    def ended_elsewhere(self, reason: str) -> None:
        """The rendezvous (or a LAN link) says the session is over. While the peer's seat
        is taken but nothing it sent ever arrived, that is its connect timeout (ours is
        running too): said as one, not as an end by hand."""
        if (
            self.handshake.phase is Phase.WAITING
            and self.first.due is not None
            and reason == "manually_ended"
        ):
            failed = Failed("connect_timeout", NOTHING_CAME)
            self._spawn(self._failed(failed, tell_rendezvous=False))
            return
        self._spawn(self.end(reason, tell_peer=False, tell_rendezvous=False))

    def _contradicts(self, status: dict[str, Any]) -> str | None:
        """What in a `session-status` contradicts the limits both daemons agreed in the
        sealed handshake (the host's): the message limit, the countdown's length, a
        countdown longer than that."""
        agreed = self.handshake.limits
        if agreed is None:
            return None
        timer = status.get("timer") or {}
        remaining = timer.get("remaining_seconds")
        if (
            agreed.max_message_length is not None
            and status.get("max_message_length", agreed.max_message_length)
            != agreed.max_message_length
        ):
            return "max_message_length"
        if agreed.ttl_minutes is not None:
            if timer.get("ttl_minutes", agreed.ttl_minutes) != agreed.ttl_minutes:
                return "ttl_minutes"
            if isinstance(remaining, int | float) and remaining > agreed.ttl_minutes * 60:
                return "remaining_seconds"
        if (
            isinstance(remaining, int | float)
            and self._ends_at is not None
            and status.get("state") == "ACTIVE"
            and time.monotonic() + remaining < self._ends_at - STATUS_SLACK_SECONDS
        ):
            return "remaining_seconds"  # a running countdown never jumps ahead
        return None

    def _update_status(self, status: dict[str, Any]) -> None:
        self.status = status
        if self.first.started is None and _both_seated(status):
            self.first.seat_taken(asyncio.get_running_loop().time())
            self.connecting.arm()
        remaining = (status.get("timer") or {}).get("remaining_seconds")
        if status.get("state") == "ACTIVE" and isinstance(remaining, int | float):
            self._ends_at = time.monotonic() + remaining
            if self._end_timer is not None:
                self._end_timer.cancel()
            loop = asyncio.get_running_loop()
            self._end_timer = loop.call_later(remaining, self._time_up)

    def _time_up(self) -> None:
        self._spawn(self.end("timer_expired", tell_peer=False, tell_rendezvous=False))

    # -- the rendezvous's ICE servers ----------------------------------------------
    def _arm_ice_refresh(self, delay: float | None = None) -> None:
        """Ask for fresh ICE servers at `refresh_at` (or after `delay`); never when the
        servers do not expire (no TURN) or the session is over."""
        if self._ice_timer is not None:
            self._ice_timer.cancel()
            self._ice_timer = None
        ice = self.rendezvous_ice
        if ice is None or ice.refresh_at is None or self.ended is not None:
            return
        if delay is None:
            delay = max(0.0, ice.refresh_at - time.monotonic())
        self._ice_timer = asyncio.get_running_loop().call_later(delay, self._ask_ice)

    def _ask_ice(self) -> None:
        self._ice_timer = None
        ice = self.rendezvous_ice
        if self.ended is not None or ice is None or ice.expires_at is None:
            return
        log.info("asking for fresh ICE servers")
        self._spawn(self._socket.send(relay.IceRefresh()))
        # Unanswered (refused, rate-limited): ask again halfway to the expiry. (A socket
        # that is down sends it when it is back.)
        half_left = (ice.expires_at - time.monotonic()) / 2
        if half_left >= 1.0:
            self._arm_ice_refresh(half_left)

    def ice_refreshed(self, frame: relay.IceServers) -> None:
        """Fresh ICE servers from the rendezvous: kept, used by the next connection."""
        self.rendezvous_ice = IceServers.of(frame, time.monotonic())
        self.ice_plans.refresh(self.rendezvous_ice.servers)
        log.info("ICE servers refreshed", extra={"fields": {"ttl_seconds": frame.ttl_seconds}})
        self._arm_ice_refresh()

    async def _run(self, outputs: Sequence[FirstOutput]) -> None:
        for out in outputs:
            if self.ended is not None:
                return
            if isinstance(out, SendRelay):
                await self._socket.send(out.frame)
            elif isinstance(out, PhaseChanged):
                if out.phase is Phase.EXCHANGING_KEYS:
                    self.connecting.start()
                if out.phase is not Phase.READY:  # `Verified` follows and publishes with the SAS
                    self._publish()
            elif isinstance(out, MakeOffer | MakeAnswer):
                generation = self.peer.generation
                if isinstance(out, MakeOffer):
                    sdp = await self.peer.create_offer()
                else:
                    sdp = await self.peer.accept_offer(out.offer_sdp)
                if self.peer.generation == generation:  # not replaced by the next plan's
                    await self._run(self.handshake.local_description(sdp))
            elif isinstance(out, NextPlan | AnswerReoffer):
                await self._run(await self.connecting.next_plan(out))
            elif isinstance(out, UseAnswer):
                await self.peer.accept_answer(out.answer_sdp)
            elif isinstance(out, Verified):
                self._verified(out)
            elif isinstance(out, Failed):
                await self._failed(out)

    def _connect_due(self, outputs: list[FirstOutput]) -> None:
        """A deadline of the first connection: the next plan, or `connect_timeout`."""
        if self.conversation is None and self.ended is None:
            self._spawn(self._run(outputs))

    def _verified(self, out: Verified) -> None:
        self.connecting.cancel()
        agreed = self.handshake.limits
        if agreed is not None and agreed.max_message_length is not None:
            self.max_message_length = agreed.max_message_length  # the host's, sealed
        self.conversation = Conversation(
            out.keys, self.max_message_length, keyed_signature=self.has_feature("keyed-signature")
        )
        self.call = Call(self.config, self.seat, self.peer, self._send_peer, self._emit)
        self.sas = out.sas
        log.info("chat ready", extra={"fields": {"role": self.seat.value}})
        if self.has_feature("resume"):
            self.durable = DurableStream()
        self.path = self.peer.path()
        self._arm_path_watch()
        if self.has_feature("reconnect"):
            self.reconnect = Reconnector(
                self.seat,
                out.keys,
                self.token,
                self.peer,
                resignal=self.first.resignal_now(),  # at the generation that came up
                send_relay=self._socket.send,
                send_peer=self._send_peer,
                changed=self._publish,
                lost_link=self._link_lost,
                reconnected=self._reconnected,
                failed=self._reconnect_failed,
            )
            self.reconnect.start()
        if self.lan_peer is not None and self.reconnect is None:
            # Nothing more travels on a LAN link (a rendezvous socket still brings the
            # status and the end): renegotiation is on the data channel from here. With
            # `reconnect` it stays open: a new connection is signalled through it.
            self._spawn(self._socket.close())
        self._publish()

    async def _failed(self, failure: Failed, *, tell_rendezvous: bool = True) -> None:
        log.warning("session failed", extra={"fields": {"code": failure.code}})
        event = {"type": "error", "code": failure.code, "message": failure.reason}
        if self.handshake.incompatible is not None:  # the UI words it with both versions
            event["peer_version"] = self.handshake.incompatible.peer_version
            event["local_version"] = self.handshake.incompatible.local_version
        self._emit(event)
        # A wrong or tampered invite burns the token: nobody gets a second guess.
        await self.end(failure.code, tell_peer=False, tell_rendezvous=tell_rendezvous)

    def _link_lost(self) -> None:
        """The connection is gone (`orbitd.reconnect`): durable frames wait for the next."""
        if self.durable is not None:
            self.durable.disconnected()
        if self.call is not None:
            self.call.link_lost()

    def _reconnected(self) -> None:
        """A new connection is up and verified (`orbitd.reconnect`): our ack and every
        unacknowledged durable frame go out again, in order."""
        if self.durable is not None and self.conversation is not None:
            for frame in self.durable.connected():
                self._send_raw(frame)
            queued = [f.message_id for f in self.durable.unacked() if isinstance(f, wire.Message)]
            self._chat(self.conversation.went_out(queued))
        if self.call is not None:
            self.call.reconnected()
        self._publish()

    def _reconnect_failed(self, code: str, reason: str) -> None:
        self._spawn(self._failed(Failed(code, reason)))

    def _arm_path_watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._path_timer = loop.call_later(PATH_CHECK_SECONDS, self._check_path)

    def _check_path(self) -> None:
        """The path the connection runs on (from the selected candidate pair), published
        when it changes: a new pair, a replaced connection, none while it is down."""
        if self.ended is not None:
            return
        path = self.peer.path()
        if path != self.path:
            log.info("path", extra={"fields": {"from": self.path, "to": path}})
            self.path = path
            self._publish()
        self._arm_path_watch()

    # -- the peer --------------------------------------------------------------
    def _peer_state(self, state: PeerState) -> None:
        if self.reconnect is not None and self.ended is None:
            self.reconnect.peer_state(state)
        elif state is PeerState.OPEN and self.conversation is None and self.ended is None:
            self._spawn(self._run(self.first.connected(self.peer.presented_fingerprint())))
        elif (
            state in (PeerState.FAILED, PeerState.CLOSED)
            and self.ended is None
            and self.conversation
        ):
            self.peer_lost = True
            self._publish()

    def _peer_message(self, text: str) -> None:
        """A data-channel frame: read once, routed by its family (chat, call, rtc) to
        its one `handle_<type>`; one that is refused is answered with `error`."""
        if self.conversation is None or self.ended is not None:
            return
        try:
            frame = wire.CHANNEL.parse(text)
            if isinstance(frame, wire.Error):
                log.info(
                    "the peer refused a frame",
                    extra={"fields": {"code": frame.code, "in_reply_to": frame.in_reply_to}},
                )
            elif isinstance(frame, wire.LinkFrame) and self.reconnect is not None:
                dispatch(self.reconnect, frame)
            elif isinstance(frame, wire.Seq) and self.durable is not None:
                got = self.durable.handle_seq(frame)
                self._send_raw(got.ack)
                if got.refused is not None:
                    self._refuse_peer_frame(got.refused)
                elif got.frame is not None:
                    self._route(got.frame)
            elif isinstance(frame, wire.SeqAck) and self.durable is not None:
                self.durable.handle_seq_ack(frame)
            else:
                self._route(frame)
        except ProtocolError as refused:
            self._refuse_peer_frame(refused)

    def _route(self, frame: Frame) -> None:
        """A conversation, call or renegotiation frame, to its handler."""
        assert self.conversation is not None
        try:
            if isinstance(frame, wire.ChatFrame):
                self._chat(dispatch(self.conversation, frame))
            elif isinstance(frame, wire.CallFrame | wire.RtcFrame) and self.call is not None:
                if isinstance(frame, wire.CallFrame) and not self.has_feature("calls"):
                    raise ProtocolError(
                        "Calls were not agreed for this session.",
                        frame_type=frame.TYPE,
                        code="feature_unavailable",
                    )
                self.call.handle(frame)
            else:
                raise ProtocolError(f"`{frame.TYPE}` is not expected here.", frame_type=frame.TYPE)
        except ProtocolError as refused:
            self._refuse_peer_frame(refused)

    def _refuse_peer_frame(self, refused: ProtocolError) -> None:
        fields = {
            "channel": "peer",
            "code": refused.code,
            "type": wire.CHANNEL.logged_type(refused),
        }
        log.warning("protocol_error", extra={"fields": fields})
        if refused.frame_type is None:  # not even its type could be read
            self._emit(
                {"type": "error", "code": "bad_peer_frame", "message": "The peer sent garbage."}
            )
        if refused.frame_type != wire.Error.TYPE:  # an error is never answered
            self._send_peer(wire.refusal(refused))

    def _chat(self, outputs: list[ChatOutput]) -> None:
        for out in outputs:
            if isinstance(out, Send):
                self._send_peer(out.frame)
            elif out.event.get("type") == "peer-ended":
                self._spawn(self.end("manually_ended", tell_peer=False, tell_rendezvous=False))
            else:
                self._emit(out.event)

    def _send_peer(self, frame: Frame) -> None:
        """A frame for the peer: a durable one through the stream (feature `resume`:
        queued until acknowledged, sent again on a new connection), others as they are."""
        if self.durable is not None and isinstance(frame, DURABLE):
            try:
                envelope = self.durable.send(frame)
            except StreamFull:
                log.warning("durable stream full", extra={"fields": {"type": frame.TYPE}})
                return
            if envelope is None:
                return  # queued: it goes out on the next connection
            frame = envelope
        self._send_raw(frame)

    def _send_raw(self, frame: Frame) -> None:
        with contextlib.suppress(ConnectionError):
            self.peer.send(frame.encode())

    # -- the user's actions ------------------------------------------------------
    def send_message(self, text: object) -> dict[str, Any]:
        if self.ended is not None:
            raise ChatError(409, "session_ended", "The session has ended.")
        if self.conversation is None:
            raise ChatError(409, "not_connected", "The chat is not connected yet.")
        if self.durable is not None:
            return self._send_durable(self.conversation, self.durable, text)
        message, send = self.conversation.compose(text, time.time())
        try:
            self.peer.send(send.frame.encode())
        except ConnectionError:
            raise ChatError(
                409, "not_connected", "The connection to the other side is down."
            ) from None
        return message.public()

    def _send_durable(
        self, conversation: Conversation, durable: DurableStream, text: object
    ) -> dict[str, Any]:
        """A message through the durable stream: taken while reconnecting too (shown as
        sending until it goes out); refused only when the stream's bound is hit."""
        message, send = conversation.compose(text, time.time(), queued=not durable.is_connected)
        try:
            envelope = durable.send(send.frame)
        except StreamFull as full:
            conversation.messages.pop(message.message_id, None)
            raise ChatError(503, "send_queue_full", str(full)) from None
        if envelope is not None:
            self._send_raw(envelope)
        return message.public()

    def delete_message(self, message_id: str) -> None:
        if self.conversation is None:
            raise ChatError(404, "message_not_found", "No such message.")
        self._chat(self.conversation.delete(message_id))

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
            self._send_peer(wire.End())
        self.connecting.cancel()
        for timer in (self._end_timer, self._path_timer):
            if timer is not None:
                timer.cancel()
        if self._ice_timer is not None:
            self._ice_timer.cancel()
        if self.reconnect is not None:
            await self.reconnect.close()
        if tell_rendezvous:
            with contextlib.suppress(RendezvousError):
                await self.client.end(self.token, self.identity)
        if self.call is not None:
            await self.call.close()
            self.call = None
        if self.durable is not None and self.conversation is not None:
            unacked = [f.message_id for f in self.durable.unacked() if isinstance(f, wire.Message)]
            self._chat(self.conversation.undelivered(unacked))
            self.durable.wipe()
        self._emit({"type": "session-ended", "reason": reason})
        await self._socket.close()
        if self.conversation is not None:
            self.conversation.wipe()
        self.conversation = None
        self.invite = None
        self.sas = None
        if told_peer:
            await asyncio.sleep(0.05)  # let the "end" frame leave before the connection closes
        await self.peer.close()
        self._publish()
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


def _both_seated(status: dict[str, Any]) -> bool:
    seats = status.get("participants")
    return isinstance(seats, dict) and bool(seats.get("host")) and bool(seats.get("guest"))
