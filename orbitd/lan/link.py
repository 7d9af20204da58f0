"""The signaling of a LAN session, straight between the two daemons: no rendezvous.

`LanLink` is a session's signaling channel (`ChatSession`'s `SignalingChannel` and its
`Signaling` socket at once). The inviter (host, the offerer) dials the invitee's LAN
listener, `GET /lan/session/{id}` (a WebSocket); the invitee's link is handed that
socket by the listener (`serve`). The socket carries exactly the relay frames
`pake`, `sealed` and `abort` (`orbitcore.protocol.relay`'s), and nothing else: the
session status (a rendezvous would send it) is made locally (`lan_status`), and any
other frame from the wire is refused (logged as `protocol_error`, dropped).

One socket per session, once: the dialer does not redial a socket that was up, the
listener takes no second one. Frames sent before the socket is up wait in a short
queue. The handshake is single-use anyway (a second SPAKE2 message is a mismatch).
When both daemons announce `reconnect` the socket stays open for the session and
carries the sealed `reoffer`/`reanswer` of a rebuilt connection (`orbitd.reconnect`):
beyond the handshake's `FRAMES_MAX` frames it takes at most one frame every
`PACED_SECONDS`. (A socket that drops, such as after a LAN outage longer than its
heartbeat, is not redialled: a later reconnect of that session cannot be signalled.)
A link that gets no frame within `FIRST_FRAME_SECONDS` of dialing (or of taking its
socket) ends its session with `connect_timeout`; a dialer the other daemon refuses
ends it with `peer_aborted` (the session's own deadline starts only with the keys).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
from aiohttp import WSMsgType, web

from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame, ProtocolError

log = logging.getLogger("orbitd.lan.link")

FRAME_MAX_BYTES = relay.MAX_BYTES  # a sealed SDP is a few kB
FRAMES_MAX = 32  # the handshake needs four or five each way
PACED_SECONDS = 0.5  # after those: reconnect attempts, a second or more apart
OUTBOX_MAX = 16
FIRST_FRAME_SECONDS = 20.0
OnFrame = Callable[[Frame], None]


def _iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def lan_status(
    session_id: str, ttl_minutes: int, max_message_length: int, remaining_seconds: int
) -> dict[str, Any]:
    """The rendezvous's session-status shape for a LAN session: active from acceptance,
    `remaining_seconds` on the clock (both daemons count down on their own)."""
    now = datetime.now(UTC)
    seat = {"id": "lan", "joined_at": _iso(now), "connected": False}
    return {
        "token": session_id,
        "state": "ACTIVE",
        "valid_until": None,
        "max_message_length": max_message_length,
        "participants": {"host": dict(seat), "guest": dict(seat)},
        "timer": {
            "started_at": _iso(now - timedelta(seconds=ttl_minutes * 60 - remaining_seconds)),
            "ttl_minutes": ttl_minutes,
            "ends_at": _iso(now + timedelta(seconds=remaining_seconds)),
            "remaining_seconds": remaining_seconds,
        },
        "ended_at": None,
        "end_reason": None,
    }


def relay_frame(text: str) -> relay.Pake | relay.Sealed | relay.Abort | None:
    """A handshake frame read from the wire, or None (logged) for anything else."""
    try:
        frame = relay.CHANNEL.parse(text)
        if not isinstance(frame, relay.HANDSHAKE):
            raise ProtocolError("Not a frame of the LAN link.", frame_type=frame.TYPE)
    except ProtocolError as exc:
        log.warning(
            "protocol_error",
            extra={"fields": {"channel": "lan-link", "type": relay.CHANNEL.logged_type(exc)}},
        )
        return None
    return frame


class LanLink:
    """One LAN session's signaling: dial `url` (the inviter) or be `serve`d a socket."""

    def __init__(
        self,
        session_id: str,
        *,
        url: str | None = None,
        http: aiohttp.ClientSession | None = None,
        on_end: Callable[[LanLink], None] | None = None,
    ) -> None:
        if (url is None) != (http is None):
            raise ValueError("a dialing link needs both url and http")
        self.session_id = session_id
        self.url = url
        self._http = http
        self._on_end = on_end
        self._on_frame: OnFrame | None = None
        self._ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse | None = None
        self._outbox: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.attached = False  # a socket was up once
        self.closed = False
        self.spent = False  # `end` burned the session id
        self.received = 0
        self._next_paced = 0.0  # when a frame beyond FRAMES_MAX may come
        self._watchdog: asyncio.TimerHandle | None = None

    # -- SignalingChannel ------------------------------------------------------------
    def signaling(self, token: str, identity: str, on_frame: OnFrame) -> LanLink:
        if token != self.session_id:
            raise ValueError("this link belongs to another session")
        self._on_frame = on_frame
        return self

    async def end(self, token: str, identity: str) -> None:
        """Burn the session id (the other side learns it from the data channel, an
        `abort`, or the socket closing); never raises."""
        self.spent = True

    # -- Signaling -------------------------------------------------------------------
    def start(self) -> None:
        if self.url is not None and self._task is None:
            self._task = asyncio.create_task(self._dial())
            self._arm()

    def _arm(self) -> None:
        loop = asyncio.get_running_loop()
        self._watchdog = loop.call_later(FIRST_FRAME_SECONDS, self._silent)

    def _silent(self) -> None:
        if self.received == 0:
            log.warning("LAN session: no signaling from the other daemon; given up")
            self.ended("connect_timeout")

    async def send(self, frame: Frame) -> None:
        text = frame.encode()
        ws = self._ws
        if ws is None or ws.closed:
            if not self.attached and len(self._outbox) < OUTBOX_MAX:
                self._outbox.append(text)
            return
        with contextlib.suppress(ConnectionError):
            await ws.send_str(text)

    async def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if self._watchdog is not None:
            self._watchdog.cancel()
        ws = self._ws
        if ws is not None and not ws.closed:
            with contextlib.suppress(ConnectionError, RuntimeError):
                await ws.close()
        task = self._task
        if task is not None and task is not asyncio.current_task():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        if self._on_end is not None:
            self._on_end(self)

    def ended(self, reason: str) -> None:
        """Tell the session it is over (made here, as a rendezvous would say it): the
        other side gave up, or never came."""
        if self._on_frame is not None and not self.closed:
            self._on_frame(relay.SessionEnded(reason, _iso(datetime.now(UTC))))

    # -- the socket ------------------------------------------------------------------
    def claim(self) -> None:
        """The listener's side, before the upgrade: this link takes one socket, once."""
        if self.attached or self.closed or self.url is not None:
            raise RuntimeError("this session's socket was taken")
        self.attached = True
        self._arm()

    async def serve(self, ws: web.WebSocketResponse) -> None:
        """The listener's side, after `claim`: pump `ws` until it or the link closes."""
        await self._pump(ws)

    async def _dial(self) -> None:
        assert self.url is not None and self._http is not None
        delay = 0.1
        while not self.closed and not self.attached:
            try:
                ws = await self._http.ws_connect(
                    self.url,
                    timeout=aiohttp.ClientWSTimeout(ws_receive=None, ws_close=2.0),
                    max_msg_size=FRAME_MAX_BYTES,
                    autoping=True,
                    heartbeat=20.0,
                )
            except aiohttp.WSServerHandshakeError as exc:
                log.warning(
                    "LAN session: the other daemon refused the socket",
                    extra={"fields": {"status": exc.status}},
                )
                self.ended("peer_aborted")
                return
            except (aiohttp.ClientError, TimeoutError, OSError) as exc:
                log.info(
                    "LAN session: cannot reach the other daemon yet",
                    extra={"fields": {"error": type(exc).__name__}},
                )
                await asyncio.sleep(delay)
                delay = min(delay * 2, 2.0)
                continue
            await self._pump(ws)

    def _paced(self) -> bool:
        """A frame beyond the handshake's comes at most every `PACED_SECONDS`."""
        now = asyncio.get_running_loop().time()
        if now < self._next_paced:
            return False
        self._next_paced = now + PACED_SECONDS
        return True

    async def _pump(self, ws: web.WebSocketResponse | aiohttp.ClientWebSocketResponse) -> None:
        self._ws, self.attached = ws, True
        try:
            while self._outbox and not ws.closed:
                await ws.send_str(self._outbox.pop(0))
            async for msg in ws:
                if msg.type is not WSMsgType.TEXT:
                    continue
                self.received += 1
                if self.received > FRAMES_MAX and not self._paced():
                    log.warning("LAN session: too many signaling frames; socket closed")
                    break
                frame = relay_frame(msg.data)
                if frame is None:
                    continue
                if self._on_frame is not None and not self.closed:
                    self._on_frame(frame)
        except ConnectionError:
            pass
        finally:
            self._ws = None
            if not ws.closed:
                with contextlib.suppress(ConnectionError, RuntimeError):
                    await ws.close()
