"""An audio/video call as the user sees it, as a state machine with no I/O.

    idle ── call ──> outgoing (our invite rings there) ── peer accepts ──┐
    idle ── invite ─> incoming (theirs rings here) ────── we accept ─────┤
                                                                         v
    idle <── hang up / decline / timeout / session ended ── connecting ──> active
                                                     (media started)   (media flowing)

Inputs: the user's actions (`call`, `accept`, `decline`, `hang_up`, `mute`),
the peer's frames (`handle`, one `handle_<type>` each), what the media layer
reports (`media_flowing`), the session ending (`ended`) and the clock
(`tick`); every one takes `now` (monotonic seconds). Outputs are instructions.

Frames: `orbitcore.protocol.peer`'s `CallFrame`s (`call-invite`, `call-accept`,
`call-decline`, `call-hangup`, `call-mute`), read and checked before they come here.
`call_id` is 128 random bits as 32 lowercase hex digits, new for every call;
every frame names the call it is about, so a stale one is recognised.

Glare (both press call before either invite arrives): the invite with the
lower call_id, compared as strings, wins. The side whose invite lost takes
the winning one as if it had rung and accepts it; the side whose invite won
ignores the losing invite and then receives that accept. Both are in one call
(the winner's call_id) and each has started its media once. Equal ids (never,
in practice) make both sides accept the same call, which also ends well.

An invite nobody answers is withdrawn after `ring_timeout` (45 s) with a
`call-hangup` "no_answer"; the ringing side gives up on its own a little
later in case that frame is lost. A call that does not get media flowing
within `connect_timeout` is hung up ("media_failed").

Errors answer one input and echo it (`CallError.answering`): the peer's frame,
or {"action": ...} for the user's. They are for the log and the UI; nothing
is sent back, so two confused peers cannot bounce errors between them.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

from orbitcore.protocol.frames import dispatch
from orbitcore.protocol.peer import (
    CallAccept,
    CallDecline,
    CallFrame,
    CallHangup,
    CallInvite,
    CallMute,
)

log = logging.getLogger("orbitd.call")

RING_TIMEOUT = 45.0
RING_GRACE = 5.0  # the ringing side waits this much longer than the caller
CONNECT_TIMEOUT = 30.0
KINDS = ("audio", "video")


def new_call_id() -> str:
    return secrets.token_hex(16)


class CallState(StrEnum):
    IDLE = "idle"
    OUTGOING = "outgoing"
    INCOMING = "incoming"
    CONNECTING = "connecting"
    ACTIVE = "active"


IN_CALL = (CallState.CONNECTING, CallState.ACTIVE)
AboutACall = CallInvite | CallAccept | CallDecline | CallHangup | CallMute


@dataclass(frozen=True)
class SendToPeer:
    frame: CallFrame


@dataclass(frozen=True)
class StartMedia:
    """Add our audio and video to the connection (and renegotiate)."""


@dataclass(frozen=True)
class StopMedia:
    """Stop sending our audio and video, and stop showing the peer's."""


@dataclass(frozen=True)
class SetMuted:
    kind: str
    muted: bool


@dataclass(frozen=True)
class Notify:
    """An event for the user's UI."""

    event: dict[str, Any]


@dataclass(frozen=True)
class ScheduleTick:
    at: float


@dataclass(frozen=True)
class CallError:
    code: str
    message: str
    answering: CallFrame | dict[str, Any]  # the frame, or {"action": ...}, this answers


@dataclass(frozen=True)
class StateChanged:
    state: CallState


Output = (
    SendToPeer
    | StartMedia
    | StopMedia
    | SetMuted
    | Notify
    | ScheduleTick
    | CallError
    | StateChanged
)


