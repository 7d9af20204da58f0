"""The relay side of a chat session (`orbitd.session`): what its signaling channel
delivers, each frame type to its one `handle_<type>`; the `session-status` checks and
the countdown they set; the refresh of the rendezvous's ICE servers.

`Signaling` and `SignalingChannel` are what carries those frames: the rendezvous
(`RendezvousClient`) or, on a LAN, the other daemon itself (`LanLink`).
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame, ProtocolError, dispatch

from .first_connect import NOTHING_CAME
from .handshake import Failed, Phase
from .ice_servers import IceServers

if TYPE_CHECKING:
    from .session import ChatSession

log = logging.getLogger("orbitd.session")
STATUS_SLACK_SECONDS = 5.0  # a countdown pushed again may be this much shorter (rounding, latency)
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
    """A session's handler of each relay frame type its signaling channel delivers, and
    the timers those frames set: the countdown's end and the next `ice-refresh`."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self.ends_at: float | None = None  # monotonic, while the countdown runs
        self._end_timer: asyncio.TimerHandle | None = None
        self._ice_timer: asyncio.TimerHandle | None = None

    def frame(self, frame: Frame) -> None:
        """A frame from the signaling channel, to its one handler; one that has none is
        logged as `protocol_error` and dropped."""
        if self.session.ended is not None:
            return
        try:
            dispatch(self, frame)
        except ProtocolError as exc:
            log.warning(
                "protocol_error",
                extra={"fields": {"channel": "relay", "type": relay.CHANNEL.logged_type(exc)}},
            )

    def stop(self) -> None:
        """The session ends: no countdown, no more `ice-refresh`."""
        for timer in (self._end_timer, self._ice_timer):
            if timer is not None:
                timer.cancel()

    # -- one handler per relay frame ------------------------------------------------
    def handle_session_status(self, frame: relay.SessionStatus) -> None:
        self.status_changed(frame.status)

    def handle_session_ended(self, frame: relay.SessionEnded) -> None:
        self.ended_elsewhere(frame.reason)

    def handle_error(self, frame: relay.Error) -> None:
        log.warning("rendezvous error frame", extra={"fields": {"code": frame.code}})

    def handle_ice_servers(self, frame: relay.IceServers) -> None:
        self.ice_refreshed(frame)

    def handle_pake(self, frame: relay.Pake) -> None:
        self.handshake_frame(frame)

    def handle_sealed(self, frame: relay.Sealed) -> None:
        self.handshake_frame(frame)

    def handle_abort(self, frame: relay.Abort) -> None:
        self.handshake_frame(frame)

    def handshake_frame(self, frame: relay.Pake | relay.Sealed | relay.Abort) -> None:
        session = self.session
        if session.reconnect is not None and isinstance(frame, relay.Sealed):
            session.reconnect.sealed(frame)  # re-signaling during the chat
            return
        now = asyncio.get_running_loop().time()
        session.spawn(session.setup.run(session.first.sealed(frame, now)))

    # -- the session's status ---------------------------------------------------------
    def status_changed(self, status: dict[str, Any]) -> None:
        contradiction = self.contradicts(status)
        if contradiction is not None:  # the relay's word against the sealed handshake's
            log.info("session-status ignored", extra={"fields": {"contradicts": contradiction}})
            return
        self.update_status(status)
        if self.session.reconnect is not None:
            self.session.reconnect.signaling_news()
        self.session.publish()

    def ended_elsewhere(self, reason: str) -> None:
        """The rendezvous (or a LAN link) says the session is over. While the peer's seat
        is taken but nothing it sent ever arrived, that is its connect timeout (ours is
        running too): said as one, not as an end by hand."""
        session = self.session
        if (
            session.handshake.phase is Phase.WAITING
            and session.first.due is not None
            and reason == "manually_ended"
        ):
            failed = Failed("connect_timeout", NOTHING_CAME)
            session.spawn(session.failed(failed, tell_rendezvous=False))
            return
        session.spawn(session.end(reason, tell_peer=False, tell_rendezvous=False))

    def contradicts(self, status: dict[str, Any]) -> str | None:
        """What in a `session-status` contradicts the limits both daemons agreed in the
        sealed handshake (the host's): the message limit, the countdown's length, a
        countdown longer than that."""
        agreed = self.session.handshake.limits
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
            and self.ends_at is not None
            and status.get("state") == "ACTIVE"
            and time.monotonic() + remaining < self.ends_at - STATUS_SLACK_SECONDS
        ):
            return "remaining_seconds"  # a running countdown never jumps ahead
        return None

    def update_status(self, status: dict[str, Any]) -> None:
        session = self.session
        session.status = status
        if session.first.started is None and _both_seated(status):
            session.first.seat_taken(asyncio.get_running_loop().time())
            session.connecting.arm()
        remaining = (status.get("timer") or {}).get("remaining_seconds")
        if status.get("state") == "ACTIVE" and isinstance(remaining, int | float):
            self.ends_at = time.monotonic() + remaining
            if self._end_timer is not None:
                self._end_timer.cancel()
            loop = asyncio.get_running_loop()
            self._end_timer = loop.call_later(remaining, self._time_up)

    def _time_up(self) -> None:
        ending = self.session.end("timer_expired", tell_peer=False, tell_rendezvous=False)
        self.session.spawn(ending)

    # -- the rendezvous's ICE servers ------------------------------------------------
    def arm_ice_refresh(self, delay: float | None = None) -> None:
        """Ask for fresh ICE servers at `refresh_at` (or after `delay`); never when the
        servers do not expire (no TURN) or the session is over."""
        if self._ice_timer is not None:
            self._ice_timer.cancel()
            self._ice_timer = None
        ice = self.session.rendezvous_ice
        if ice is None or ice.refresh_at is None or self.session.ended is not None:
            return
        if delay is None:
            delay = max(0.0, ice.refresh_at - time.monotonic())
        self._ice_timer = asyncio.get_running_loop().call_later(delay, self._ask_ice)

    def _ask_ice(self) -> None:
        self._ice_timer = None
        ice = self.session.rendezvous_ice
        if self.session.ended is not None or ice is None or ice.expires_at is None:
            return
        log.info("asking for fresh ICE servers")
        self.session.spawn(self.session.socket.send(relay.IceRefresh()))
        # Unanswered (refused, rate-limited): ask again halfway to the expiry. (A socket
        # that is down sends it when it is back.)
        half_left = (ice.expires_at - time.monotonic()) / 2
        if half_left >= 1.0:
            self.arm_ice_refresh(half_left)

    def ice_refreshed(self, frame: relay.IceServers) -> None:
        """Fresh ICE servers from the rendezvous: kept, used by the next connection."""
        self.session.rendezvous_ice = IceServers.of(frame, time.monotonic())
        self.session.ice_plans.refresh(self.session.rendezvous_ice.servers)
        log.info("ICE servers refreshed", extra={"fields": {"ttl_seconds": frame.ttl_seconds}})
        self.arm_ice_refresh()


def _both_seated(status: dict[str, Any]) -> bool:
    seats = status.get("participants")
    return isinstance(seats, dict) and bool(seats.get("host")) and bool(seats.get("guest"))
