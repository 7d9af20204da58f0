"""The peer side of a chat session (`orbitd.session`): the connection's state, each
data-channel frame read once and routed by its family (chat, call, file, rtc, link,
durable stream) to its one handler, a refused frame answered with `error`, and what goes to
the peer: a durable frame through the stream (feature `resume`), others as they are.
"""

from __future__ import annotations

import contextlib
import logging
import time
from typing import TYPE_CHECKING, Any

from orbitcore.protocol import peer as wire
from orbitcore.protocol.frames import Frame, ProtocolError, dispatch

from .chat import ChatError, ChatOutput, Conversation, Send
from .durable import DURABLE, DurableStream, StreamFull
from .peer import PeerState

if TYPE_CHECKING:
    from .session import ChatSession

log = logging.getLogger("orbitd.session")
EARLY_MAX = 64  # frames kept that came before this side verified the connection


class PeerFrames:
    """A session's frames from and to the peer, over the data channel."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session
        # The peer may verify the connection a moment before this side does and send at
        # once (its first `seq`): kept until this side is ready, then read in order.
        # Dropping one would leave a gap the durable stream never fills.
        self._early: list[tuple[int, str]] = []

    def state(self, state: PeerState) -> None:
        """The connection's state (`Peer`): to the reconnector once the chat runs, to the
        first connection before."""
        session = self.session
        if session.reconnect is not None and session.ended is None:
            session.reconnect.peer_state(state)
        elif state is PeerState.OPEN and session.conversation is None and session.ended is None:
            fingerprint = session.peer.presented_fingerprint()
            session.spawn(session.setup.run(session.first.connected(fingerprint)))
        elif (
            state in (PeerState.FAILED, PeerState.CLOSED)
            and session.ended is None
            and session.conversation
        ):
            session.peer_lost = True
            session.publish()

    # -- in --------------------------------------------------------------------------
    def message(self, text: str) -> None:
        """A data-channel frame: read once, routed by its family (chat, call, rtc) to
        its one `handle_<type>`; one that is refused is answered with `error`."""
        session = self.session
        if session.ended is not None:
            return
        if session.conversation is None:
            if len(self._early) < EARLY_MAX:
                self._early.append((session.peer.generation, text))
            return
        try:
            frame = wire.CHANNEL.parse(text)
            if isinstance(frame, wire.Error):
                log.info(
                    "the peer refused a frame",
                    extra={"fields": {"code": frame.code, "in_reply_to": frame.in_reply_to}},
                )
            elif isinstance(frame, wire.LinkFrame) and session.reconnect is not None:
                dispatch(session.reconnect, frame)
            elif isinstance(frame, wire.Seq) and session.durable is not None:
                got = session.durable.handle_seq(frame)
                self.send_raw(got.ack)
                if got.refused is not None:
                    self.refuse(got.refused)
                elif got.frame is not None:
                    self._route(got.frame)
            elif isinstance(frame, wire.SeqAck) and session.durable is not None:
                session.durable.handle_seq_ack(frame)
            else:
                self._route(frame)
        except ProtocolError as refused:
            self.refuse(refused)

    def ready(self) -> None:
        """This side verified the connection: the frames that came before, in order (only
        those of this connection)."""
        early, self._early = self._early, []
        for generation, text in early:
            if generation == self.session.peer.generation:
                self.message(text)

    def _route(self, frame: Frame) -> None:
        """A conversation, call or renegotiation frame, to its handler."""
        session = self.session
        assert session.conversation is not None
        try:
            if isinstance(frame, wire.ChatFrame):
                self.chat(dispatch(session.conversation, frame))
            elif isinstance(frame, wire.CallFrame | wire.RtcFrame) and session.call is not None:
                if isinstance(frame, wire.CallFrame) and not session.has_feature("calls"):
                    raise ProtocolError(
                        "Calls were not agreed for this session.",
                        frame_type=frame.TYPE,
                        code="feature_unavailable",
                    )
                session.call.handle(frame)
            elif isinstance(frame, wire.FileFrame):
                if session.files is None:
                    raise ProtocolError(
                        "Files were not agreed for this session.",
                        frame_type=frame.TYPE,
                        code="feature_unavailable",
                    )
                session.files.handle(frame)
            else:
                raise ProtocolError(f"`{frame.TYPE}` is not expected here.", frame_type=frame.TYPE)
        except ProtocolError as refused:
            self.refuse(refused)

    def refuse(self, refused: ProtocolError) -> None:
        fields = {
            "channel": "peer",
            "code": refused.code,
            "type": wire.CHANNEL.logged_type(refused),
        }
        log.warning("protocol_error", extra={"fields": fields})
        if refused.frame_type is None:  # not even its type could be read
            self.session.emit(
                {"type": "error", "code": "bad_peer_frame", "message": "The peer sent garbage."}
            )
        if refused.frame_type != wire.Error.TYPE:  # an error is never answered
            self.send(wire.refusal(refused))

    def chat(self, outputs: list[ChatOutput]) -> None:
        """The conversation's outputs: frames to the peer, events to the UI."""
        session = self.session
        for out in outputs:
            if isinstance(out, Send):
                self.send(out.frame)
            elif out.event.get("type") == "peer-ended":
                session.spawn(session.end("manually_ended", tell_peer=False, tell_rendezvous=False))
            else:
                session.emit(out.event)

    # -- out -------------------------------------------------------------------------
    def send(self, frame: Frame) -> None:
        """A frame for the peer: a durable one through the stream (feature `resume`:
        queued until acknowledged, sent again on a new connection), others as they are."""
        durable = self.session.durable
        if durable is not None and isinstance(frame, DURABLE):
            try:
                envelope = durable.send(frame)
            except StreamFull:
                log.warning("durable stream full", extra={"fields": {"type": frame.TYPE}})
                return
            if envelope is None:
                return  # queued: it goes out on the next connection
            frame = envelope
        self.send_raw(frame)

    def send_raw(self, frame: Frame) -> None:
        with contextlib.suppress(ConnectionError):
            self.session.peer.send(frame.encode())

    def send_durable(
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
            self.send_raw(envelope)
        return message.public()

    # -- a connection lost and back (`orbitd.reconnect`) -------------------------------
    def link_lost(self) -> None:
        """The connection is gone: durable frames wait for the next."""
        if self.session.durable is not None:
            self.session.durable.disconnected()
        if self.session.call is not None:
            self.session.call.link_lost()
        if self.session.files is not None:
            self.session.files.link_lost()

    def reconnected(self) -> None:
        """A new connection is up and verified: our ack and every unacknowledged durable
        frame go out again, in order."""
        session = self.session
        if session.durable is not None and session.conversation is not None:
            for frame in session.durable.connected():
                self.send_raw(frame)
            queued = [
                f.message_id for f in session.durable.unacked() if isinstance(f, wire.Message)
            ]
            self.chat(session.conversation.went_out(queued))
        if session.call is not None:
            session.call.reconnected()
        if session.files is not None:
            session.files.link_back()
        session.publish()