class CallControl:
    def __init__(
        self,
        *,
        new_id: Callable[[], str] = new_call_id,
        ring_timeout: float = RING_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
    ) -> None:
        self._new_id = new_id
        self.ring_timeout = ring_timeout
        self.connect_timeout = connect_timeout
        self.state = CallState.IDLE
        self.call_id: str | None = None
        self.media = False  # StartMedia was emitted for this call
        self.muted = dict.fromkeys(KINDS, False)
        self.peer_muted = dict.fromkeys(KINDS, False)
        self._deadline: float | None = None
        self._link_down = False  # the peer connection is being rebuilt (orbitd.reconnect)

    # -- helpers ----------------------------------------------------------------------
    def _set_state(self, state: CallState) -> list[Output]:
        if state is self.state:
            return []
        log.info("call %s -> %s", self.state.value, state.value)
        self.state = state
        return [StateChanged(state)]

    def _arm(self, at: float) -> list[Output]:
        self._deadline = at
        return [ScheduleTick(at)]

    def _id(self) -> str:
        assert self.call_id is not None
        return self.call_id

    def _connect(self, now: float) -> list[Output]:
        """The call is accepted (by either side): start our media."""
        self.media = True
        return [
            StartMedia(),
            *self._set_state(CallState.CONNECTING),
            *self._arm(now + self.connect_timeout),
        ]

    def _end(self, reason: str, *, tell: SendToPeer | None = None) -> list[Output]:
        call_id = self.call_id
        out: list[Output] = [tell] if tell is not None else []
        if self.media:
            out.append(StopMedia())
        self.call_id = None
        self.media = False
        self.muted = dict.fromkeys(KINDS, False)
        self.peer_muted = dict.fromkeys(KINDS, False)
        self._deadline = None
        self._link_down = False
        out += self._set_state(CallState.IDLE)
        out.append(Notify({"type": "call-ended", "call_id": call_id, "reason": reason}))
        return out

    @staticmethod
    def _refuse(code: str, message: str, answering: CallFrame | dict[str, Any]) -> list[Output]:
        log.info("call: %s", message)
        return [CallError(code, message, answering)]

    def _unknown(self, frame: AboutACall) -> list[Output]:
        return self._refuse(
            "unknown_call",
            f"A {frame.TYPE} for call {frame.call_id!r}, which is not the call here "
            f"(state {self.state.value}).",
            frame,
        )

    def _ours(self, frame: AboutACall) -> bool:
        return self.call_id is not None and frame.call_id == self.call_id

    # -- the user ----------------------------------------------------------------------
    def call(self, now: float) -> list[Output]:
        if self.state is CallState.INCOMING:
            # Pressing call while the other person's call rings here: the same wish, one call.
            return self.accept(now)
        if self.state is not CallState.IDLE:
            return self._refuse(
                "busy", f"There is already a call ({self.state.value}).", {"action": "call"}
            )
        self.call_id = self._new_id()
        return [
            SendToPeer(CallInvite(self.call_id)),
            *self._set_state(CallState.OUTGOING),
            *self._arm(now + self.ring_timeout),
        ]

    def accept(self, now: float) -> list[Output]:
        if self.state is not CallState.INCOMING:
            return self._refuse("no_incoming_call", "No call is ringing.", {"action": "accept"})
        return [SendToPeer(CallAccept(self._id())), *self._connect(now)]

    def decline(self, now: float) -> list[Output]:
        if self.state is not CallState.INCOMING:
            return self._refuse("no_incoming_call", "No call is ringing.", {"action": "decline"})
        return self._end("declined", tell=SendToPeer(CallDecline(self._id(), "declined")))

    def hang_up(self, now: float) -> list[Output]:
        if self.state is CallState.IDLE:
            return self._refuse("no_call", "There is no call to hang up.", {"action": "hang_up"})
        if self.state is CallState.INCOMING:
            return self.decline(now)
        return self._end("hung_up", tell=SendToPeer(CallHangup(self._id(), "hung_up")))

    def mute(self, kind: str, on: bool, now: float) -> list[Output]:
        action = {"action": "mute", "kind": kind, "muted": on}
        if kind != "audio" and kind != "video":
            return self._refuse("bad_kind", f"Cannot mute {kind!r}.", action)
        if self.state not in IN_CALL:
            return self._refuse("no_call", "There is no call to mute.", action)
        if self.muted[kind] is on:
            return []
        self.muted[kind] = on
        media: Literal["audio", "video"] = "audio" if kind == "audio" else "video"
        return [SetMuted(kind, on), SendToPeer(CallMute(self._id(), media, on))]

    # -- the peer ----------------------------------------------------------------------
    def handle(self, frame: CallFrame, now: float) -> list[Output]:
        """One call frame from the peer, to its `handle_<type>`."""
        outputs: list[Output] = dispatch(self, frame, now)
        return outputs

    def handle_call_invite(self, frame: CallInvite, now: float) -> list[Output]:
        theirs = frame.call_id
        if self.state is CallState.IDLE:
            self.call_id = theirs
            return [
                *self._set_state(CallState.INCOMING),
                *self._arm(now + self.ring_timeout + RING_GRACE),
                Notify({"type": "call-incoming", "call_id": theirs}),
            ]
        if self.state is CallState.OUTGOING:
            assert self.call_id is not None
            if theirs > self.call_id:
                log.info("call: both called; ours (the lower id) stands")
                return []
            log.info("call: both called; theirs (the lower id) wins, accepting it")
            self.call_id = theirs
            return [SendToPeer(CallAccept(theirs)), *self._connect(now)]
        if theirs == self.call_id:
            return []  # already ringing or in this very call
        log.info("call: an invite while busy, declined")
        return [SendToPeer(CallDecline(theirs, "busy"))]

    def handle_call_accept(self, frame: CallAccept, now: float) -> list[Output]:
        if not self._ours(frame):
            return self._unknown(frame)
        if self.state is CallState.OUTGOING:
            return self._connect(now)
        if self.state in IN_CALL:
            return []  # both accepted the same call (equal ids)
        return self._unknown(frame)

    def handle_call_decline(self, frame: CallDecline, now: float) -> list[Output]:
        if not self._ours(frame) or self.state is not CallState.OUTGOING:
            return self._unknown(frame)
        return self._end("busy" if frame.reason == "busy" else "peer_declined")

    def handle_call_hangup(self, frame: CallHangup, now: float) -> list[Output]:
        if not self._ours(frame):
            return self._unknown(frame)
        reason: str
        if frame.reason in ("no_answer", "media_failed"):
            reason = frame.reason
        elif self.state is CallState.INCOMING:
            reason = "peer_cancelled"
        else:
            reason = "peer_hung_up"
        return self._end(reason)

    def handle_call_mute(self, frame: CallMute, now: float) -> list[Output]:
        if not self._ours(frame) or self.state not in IN_CALL:
            return self._unknown(frame)
        kind, muted = frame.kind, frame.muted
        if self.peer_muted[kind] is muted:
            return []
        self.peer_muted[kind] = muted
        return [
            Notify(
                {"type": "call-peer-muted", "call_id": self.call_id, "kind": kind, "muted": muted}
            )
        ]

    # -- media, session, clock -------------------------------------------------------------
    def media_flowing(self, now: float) -> list[Output]:
        """The peer's media arrives (the first frame of a remote track)."""
        if self.state is not CallState.CONNECTING:
            return []
        self._deadline = None
        return self._set_state(CallState.ACTIVE)

    def link_lost(self, now: float) -> list[Output]:
        """The peer connection is gone and being rebuilt: a call in progress waits for the
        new one at most `connect_timeout`, then ends with `media_failed`."""
        if self.state not in IN_CALL or self._link_down:
            return []
        self._link_down = True
        return self._arm(now + self.connect_timeout)

    def link_back(self, now: float) -> list[Output]:
        """A new connection carries the call (its media sections came with the reoffer)."""
        if not self._link_down:
            return []
        self._link_down = False
        if self.state is CallState.ACTIVE:
            self._deadline = None
        return []

    def ended(self, now: float) -> list[Output]:
        """The session (and with it the connection) is over: nobody is left to tell."""
        if self.state is CallState.IDLE:
            return []
        return self._end("session_ended")

    def tick(self, now: float) -> list[Output]:
        if self._deadline is None or now < self._deadline:
            return []
        if self.state is CallState.OUTGOING:
            return self._end("no_answer", tell=SendToPeer(CallHangup(self._id(), "no_answer")))
        if self.state is CallState.INCOMING:
            return self._end("no_answer")
        if self.state is CallState.CONNECTING or self._link_down:
            return self._end(
                "media_failed", tell=SendToPeer(CallHangup(self._id(), "media_failed"))
            )
        return []
