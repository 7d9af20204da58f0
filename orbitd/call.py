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

Imported with the session (aiortc is heavy); `install_passthrough` is called here.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiortc import (
    MediaStreamTrack,
    RTCPeerConnection,
    RTCRtpReceiver,
    RTCRtpSender,
    RTCRtpTransceiver,
    RTCSessionDescription,
)

from . import call_state as calls
from . import negotiation as neg
from .chat import ChatError
from .crypto import Seat
from .ice import rtc_configuration
from .media.passthrough import (
    SenderTrack,
    drain,
    forwarded_track,
    install_passthrough,
    link_keyframe_requests,
    prefer_codecs,
)
from .settings import Config

log = logging.getLogger("orbitd.call")
KINDS = ("audio", "video")
Emit = Callable[[dict[str, Any]], None]
Step = Callable[[], Awaitable[None]]


def _kind_of(transceiver: RTCRtpTransceiver) -> str:
    return str(transceiver.kind)


class Call:
    def __init__(
        self,
        config: Config,
        seat: Seat,
        pc: RTCPeerConnection,
        send_peer: Callable[[dict[str, Any]], None],
        emit: Emit,
    ) -> None:
        install_passthrough()
        self.config = config
        self.seat = seat
        self.pc = pc
        self._send_peer = send_peer
        self._emit = emit
        self.control = calls.CallControl()
        self.negotiator = neg.Negotiator(seat, can_rollback=False, has_remote_description=True)
        self.link: RTCPeerConnection | None = None  # the browser's media link
        self._peer_receivers: dict[str, RTCRtpReceiver] = {}
        self._link_receivers: dict[str, RTCRtpReceiver] = {}
        self._headless: dict[str, MediaStreamTrack] = {}
        self._outgoing: dict[str, SenderTrack] = {}  # the peer-facing senders' tracks
        self._steps: asyncio.Queue[Step] = asyncio.Queue()
        self._worker = asyncio.ensure_future(self._work())
        self._timers: list[asyncio.TimerHandle] = []
        self._loop = asyncio.get_running_loop()
        pc.on("track", self._peer_track)
        pc.on("signalingstatechange", self._signaling_changed)
        pc.on("iceconnectionstatechange", self._ice_changed)

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
        try:  # aioice's nominated pair is private: read it defensively
            ice = self.pc.sctp.transport.transport if self.pc.sctp else None
            pair = ice._connection._nominated.get(1) if ice is not None else None
        except AttributeError:
            return None
        if pair is None:
            return None
        local, remote = pair.local_candidate, pair.remote_candidate
        if "relay" in (local.type, remote.type):
            return "relayed"
        if remote.host.startswith("127.") or remote.host == "::1":
            return "loopback"
        if local.type == "host" and remote.type in ("host", "prflx") and _private(remote.host):
            return "lan-direct"
        return "internet-direct"

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

    def handle(self, frame: dict[str, Any]) -> None:
        """A call-* or rtc-* frame from the peer."""
        now = self._now()
        if str(frame.get("type", "")).startswith("call-"):
            self._feed(self.control.handle(frame, now))
        else:
            self._feed(self.negotiator.handle(frame, now))

    # -- the peer connection -----------------------------------------------------------
    def _transceivers(self) -> dict[str, RTCRtpTransceiver]:
        found: dict[str, RTCRtpTransceiver] = {}
        for transceiver in self.pc.getTransceivers():
            found.setdefault(_kind_of(transceiver), transceiver)
        return found

    async def _start_media(self) -> None:
        if self.seat is Seat.HOST:
            present = self._transceivers()
            for kind in KINDS:
                if kind not in present:
                    transceiver = self.pc.addTransceiver(kind, direction="sendrecv")
                    prefer_codecs(transceiver)
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
            await self.pc.setLocalDescription(await self.pc.createOffer())
        except Exception as exc:
            self._feed(self.negotiator.local_offer_failed(str(exc), self._now()))
            return
        self._feed(self.negotiator.local_offer_created(self.pc.localDescription.sdp, self._now()))

    async def _create_answer(self) -> None:
        for transceiver in self.pc.getTransceivers():  # our side sends too
            if _kind_of(transceiver) in KINDS:
                transceiver.direction = "sendrecv"
        self._attach_headless()
        try:
            await self.pc.setLocalDescription(await self.pc.createAnswer())
        except Exception as exc:
            self._feed(self.negotiator.local_answer_failed(str(exc), self._now()))
            return
        self._feed(self.negotiator.local_answer_created(self.pc.localDescription.sdp, self._now()))

    async def _apply_remote(self, kind: str, sdp: str) -> None:
        try:
            await self.pc.setRemoteDescription(RTCSessionDescription(sdp=sdp, type=kind))
        except Exception as exc:
            self._feed(self.negotiator.remote_description_failed(str(exc), self._now()))
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

    def _signaling_changed(self) -> None:
        self._feed(self.negotiator.signaling_state_changed(self.pc.signalingState, self._now()))

    def _ice_changed(self) -> None:
        self._feed(self.negotiator.ice_state_changed(self.pc.iceConnectionState, self._now()))

    def _peer_track(self, track: MediaStreamTrack) -> None:
        """The other daemon's audio or video: to the browser if it is linked, else drained."""
        receiver = next(
            (t.receiver for t in self.pc.getTransceivers() if t.receiver.track is track), None
        )
        if receiver is None:
            drain(track)
            return
        self._peer_receivers[track.kind] = receiver
        drain(track)  # read it always; forwarded copies subscribe to the same packets
        self._connect_incoming(track.kind)
        if self.control.state is calls.CallState.CONNECTING:
            self._feed(self.control.media_flowing(self._now()))

    # -- the browser's media link ---------------------------------------------------------
    async def browser_offer(self, sdp: object) -> dict[str, str]:
        if not isinstance(sdp, str) or "m=" not in sdp:
            raise ChatError(422, "invalid_sdp", "Send the browser's SDP offer.")
        if self.control.state not in calls.IN_CALL:
            raise ChatError(409, "no_call", "There is no call to send media to.")
        await self.close_link()
        link = RTCPeerConnection(configuration=rtc_configuration(self.config))
        self.link = link
        link.on("track", lambda track: self._link_track(link, track))
        # Chromium's <uuid>.local candidates cannot be resolved from this host and cost
        # aioice a second each: drop them; its checks reach us and we learn its address.
        lines = [
            line
            for line in sdp.split("\r\n")
            if not (line.startswith("a=candidate:") and ".local " in line)
        ]
        try:
            await link.setRemoteDescription(
                RTCSessionDescription(sdp="\r\n".join(lines), type="offer")
            )
            for transceiver in link.getTransceivers():
                transceiver.direction = "sendrecv"
                prefer_codecs(transceiver)
            for kind in KINDS:
                self._connect_incoming(kind)
            await link.setLocalDescription(await link.createAnswer())
        except Exception as exc:
            await self.close_link()
            raise ChatError(
                422, "invalid_sdp", f"The media offer could not be used: {exc}"
            ) from None
        return {"sdp": link.localDescription.sdp, "type": "answer"}

    def _link_track(self, link: RTCPeerConnection, track: MediaStreamTrack) -> None:
        receiver = next(
            (t.receiver for t in link.getTransceivers() if t.receiver.track is track), None
        )
        drain(track)
        if receiver is None or link is not self.link:
            return
        self._link_receivers[track.kind] = receiver
        self._connect_outgoing(track.kind)

    def _sender_track(self, kind: str) -> SenderTrack | None:
        """The peer-facing sender's track for `kind`, put in place once per session."""
        transceiver = self._transceivers().get(kind)
        if transceiver is None:
            return None
        track = self._outgoing.get(kind)
        if track is None:
            track = self._outgoing[kind] = SenderTrack(kind)
        if transceiver.sender.track is not track:
            transceiver.sender.replaceTrack(track)
        return track

    def _connect_outgoing(self, kind: str) -> None:
        """Browser (or headless source) → peer; nothing while muted."""
        track = self._sender_track(kind)
        if track is None:
            return
        if self.control.muted.get(kind):
            track.switch(None)
        elif kind in self._headless:
            track.switch(self._headless[kind])
        elif (receiver := self._link_receivers.get(kind)) is not None:
            track.switch(forwarded_track(receiver))
            link_keyframe_requests(self._transceivers()[kind].sender, receiver)
        else:
            track.switch(None)

    def _connect_incoming(self, kind: str) -> None:
        """Peer → browser."""
        receiver = self._peer_receivers.get(kind)
        if receiver is None or self.link is None:
            return
        sender = _sender_of_kind(self.link, kind)
        if sender is not None and sender.track is None:
            sender.replaceTrack(forwarded_track(receiver))
            link_keyframe_requests(sender, receiver)

    async def close_link(self) -> None:
        link, self.link = self.link, None
        self._link_receivers.clear()
        if link is not None:
            for kind in KINDS:
                self._connect_outgoing(kind)  # the browser's media is gone: headless or nothing
            await link.close()

    async def close(self) -> None:
        self._feed(self.control.ended(self._now()))
        with contextlib.suppress(TimeoutError):  # let the end of a call reach the UI
            await asyncio.wait_for(self._steps.join(), 2)
        for timer in self._timers:
            timer.cancel()
        await self.close_link()
        for track in [*self._headless.values(), *self._outgoing.values()]:
            track.stop()
        self._worker.cancel()


def _sender_of_kind(pc: RTCPeerConnection, kind: str) -> RTCRtpSender | None:
    for transceiver in pc.getTransceivers():
        if _kind_of(transceiver) == kind:
            return transceiver.sender
    return None


def _private(host: str) -> bool:
    import ipaddress

    try:
        return ipaddress.ip_address(host).is_private
    except ValueError:
        return host.endswith(".local")
