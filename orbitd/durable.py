"""The durable stream: exactly once, in order, across any number of reconnects.

magic-wormhole's dilation is the model. Every durable frame (the conversation's, call
control's and file control's) travels in a `seq` envelope with a per-direction sequence number and
the sender's cumulative acknowledgement of what it has received. A frame stays queued
until the other side's cumulative ack covers it; on a new connection the whole queue is
sent again, in order, and the receiver acknowledges duplicates but drops them.
Everything is in memory and bounded: a full queue refuses the next frame (`StreamFull`)
instead of growing.

A state machine with no I/O: the session sends what it returns. Frames of the
connection itself (renegotiation, keepalive, `error`) do not go through it.
"""

from __future__ import annotations

import logging
from collections import deque
from dataclasses import dataclass

from orbitcore.protocol import peer as wire
from orbitcore.protocol.frames import Frame, ProtocolError

log = logging.getLogger("orbitd.durable")
DEFAULT_LIMIT_FRAMES = 1000
DEFAULT_LIMIT_BYTES = 8 * 1024 * 1024
DURABLE = (wire.ChatFrame, wire.CallFrame, wire.FileFrame)


class StreamFull(Exception):
    """The other side has not acknowledged this many frames: nothing more is taken."""


@dataclass(frozen=True)
class Queued:
    seq: int
    frame: Frame
    size: int


@dataclass(frozen=True)
class Received:
    """What a `seq` envelope brought: the frame to act on (None for a duplicate, or for
    one refused: `refused` says why), and the acknowledgement to send back."""

    frame: Frame | None
    ack: wire.SeqAck
    refused: ProtocolError | None = None


class DurableStream:
    def __init__(
        self, *, limit_frames: int = DEFAULT_LIMIT_FRAMES, limit_bytes: int = DEFAULT_LIMIT_BYTES
    ) -> None:
        self.limit_frames = limit_frames
        self.limit_bytes = limit_bytes
        self.is_connected = True  # a stream starts on the connection the handshake verified
        self._next_seq = 1
        self._queue: deque[Queued] = deque()
        self._queued_bytes = 0
        self._received = 0  # the highest sequence number taken in order (cumulative)

    # -- sending -----------------------------------------------------------------------------
    def send(self, frame: Frame) -> wire.Seq | None:
        """Queue `frame`; the envelope to send now, or None while disconnected."""
        if not isinstance(frame, DURABLE):
            raise TypeError(f"{frame.TYPE} is not a durable frame")
        size = len(frame.encode())
        if len(self._queue) >= self.limit_frames or self._queued_bytes + size > self.limit_bytes:
            raise StreamFull(
                f"{len(self._queue)} frames are waiting for the other side; "
                "nothing more is taken until it acknowledges them."
            )
        queued = Queued(self._next_seq, frame, size)
        self._next_seq += 1
        self._queue.append(queued)
        self._queued_bytes += size
        return self._envelope(queued) if self.is_connected else None

    def _envelope(self, queued: Queued) -> wire.Seq:
        return wire.Seq(queued.seq, self._received, queued.frame.to_dict())

    # -- receiving ---------------------------------------------------------------------------
    def handle_seq(self, envelope: wire.Seq) -> Received:
        """A `seq` envelope from the other side."""
        if envelope.seq < 1 or envelope.ack < 0:
            raise ProtocolError("`seq` counts from 1 and `ack` from 0.", frame_type="seq")
        self._retire(envelope.ack)
        if envelope.seq <= self._received:
            return Received(None, self._ack())  # a resend of one we have: ack, drop
        if envelope.seq != self._received + 1:
            raise ProtocolError(
                f"`seq` {envelope.seq} skips ahead of {self._received + 1}.", frame_type="seq"
            )
        self._received = envelope.seq
        try:
            frame = wire.CHANNEL.parse(envelope.frame)
            if not isinstance(frame, DURABLE):
                raise ProtocolError(
                    f"`{frame.TYPE}` does not travel in `seq`.", frame_type=frame.TYPE
                )
        except ProtocolError as refused:  # taken (and acked) all the same: never resent
            return Received(None, self._ack(), refused)
        return Received(frame, self._ack())

    def handle_seq_ack(self, ack: wire.SeqAck) -> list[Frame]:
        """The other side's cumulative acknowledgement; the frames it retires."""
        return self._retire(ack.ack)

    def _retire(self, ack: int) -> list[Frame]:
        if ack < 0 or ack >= self._next_seq:
            raise ProtocolError(f"`ack` {ack} covers frames never sent.", frame_type="seq-ack")
        retired = []
        while self._queue and self._queue[0].seq <= ack:
            queued = self._queue.popleft()
            self._queued_bytes -= queued.size
            retired.append(queued.frame)
        return retired

    def _ack(self) -> wire.SeqAck:
        return wire.SeqAck(self._received)

    # -- the connection under it -------------------------------------------------------------
    def connected(self) -> list[Frame]:
        """A new connection: our cumulative ack, then every unacknowledged frame, in order."""
        self.is_connected = True
        return [self._ack(), *(self._envelope(q) for q in self._queue)]

    def disconnected(self) -> None:
        self.is_connected = False

    def unacked(self) -> list[Frame]:
        """What the other side has not acknowledged (at the end: not delivered)."""
        return [q.frame for q in self._queue]

    def wipe(self) -> None:
        self._queue.clear()
        self._queued_bytes = 0
