"""How a chat session (`orbitd.session`) comes up: the steps of the handshake and the
first connection (`orbitd.first_connect`) carried out, the chat set up once the peer is
verified (conversation, call, durable stream, file transfers, reconnector), then the
connection's path watched while it runs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from typing import TYPE_CHECKING

from .call import Call
from .chat import Conversation
from .durable import DurableStream
from .files import FileTransfers
from .first_connect import AnswerReoffer, FirstOutput, NextPlan
from .handshake import (
    Failed,
    MakeAnswer,
    MakeOffer,
    Phase,
    PhaseChanged,
    SendRelay,
    UseAnswer,
    Verified,
)
from .peer_packets import FEATURE as LARGE_PACKETS
from .reconnect import Reconnector

if TYPE_CHECKING:
    from .session import ChatSession

log = logging.getLogger("orbitd.session")
PATH_CHECK_SECONDS = 1.0  # aiortc has no event for a new selected pair: a look each second


class ChatSetup:
    """A session's way from the handshake to a running chat, and its path watch."""

    def __init__(self, session: ChatSession) -> None:
        self.session = session
        self._path_timer: asyncio.TimerHandle | None = None

    async def run(self, outputs: Sequence[FirstOutput]) -> None:
        """The first connection's outputs, in order, until the session ends."""
        session = self.session
        for out in outputs:
            if session.ended is not None:
                return
            if isinstance(out, SendRelay):
                await session.socket.send(out.frame)
            elif isinstance(out, PhaseChanged):
                if out.phase is Phase.EXCHANGING_KEYS:
                    session.connecting.start()
                if out.phase is not Phase.READY:  # `Verified` follows and publishes with the SAS
                    session.publish()
            elif isinstance(out, MakeOffer | MakeAnswer):
                generation = session.peer.generation
                if isinstance(out, MakeOffer):
                    sdp = await session.peer.create_offer()
                else:
                    sdp = await session.peer.accept_offer(out.offer_sdp)
                if session.peer.generation == generation:  # not replaced by the next plan's
                    await self.run(session.handshake.local_description(sdp))
            elif isinstance(out, NextPlan | AnswerReoffer):
                await self.run(await session.connecting.next_plan(out))
            elif isinstance(out, UseAnswer):
                await session.peer.accept_answer(out.answer_sdp)
            elif isinstance(out, Verified):
                self._verified(out)
            elif isinstance(out, Failed):
                await session.failed(out)

    def connect_due(self, outputs: list[FirstOutput]) -> None:
        """A deadline of the first connection: the next plan, or `connect_timeout`."""
        if self.session.conversation is None and self.session.ended is None:
            self.session.spawn(self.run(outputs))

    def _verified(self, out: Verified) -> None:
        session = self.session
        session.connecting.cancel()
        agreed = session.handshake.limits
        if agreed is not None and agreed.max_message_length is not None:
            session.max_message_length = agreed.max_message_length  # the host's, sealed
        session.conversation = Conversation(
            out.keys,
            session.max_message_length,
            keyed_signature=session.has_feature("keyed-signature"),
        )
        peer_frames = session.peer_frames
        session.call = Call(
            session.config, session.seat, session.peer, peer_frames.send, session.emit
        )
        session.sas = out.sas
        log.info("chat ready", extra={"fields": {"role": session.seat.value}})
        if session.has_feature("resume"):
            session.durable = DurableStream()
        if session.has_feature("files"):
            session.files = FileTransfers(
                send_key=out.keys.file_send,
                recv_key=out.keys.file_recv,
                channel=session.peer.files,
                send_control=peer_frames.send,
                emit=session.emit,
                limit_bytes=session.config.file_size_max_bytes,
            )
            session.files.start()
        session.path = session.peer.path()
        if session.has_feature(LARGE_PACKETS):
            session.peer.agree_large_packets()
        self._arm_path_watch()
        if session.has_feature("reconnect"):
            session.reconnect = Reconnector(
                session.seat,
                out.keys,
                session.token,
                session.peer,
                resignal=session.first.resignal_now(),  # at the generation that came up
                send_relay=session.socket.send,
                send_peer=peer_frames.send,
                changed=session.publish,
                lost_link=peer_frames.link_lost,
                reconnected=peer_frames.reconnected,
                failed=self._reconnect_failed,
            )
            session.reconnect.start()
        if session.lan_peer is not None and session.reconnect is None:
            # Nothing more travels on a LAN link (a rendezvous socket still brings the
            # status and the end): renegotiation is on the data channel from here. With
            # `reconnect` it stays open: a new connection is signalled through it.
            session.spawn(session.socket.close())
        session.publish()
        peer_frames.ready()

    def _reconnect_failed(self, code: str, reason: str) -> None:
        self.session.spawn(self.session.failed(Failed(code, reason)))

    # -- the path ----------------------------------------------------------------------
    def stop(self) -> None:
        """The session ends: the path is no longer watched."""
        if self._path_timer is not None:
            self._path_timer.cancel()

    def _arm_path_watch(self) -> None:
        loop = asyncio.get_running_loop()
        self._path_timer = loop.call_later(PATH_CHECK_SECONDS, self._check_path)

    def _check_path(self) -> None:
        """The path the connection runs on (from the selected candidate pair), published
        when it changes: a new pair, a replaced connection, none while it is down."""
        session = self.session
        if session.ended is not None:
            return
        path = session.peer.path()
        if path != session.path:
            log.info("path", extra={"fields": {"from": session.path, "to": path}})
            session.path = path
            session.publish()
        self._arm_path_watch()
