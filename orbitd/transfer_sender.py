"""The sending side of a file transfer (`orbitd.transfer`): a state machine with no I/O.

It takes the file from its user's browser in slices into a window of at most
`WINDOW_BYTES` not yet acknowledged, cuts it into chunks and hands them out to be sealed
and sent; the receiver's `file-ack` retires them, its `file-resume` says where to go on
after a reconnect.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

from orbitcore.protocol import files as wire_files
from orbitcore.protocol import peer as wire
from orbitcore.protocol.files import CHUNK_BYTES

from .transfer import (
    UPLOAD_SLICE_MAX,
    WINDOW_BYTES,
    Changed,
    Control,
    FileState,
    Output,
    Transfer,
    TransferRefusal,
)


class Outgoing(Transfer):
    """A file of this side's user, going to the peer."""

    direction = "outgoing"

    def __init__(self, file_id: str, number: int, name: str, size: int, media_type: str) -> None:
        super().__init__(file_id, number, name, size, media_type)
        self.upload_offset = 0  # bytes taken from the browser
        self.acked = 0  # chunks the receiver has taken (cumulative)
        self.next_send = 0  # the next chunk index to send
        self.awaiting_resume = False  # a new connection: wait for `file-resume`
        self._window: deque[bytes] = deque()  # chunks acked.. (whole, plaintext)
        self._tail = bytearray()  # the start of the next chunk
        self._hash = hashlib.sha256()
        self._done_sent = False

    def offer(self) -> list[Output]:
        frame = wire.FileOffer(self.file_id, self.number, self.name, self.size, self.media_type)
        out: list[Output] = [Control(frame), Changed()]
        if self.size == 0:  # nothing will come from the browser: done already
            self._done_sent = True
            out.insert(1, Control(wire.FileDone(self.file_id, self._hash.hexdigest())))
        return out

    @property
    def transferred(self) -> int:
        return min(self.size, self.acked * CHUNK_BYTES)

    def held_bytes(self) -> int:
        return sum(len(c) for c in self._window) + len(self._tail)

    def public(self, now: float, *, link_up: bool = True) -> dict[str, Any]:
        return super().public(now, link_up=link_up) | {"upload_offset": self.upload_offset}

    def free(self) -> None:
        self._window.clear()
        self._tail = bytearray()

    # -- from the browser ----------------------------------------------------------------
    def check_slice(self, offset: int, length: int) -> None:
        """Refuses a slice that cannot be taken now or ever (not one that must wait)."""
        if self.final:
            raise TransferRefusal(409, "file_not_sending", "This transfer is over.")
        if length > UPLOAD_SLICE_MAX:
            raise TransferRefusal(
                413, "chunk_too_large", f"Send at most {UPLOAD_SLICE_MAX} bytes per request."
            )
        if offset != self.upload_offset or offset + length > self.size:
            raise TransferRefusal(
                409,
                "wrong_offset",
                "The daemon expects the file's bytes from another offset.",
                next_offset=self.upload_offset,
            )

    def has_room(self, length: int) -> bool:
        """The slice fits in the window now (and the receiver has accepted)."""
        return self.state is FileState.TRANSFERRING and self.held_bytes() + length <= WINDOW_BYTES

    def take(self, offset: int, data: bytes, now: float) -> list[Output]:
        """A slice of the file from the browser (checked, and with room for it)."""
        self.check_slice(offset, len(data))
        self._hash.update(data)
        self.upload_offset += len(data)
        joined = bytes(self._tail) + data if self._tail else data
        whole = len(joined) - len(joined) % CHUNK_BYTES
        for start in range(0, whole, CHUNK_BYTES):
            self._window.append(joined[start : start + CHUNK_BYTES])
        self._tail = bytearray(joined[whole:])
        out: list[Output] = [Changed(progress=True)]
        if self.upload_offset == self.size and not self._done_sent:
            if self._tail:
                self._window.append(bytes(self._tail))
                self._tail = bytearray()
            self._done_sent = True
            out.insert(0, Control(wire.FileDone(self.file_id, self._hash.hexdigest())))
        return out

    def next_chunk(self) -> tuple[int, bytes] | None:
        """The next chunk to seal and send, if one is due."""
        if self.state is not FileState.TRANSFERRING or self.awaiting_resume:
            return None
        position = self.next_send - self.acked
        if position >= len(self._window):
            return None
        self.next_send += 1
        return self.next_send - 1, self._window[position]

    # -- from the peer ---------------------------------------------------------------------
    def handle_file_accept(self, frame: wire.FileAccept, now: float) -> list[Output]:
        if self.state is not FileState.OFFERED:
            return []
        self.state = FileState.TRANSFERRING
        self._sample(now)
        return [Changed()]

    def handle_file_decline(self, frame: wire.FileDecline, now: float) -> list[Output]:
        if self.state is not FileState.OFFERED:
            return []
        self._finish(FileState.DECLINED)
        return [Changed()]

    def handle_file_ack(self, frame: wire_files.FileAck, now: float) -> list[Output]:
        if self.state is not FileState.TRANSFERRING:
            return []
        if not self.acked <= frame.next <= self.acked + len(self._window):
            return self.fail("bad_chunk")  # acknowledges what it cannot have
        for _ in range(frame.next - self.acked):
            self._window.popleft()
        self.acked = frame.next
        self.next_send = max(self.next_send, self.acked)
        self._sample(now)
        if self._done_sent and self.acked == self.chunks:
            self._finish(FileState.COMPLETE)
            return [Changed()]
        return [Changed(progress=True)]

    def handle_file_resume(self, frame: wire_files.FileResume, now: float) -> list[Output]:
        if self.final:
            return []
        self.awaiting_resume = False
        self.next_send = min(max(frame.next, self.acked), self.acked + len(self._window))
        return []

    # -- the connection under it -----------------------------------------------------------
    def link_lost(self) -> None:
        """Chunks in flight are lost with the connection: again from the last acknowledged
        one, or from where the receiver says (`file-resume`, which is waited for)."""
        self.next_send = self.acked
        self.awaiting_resume = self.state is FileState.TRANSFERRING
