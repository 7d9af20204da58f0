"""Reconnects of a chat session (feature `reconnect`): the I/O around `keepalive` and
`resignal`.

Both daemons ping on the chat channel; after ~4.5 s without a pong (or when the
connection reports failed or closed) each says "reconnecting". The host leads, as in
magic-wormhole's dilation: it alone rebuilds. Each attempt is a new generation of the
peer connection (`Peer.replace()`), its offer sealed as `reoffer` through the
signaling socket (which reconnects by itself if it dropped); the guest answers the
newest reoffer it has with `reanswer` on a new connection of its own. Once the new
chat channel is open, the fingerprint the peer presented must be the sealed one; then
the keepalive watches the new connection and the session is ready again, with the same
security code. An attempt that does not come up within `ATTEMPT_SECONDS` is given up
for the next, after a backoff of 1 s doubling to 30 s with jitter. Attempts stop only
when the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from orbitcore.protocol import peer as wire
from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame

from .crypto import Seat, SessionKeys
from .keepalive import LinkDead, Liveness, SendPing
from .peer import Peer, PeerState
from .rendezvous_client import backoff
from .resignal import Dropped, Reanswered, RejoinAsked, Reoffered, Resignal

log = logging.getLogger("orbitd.reconnect")
ATTEMPT_SECONDS = 10.0
NUDGE_SECONDS = 1.0  # a reoffer is given up for a rejoin only when this old, at most
HELD_SECONDS = 0.5  # the guest's wait for held reoffers before it asks again


class Reconnector:
    def __init__(
        self,
        seat: Seat,
        keys: SessionKeys,
        token: str,
        peer: Peer,
        *,
        resignal: Resignal | None = None,
        send_relay: Callable[[relay.Sealed], Awaitable[None]],
        send_peer: Callable[[Frame], None],
        changed: Callable[[], None],
        lost_link: Callable[[], None],
        reconnected: Callable[[], None],
        failed: Callable[[str, str], None],
    ) -> None:
        self.seat = seat
        self.peer = peer
        self.resignal = resignal or Resignal(seat, keys, token)
        self.liveness = Liveness()
        self.attempt: int | None = None  # None: connected
        self._send_relay, self._send_peer = send_relay, send_peer
        self._changed, self._reconnected, self._failed = changed, reconnected, failed
        self._lost_link = lost_link
        self._loop = asyncio.get_running_loop()
        self._tasks: set[asyncio.Task[Any]] = set()
        self._answer: asyncio.Future[str] | None = None  # host: the current reanswer's SDP
        self._offered: int | None = None  # host: the generation of the reoffer it waits on
        self._open: asyncio.Event = asyncio.Event()  # the current generation's channel
        self._pending: Reoffered | None = None  # guest: the newest reoffer not yet answered
        self._answering = False
        self._closed = False
        # Host: the guest's `rejoin` wakes the attempt loop (`_nudge`).
        self._nudge = asyncio.Event()
        self._offered_at: float | None = None  # when the current reoffer went out
        self._backing_off = False
        self._asked_at = float("-inf")  # guest: when it last sent `rejoin`

    # -- running -----------------------------------------------------------------------
    def start(self) -> None:
        """The verified connection is up: watch it."""
        self.liveness.start(self._loop.time())
        self._spawn(self._tick())

    def _spawn(self, coro: Coroutine[Any, Any, Any]) -> None:
        task = asyncio.ensure_future(coro)
        self._tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[Any]) -> None:
        self._tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("reconnect task failed", exc_info=task.exception())

    async def _tick(self) -> None:
        while not self._closed:
            for out in self.liveness.tick(self._loop.time()):
                if isinstance(out, SendPing):
                    self._send_peer(out.frame)
                elif isinstance(out, LinkDead):
                    log.info("link dead", extra={"fields": {"silent": round(out.silent_seconds)}})
                    self.lost()
            await asyncio.sleep(self.liveness.interval / 4)

    async def close(self) -> None:
        self._closed = True
        self.liveness.stop()
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- what the session passes on ------------------------------------------------------
    def handle_ping(self, frame: wire.Ping) -> None:
        self._send_peer(self.liveness.pong(frame))

    def handle_pong(self, frame: wire.Pong) -> None:
        self.liveness.heard(self._loop.time())

    def peer_state(self, state: PeerState) -> None:
        """A state of the current generation's connection."""
        if state is PeerState.OPEN and self.attempt is not None:
            self._open.set()
            if self.seat is Seat.GUEST:
                self._verify()
        elif state in (PeerState.FAILED, PeerState.CLOSED):
            self.lost()

    def sealed(self, frame: relay.Sealed) -> None:
        """A sealed frame from the signaling socket during the chat."""
        opened = self.resignal.open(frame)
        if isinstance(opened, Dropped):
            log.info("sealed frame dropped", extra={"fields": {"reason": opened.reason}})
        elif isinstance(opened, Reanswered):
            # Only the answer to this attempt's reoffer: one to the previous attempt's can
            # arrive while this one's connection is still being made.
            answer = self._answer
            if answer is not None and not answer.done() and opened.generation == self._offered:
                answer.set_result(opened.sdp)
        elif isinstance(opened, Reoffered):
            self._reoffered(opened)
        elif isinstance(opened, RejoinAsked):
            self._rejoin_asked(opened.generation)

    def signaling_news(self) -> None:
        """The signaling socket heard from the rendezvous (it may have just come back):
        a guest that waits asks again, in case a reoffer was lost with the old socket
        (after a moment: a reoffer held for it by the rendezvous comes right after)."""
        if self.seat is Seat.GUEST and self.attempt is not None:
            self._ask_soon()

    def _ask_soon(self) -> None:
        """Guest: `rejoin` in a moment, unless a reoffer comes meanwhile (one may be on
        its way, or waiting in the socket)."""
        seen = self.resignal.generation
        self._loop.call_later(HELD_SECONDS, self._ask_unless_offered, seen)

    def _ask_unless_offered(self, seen: int) -> None:
        if self.attempt is not None and self.resignal.generation == seen:
            self._ask()

    # -- the link is gone ----------------------------------------------------------------
    def lost(self) -> None:
        if self._closed or self.attempt is not None:
            return
        self.liveness.stop()
        self.attempt = 0  # the host's first attempt is 1; the guest counts reoffers
        self._lost_link()
        self._changed()
        if self.seat is Seat.HOST:
            self._spawn(self._lead())
        else:
            self._ask_soon()

    def _ask(self) -> None:
        """Guest: send `rejoin` (at most once a second)."""
        now = self._loop.time()
        if self._closed or now - self._asked_at < NUDGE_SECONDS:
            return
        self._asked_at = now
        self._spawn(self._send_rejoin())

    async def _send_rejoin(self) -> None:
        await self._send_relay(self.resignal.rejoin())

    def _rejoin_asked(self, seen: int) -> None:
        """Host: the guest waits, and the newest reoffer it saw is `seen`."""
        if self.seat is not Seat.HOST or self._closed:
            return
        if self.attempt is None:
            log.info("the guest lost the link first")
            self.lost()
            return
        offered = self._offered_at
        stale = (
            seen < self.resignal.generation
            and offered is not None
            and self._loop.time() - offered >= NUDGE_SECONDS
        )
        if self._backing_off or stale:
            self._nudge.set()

    def _back(self) -> None:
        log.info("reconnected", extra={"fields": {"generation": self.resignal.generation}})
        self.attempt = None
        self.liveness.start(self._loop.time())
        self._reconnected()

    # -- host: attempts until one comes up -------------------------------------------------
    async def _lead(self) -> None:
        delay: float | None = None
        while not self._closed:
            assert self.attempt is not None
            self.attempt += 1
            self._changed()
            if await self._try():
                self._back()
                return
            log.info("reconnect attempt failed", extra={"fields": {"attempt": self.attempt}})
            self.peer.plans.advance()  # the next ICE plan (the first again after the last)
            if self._nudge.is_set():
                continue  # the guest never saw that reoffer: the next one now
            delay = backoff(delay)
            self._backing_off = True
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(delay):  # or until the guest asks
                    await self._nudge.wait()
            self._backing_off = False

    async def _try(self) -> bool:
        """One attempt: a new connection, its sealed offer, the answer, the channel open,
        all within `ATTEMPT_SECONDS` (gathering towards an unreachable STUN or TURN server
        counts too). An attempt that breaks (a bad answer) is only a failed attempt."""
        self._open = asyncio.Event()
        self._answer = self._loop.create_future()
        self._nudge.clear()
        self._offered_at = None
        self._offered = None
        try:
            async with asyncio.timeout(ATTEMPT_SECONDS):
                generation = await self.peer.replace()
                sdp = await self.peer.create_offer()
                sealed = self.resignal.reoffer(generation, sdp)
                self._offered = generation
                await self._send_relay(sealed)
                self._offered_at = self._loop.time()
                answer = await self._answer_or_nudge(self._answer)
                if answer is None:
                    return False
                await self.peer.accept_answer(answer)
                await self._open.wait()
        except TimeoutError:
            return False
        except Exception as exc:  # by class only: aiortc's text may quote the peer's SDP
            log.warning("reconnect attempt broke", extra={"fields": {"error": type(exc).__name__}})
            return False
        if not self.resignal.verify(self.peer.presented_fingerprint()):
            self._refused()
            return False
        return True

    async def _answer_or_nudge(self, answer: asyncio.Future[str]) -> str | None:
        """The guest's reanswer, or None when it says it never saw this reoffer."""
        nudged: asyncio.Future[Any] = asyncio.ensure_future(self._nudge.wait())
        waiting: set[asyncio.Future[Any]] = {answer, nudged}
        try:
            await asyncio.wait(waiting, return_when=asyncio.FIRST_COMPLETED)
        finally:
            nudged.cancel()
        if answer.done():
            return answer.result()
        log.info("the guest never saw this reoffer")
        return None

    # -- guest: answer the newest reoffer --------------------------------------------------
    def _reoffered(self, offer: Reoffered) -> None:
        if self.attempt is None:  # the host saw the link die first
            self.liveness.stop()
            self.attempt = 0
            self._lost_link()
        self.attempt += 1
        self._changed()
        self._pending = offer
        if not self._answering:
            self._answering = True
            self._spawn(self._answer_newest())

    async def _answer_newest(self) -> None:
        try:
            while self._pending is not None and not self._closed:
                offer, self._pending = self._pending, None
                self._open = asyncio.Event()
                try:
                    await self.peer.replace()
                    sdp = await self.peer.accept_offer(offer.sdp)
                except Exception as exc:  # a bad offer: wait for the host's next attempt
                    error = {"error": type(exc).__name__}  # not its text: it may quote the SDP
                    log.warning("reoffer could not be answered", extra={"fields": error})
                    continue
                if self._pending is None:  # no newer reoffer came meanwhile
                    await self._send_relay(self.resignal.reanswer(sdp))
        finally:
            self._answering = False

    def _verify(self) -> None:
        if self.resignal.verify(self.peer.presented_fingerprint()):
            self._back()
        else:
            self._refused()

    def _refused(self) -> None:
        log.warning("reconnect fingerprint mismatch")
        self._closed = True
        self._failed(
            "fingerprint_mismatch",
            "The new connection's certificate is not the one the other side sealed: ended.",
        )
