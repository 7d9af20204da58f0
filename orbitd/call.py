"""Calls in a chat session: the I/O around `call_state` and `negotiation`.

Two WebRTC connections meet in the daemon:
  browser ──media link (loopback)──► this daemon ══peer connection══► the other daemon
The browser's camera and microphone arrive on the media link and go to the
peer as the same *encoded* packets (no decode, no re-encode); the peer's
media comes back the same way. Keyframe requests travel upstream to the source.

The call's frames (`call-*`) and renegotiation (`rtc-*`) go over the chat
data channel. The peer connection keeps one audio and one video transceiver,
both sendrecv, for the whole session; a call only sets their tracks.
A headless source (settings `video_source`, `audio_source`) takes the
browser's place for its kind.

Neither connection is owned here: the peer connection is `orbitd.peer.Peer`'s
(`Call` sees it as a `CallPeer` and hears it as its `MediaEvents`), the media
link is `orbitd.media.browser_link.BrowserLink`'s. `Call` registers no handler
on either; it decides what goes where.

Imported with the session (aiortc is heavy); `install_passthrough` is called here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from aiortc import MediaStreamTrack, RTCRtpReceiver, RTCRtpSender

from orbitcore.protocol.frames import Frame
from orbitcore.protocol.peer import CallFrame, RtcFrame

from . import call_state as calls
from . import negotiation as neg
from .chat import ChatError
from .crypto import Seat
from .media.browser_link import BrowserLink
from .media.passthrough import (
    SenderTrack,
    drain,
    forwarded_track,
    install_passthrough,
    link_keyframe_requests,
)
from .peer import MediaEvents
from .settings import Config

log = logging.getLogger("orbitd.call")
KINDS = ("audio", "video")
Emit = Callable[[dict[str, Any]], None]
Step = Callable[[], Awaitable[None]]


class CallPeer(Protocol):
    """What a call uses of the peer connection (`orbitd.peer.Peer`)."""

    def attach_media(self, events: MediaEvents | None) -> None: ...

    def add_media(self) -> None: ...

    def sender(self, kind: str) -> RTCRtpSender | None: ...

    def set_outgoing(self, kind: str, track: MediaStreamTrack) -> None: ...

    async def renegotiate_offer(self) -> str: ...

    async def renegotiate_answer(self) -> str: ...

    async def apply_remote_description(self, sdp: str, kind: str) -> None: ...

    def path(self) -> str | None: ...


class Call:
    def __init__(
        self,
        config: Config,
        seat: Seat,
        peer: CallPeer,
        send_peer: Callable[[Frame], None],
        emit: Emit,
    ) -> None:
        install_passthrough()
        self.config = config
        self.seat = seat
        self.peer = peer
        self._send_peer = send_peer
        self._emit = emit
        self.control = calls.CallControl()
        self.negotiator = neg.Negotiator(seat, can_rollback=False, has_remote_description=True)
        self.link: BrowserLink | None = None  # the browser's media link
        self._peer_receivers: dict[str, RTCRtpReceiver] = {}
        # Peer → browser, per kind: the link sender's track (it outlives a replaced peer
        # connection, whose receivers end) and the peer receiver it forwards now.
        self._to_browser: dict[str, SenderTrack] = {}
        self._incoming: dict[str, RTCRtpReceiver] = {}
        self._headless: dict[str, MediaStreamTrack] = {}
        self._outgoing: dict[str, SenderTrack] = {}  # the peer-facing senders' tracks
        self._steps: asyncio.Queue[Step] = asyncio.Queue()
        self._worker = asyncio.ensure_future(self._work())
        self._timers: list[asyncio.TimerHandle] = []
        self._loop = asyncio.get_running_loop()
        peer.attach_media(self)

    # -- what the UI sees --------------------------------------------------------
    def snapshot(self) -> dict[str, Any]:
        c = self.control
        return {
            "state": c.state.value,
            "call_id": c.call_id,
            "muted": dict(c.muted),
            "peer_muted": dict(c.peer_muted),
            "path": self.path(),
            "encrypted": True,
        }

    def path(self) -> str | None:
        """How the peer connection runs: loopback, LAN direct, Internet direct or relayed."""
        return self.peer.path()

    def _publish(self) -> None:
        self._emit({"type": "call", "call": self.snapshot()})

    # -- running outputs, strictly in order ------------------------------------------
    async def _work(self) -> None:
        while True:
            step = await self._steps.get()
            try:
                await step()
            except Exception:
                log.exception("call step failed")
            finally:
                self._steps.task_done()

    def _now(self) -> float:
        return self._loop.time()

    def _feed(self, outputs: list[Any]) -> None:
        """Queue the outputs of either machine; they run one at a time, in order."""
        for out in outputs:
            self._steps.put_nowait(functools.partial(self._run, out))

    async def _run(self, out: Any) -> None:
        now = self._now()
        if isinstance(out, calls.SendToPeer):
            self._send_peer(out.frame)
        elif isinstance(out, calls.StartMedia):
            await self._start_media()
        elif isinstance(out, calls.StopMedia):
            await self._stop_media()
        elif isinstance(out, calls.SetMuted):
            self._connect_outgoing(out.kind)
            self._publish()
        elif isinstance(out, calls.Notify):
            self._emit(out.event)
            if out.event.get("type") == "call-peer-muted":
                self._publish()
        elif isinstance(out, calls.ScheduleTick):
            self._at(out.at, lambda: self._feed(self.control.tick(self._now())))
        elif isinstance(out, calls.CallError):
            log.info("call refused", extra={"fields": {"code": out.code}})
        elif isinstance(out, calls.StateChanged):
            self._publish()
        elif isinstance(out, neg.CreateOffer):
            await self._create_offer()
        elif isinstance(out, neg.CreateAnswer):
            await self._create_answer()
        elif isinstance(out, neg.ApplyRemoteDescription):
            await self._apply_remote(out.kind, out.sdp)
        elif isinstance(out, neg.ScheduleTick):
            self._at(out.at, lambda: self._feed(self.negotiator.tick(self._now())))
        elif isinstance(out, neg.GaveUp):
            self._feed(self.control.ended(now))
        elif isinstance(out, neg.NegotiationFailed):
            log.warning("renegotiation failed", extra={"fields": {"step": out.step}})
        elif isinstance(out, neg.StateChanged):
            self._negotiated(out.state)
        else:
            frame = neg.to_frame(out)
            if frame is not None:
                self._send_peer(frame)

    def _at(self, at: float, callback: Callable[[], None]) -> None:
        self._timers.append(self._loop.call_at(at, callback))

    # -- the user's actions --------------------------------------------------------------
    def _act(self, outputs: list[Any]) -> dict[str, Any]:
        errors = [o for o in outputs if isinstance(o, calls.CallError)]
        if errors:
            raise ChatError(409, errors[0].code, errors[0].message)
        self._feed(outputs)
        return self.snapshot()

    def call(self) -> dict[str, Any]:
        return self._act(self.control.call(self._now()))

    def accept(self) -> dict[str, Any]:
        return self._act(self.control.accept(self._now()))

    def decline(self) -> dict[str, Any]:
        return self._act(self.control.decline(self._now()))

    def hang_up(self) -> dict[str, Any]:
        return self._act(self.control.hang_up(self._now()))

    def mute(self, kind: object, muted: object) -> dict[str, Any]:
        if kind not in KINDS:
            raise ChatError(422, "invalid_kind", "kind must be audio or video.")
        if not isinstance(muted, bool):
            raise ChatError(422, "invalid_muted", "muted must be true or false.")
        return self._act(self.control.mute(str(kind), muted, self._now()))

    def handle(self, frame: CallFrame | RtcFrame) -> None:
        """A call or renegotiation frame from the peer (read and checked already)."""
        now = self._now()
        if isinstance(frame, CallFrame):
            self._feed(self.control.handle(frame, now))
        else:
            self._feed(self.negotiator.handle(frame, now))

    # -- the peer connection -----------------------------------------------------------
    async def _start_media(self) -> None:
        if self.seat is Seat.HOST:
            self.peer.add_media()
        self._attach_headless()
        self._feed(self.negotiator.negotiation_needed(self._now()))

    def _attach_headless(self) -> None:
        for kind, spec in (
            ("video", self.config.video_source),
            ("audio", self.config.audio_source),
        ):
            if not spec or kind in self._headless:
                continue
            from .media.sources import audio_source, video_source

            self._headless[kind] = video_source(spec) if kind == "video" else audio_source(spec)
        for kind in KINDS:  # headless sources, or the browser's media if it is linked already
            self._connect_outgoing(kind)

    async def _stop_media(self) -> None:
        for track in self._headless.values():
            track.stop()
        self._headless.clear()
        for outgoing in self._outgoing.values():
            outgoing.switch(None)
        await self.close_link()

    async def _create_offer(self) -> None:
        try:
            sdp = await self.peer.renegotiate_offer()
        except Exception as exc:
            self._feed(self.negotiator.local_offer_failed(str(exc), self._now()))
            return
        self._feed(self.negotiator.local_offer_created(sdp, self._now()))

    async def _create_answer(self) -> None:
        self._attach_headless()  # our side sends too
        try:
            sdp = await self.peer.renegotiate_answer()
        except Exception as exc:  # made from the peer's offer: its class, never its text
            self._feed(self.negotiator.local_answer_failed(type(exc).__name__, self._now()))
            return
        self._feed(self.negotiator.local_answer_created(sdp, self._now()))

    async def _apply_remote(self, kind: str, sdp: str) -> None:
        try:
            await self.peer.apply_remote_description(sdp, kind)
        except Exception as exc:  # aiortc's text may quote the peer's SDP: never logged
            self._feed(self.negotiator.remote_description_failed(type(exc).__name__, self._now()))
            return
        self._feed(self.negotiator.remote_description_applied(self._now()))

    def _negotiated(self, state: neg.NegotiationState) -> None:
        """A renegotiation settled: if the peer's media is already here (the track events
        fire once per transceiver, i.e. only in the first call), the call is up."""
        if (
            state is neg.NegotiationState.STABLE
            and self.control.state is calls.CallState.CONNECTING
            and self._peer_receivers
        ):
            self._feed(self.control.media_flowing(self._now()))

    # `MediaEvents`: what the peer connection tells the call
    def signaling_changed(self, state: str) -> None:
        self._feed(self.negotiator.signaling_state_changed(state, self._now()))

    def ice_changed(self, state: str) -> None:
        self._feed(self.negotiator.ice_state_changed(state, self._now()))

    def peer_track(self, track: MediaStreamTrack, receiver: RTCRtpReceiver) -> None:
        """The other daemon's audio or video: to the browser if it is linked, else drained."""
        self._peer_receivers[track.kind] = receiver
        drain(track)  # read it always; forwarded copies subscribe to the same packets
        self._connect_incoming(track.kind)
        if self.control.state is calls.CallState.CONNECTING:
            self._feed(self.control.media_flowing(self._now()))

    def reconnected(self) -> None:
        """The session's peer connection was replaced (`orbitd.reconnect`); the sealed
        reoffer carried the media sections and `Peer` the outgoing tracks, so the call
        goes on over the new connection. Its renegotiation starts afresh there, and the
        keyframe links move to the new senders (the browser's incoming tracks move as the
        new connection's tracks arrive, in `peer_track`)."""
        self.negotiator = neg.Negotiator(self.seat, can_rollback=False, has_remote_description=True)
        for kind in KINDS:
            self._connect_outgoing(kind)
        self._feed(self.control.link_back(self._now()))
        self._publish()

    def link_lost(self) -> None:
        """The peer connection is gone; a call in progress waits for the new one at most
        its connect timeout, then ends with `media_failed` (the UI says so)."""
        self._feed(self.control.link_lost(self._now()))

    # -- the browser's media link ---------------------------------------------------------
    async def browser_offer(self, sdp: object) -> dict[str, str]:
        if not isinstance(sdp, str) or "m=" not in sdp:
            raise ChatError(422, "invalid_sdp", "Send the browser's SDP offer.")
        if self.control.state not in calls.IN_CALL:
            raise ChatError(409, "no_call", "There is no call to send media to.")
        await self.close_link()
        link = self.link = BrowserLink(self.config, self._link_track)
        try:
            await link.accept_offer(sdp)
            for kind in KINDS:
                self._connect_incoming(kind)
            answer = await link.answer()
        except Exception as exc:
            await self.close_link()
            raise ChatError(
                422, "invalid_sdp", f"The media offer could not be used: {exc}"
            ) from None
        return {"sdp": answer, "type": "answer"}

    def _link_track(self, link: BrowserLink, kind: str) -> None:
        if link is self.link:
            self._connect_outgoing(kind)

    def _sender_track(self, kind: str) -> tuple[SenderTrack, RTCRtpSender] | None:
        """The peer-facing sender's track for `kind`, put in place once per session."""
        sender = self.peer.sender(kind)
        if sender is None:
            return None
        track = self._outgoing.get(kind)
        if track is None:
            track = self._outgoing[kind] = SenderTrack(kind)
        self.peer.set_outgoing(kind, track)
        return track, sender

    def _connect_outgoing(self, kind: str) -> None:
        """Browser (or headless source) → peer; nothing while muted."""
        found = self._sender_track(kind)
        if found is None:
            return
        track, sender = found
        receiver = self.link.receiver(kind) if self.link is not None else None
        if self.control.muted.get(kind):
            track.switch(None)
        elif kind in self._headless:
            track.switch(self._headless[kind])
        elif receiver is not None:
            track.switch(forwarded_track(receiver))
            link_keyframe_requests(sender, receiver)
        else:
            track.switch(None)

    def _connect_incoming(self, kind: str) -> None:
        """Peer → browser."""
        receiver = self._peer_receivers.get(kind)
        if receiver is None or self.link is None:
            return
        sender = self.link.sender(kind)
        if sender is None:
            return
        track = self._to_browser.get(kind)
        if track is None or sender.track is not track:  # a new link
            track = self._to_browser[kind] = SenderTrack(kind)
            sender.replaceTrack(track)
        elif self._incoming.get(kind) is receiver:
            return
        track.switch(forwarded_track(receiver))  # a new link, or a new peer connection
        link_keyframe_requests(sender, receiver)
        self._incoming[kind] = receiver

    async def close_link(self) -> None:
        link, self.link = self.link, None
        if link is not None:
            for kind in KINDS:
                self._connect_outgoing(kind)  # the browser's media is gone: headless or nothing
            await link.close()
        for track in self._to_browser.values():
            track.stop()
        self._to_browser.clear()
        self._incoming.clear()

    async def close(self) -> None:
        self._feed(self.control.ended(self._now()))
        with contextlib.suppress(TimeoutError):  # let the end of a call reach the UI
            await asyncio.wait_for(self._steps.join(), 2)
        for timer in self._timers:
            timer.cancel()
        await self.close_link()
        for track in [*self._headless.values(), *self._outgoing.values()]:
            track.stop()
        self.peer.attach_media(None)
        self._worker.cancel()
