"""One file transfer, either way, as a state machine with no I/O (feature `files`).

The sender (`Outgoing`) takes the file from its user's browser in slices into a window
of at most `WINDOW_BYTES` not yet acknowledged, cuts it into chunks of
`files.CHUNK_BYTES` and hands them out to be sealed and sent (`next_chunk`); the
receiver's `file-ack` retires them. The receiver (`Incoming`) opens each chunk, hashes
it, keeps it until its user's download takes it (`take`) and acknowledges only then, so
a slow download slows the sender; it holds back the file's last chunk until the
SHA-256 of the whole file is the one the sender's `file-done` names. Either side holds
at most the window per transfer. After a reconnect the sender sends again from what the
receiver says it has (`file-resume`), or from the last acknowledged chunk.

Inputs are the user's actions and the peer's frames, each with `now`; outputs are the
frames to send (`Control`: the peer channel's durable stream; `Flow`: the files
channel) and `Changed` (the UI's file event; `progress` when only the figures moved).
A transfer that ends (complete, declined, cancelled, failed) frees its buffers at once.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orbitcore.errors import Refusal
from orbitcore.protocol import files as wire_files
from orbitcore.protocol import peer as wire
from orbitcore.protocol.files import CHUNK_BYTES, chunk_count, chunk_size

WINDOW_BYTES = 16 * 1024 * 1024  # the sender's unacknowledged bytes; the receiver's too
WINDOW_CHUNKS = WINDOW_BYTES // CHUNK_BYTES
UPLOAD_SLICE_MAX = 1024 * 1024
RATE_SECONDS = 3.0  # the rate is measured over this long


class FileState(StrEnum):
    OFFERED = "offered"
    TRANSFERRING = "transferring"
    COMPLETE = "complete"
    DECLINED = "declined"
    CANCELLED = "cancelled"
    FAILED = "failed"


FINAL = frozenset({FileState.COMPLETE, FileState.DECLINED, FileState.CANCELLED, FileState.FAILED})
REASONS = {
    "cancelled": "The transfer was cancelled.",
    "too_large": "The file is larger than the receiver accepts.",
    "hash_mismatch": "The file that arrived is not the one that was sent (its SHA-256 "
    "differs): it was discarded.",
    "bad_chunk": "A piece of the file arrived damaged or out of place: the file was discarded.",
    "download_interrupted": "The download stopped half-way: the file was discarded.",
    "session_ended": "The session ended before the file was complete.",
    "peer_cancelled": "The other person cancelled the transfer.",
}


class TransferRefusal(Refusal):
    """An action on a transfer that cannot be done; `extra` goes into the JSON body."""

    def __init__(self, status: int, code: str, reason: str, **extra: Any) -> None:
        super().__init__(status, code, reason)
        self.extra = extra


@dataclass(frozen=True)
class Control:
    """A frame for the peer channel (through the durable stream)."""

    frame: wire.FileFrame


@dataclass(frozen=True)
class Flow:
    """A frame for the files channel."""

    frame: wire_files.FilesFrame


@dataclass(frozen=True)
class Changed:
    """The UI's file event; `progress`: only the figures moved (the edge may skip some)."""

    progress: bool = False


Output = Control | Flow | Changed


class Transfer:
    """What both directions share: the offer, the state and its figures."""

    direction = ""

    def __init__(self, file_id: str, number: int, name: str, size: int, media_type: str) -> None:
        self.file_id, self.number = file_id, number
        self.name, self.size, self.media_type = name, size, media_type
        self.state = FileState.OFFERED
        self.error: dict[str, str] | None = None
        self.cancelled_by: str | None = None
        self.chunks = chunk_count(size)
        self._samples: deque[tuple[float, int]] = deque()

    @property
    def final(self) -> bool:
        return self.state in FINAL

    @property
    def transferred(self) -> int:
        return 0

    def held_bytes(self) -> int:
        """The file's bytes this side holds in memory."""
        return 0

    def public(self, now: float, *, link_up: bool = True) -> dict[str, Any]:
        rate = self._rate(now)
        left = self.size - self.transferred
        paused = self.state is FileState.TRANSFERRING and not link_up
        return {
            "id": self.file_id,
            "direction": self.direction,
            "name": self.name,
            "size": self.size,
            "type": self.media_type,
            "state": "paused" if paused else self.state.value,
            "transferred": self.transferred,
            "rate": rate,
            "eta_seconds": int(left / rate) if rate > 0 and not self.final else None,
            "error": self.error,
            "cancelled_by": self.cancelled_by,
            "held_bytes": self.held_bytes(),
        }

    def _sample(self, now: float) -> None:
        self._samples.append((now, self.transferred))
        while len(self._samples) > 2 and now - self._samples[1][0] >= RATE_SECONDS:
            self._samples.popleft()

    def _rate(self, now: float) -> int:
        if self.final or len(self._samples) < 2 or now - self._samples[-1][0] > RATE_SECONDS:
            return 0
        (t0, b0), (t1, b1) = self._samples[0], self._samples[-1]
        return int((b1 - b0) / (t1 - t0)) if t1 > t0 else 0

    # -- the end of a transfer ---------------------------------------------------------
    def _finish(self, state: FileState, code: str | None = None) -> None:
        self.state = state
        if code is not None:
            self.error = {"code": code, "reason": REASONS.get(code, REASONS["bad_chunk"])}
        self.free()

    def free(self) -> None:
        """Forget every byte of the file this side holds."""

    def cancel(self, now: float) -> list[Output]:
        """This side's user stops it."""
        if self.final:
            raise TransferRefusal(409, "file_finished", "This transfer is already over.")
        self.cancelled_by = "me"
        self._finish(FileState.CANCELLED)
        return [Control(wire.FileCancel(self.file_id, "cancelled")), Changed()]

    def fail(self, code: str) -> list[Output]:
        """This side found something wrong: the peer is told, the file discarded."""
        if self.final:
            return []
        self._finish(FileState.FAILED, code)
        return [Control(wire.FileCancel(self.file_id, code)), Changed()]

    def handle_file_cancel(self, frame: wire.FileCancel, now: float) -> list[Output]:
        if self.final:
            return []
        if frame.code == "cancelled":
            self.cancelled_by = "peer"
            self._finish(FileState.CANCELLED)
        else:
            self._finish(FileState.FAILED, frame.code)
        return [Changed()]

    def session_ended(self) -> None:
        if not self.final:
            self._finish(FileState.FAILED, "session_ended")


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


class Incoming(Transfer):
    """A file the peer offers this side's user."""

    direction = "incoming"

    def __init__(self, file_id: str, number: int, name: str, size: int, media_type: str) -> None:
        super().__init__(file_id, number, name, size, media_type)
        self.received = 0  # chunks received in order
        self.consumed = 0  # chunks the download took (acknowledged)
        self.reading = False  # a download reader is attached
        self._buffer: deque[bytes] = deque()  # chunks consumed..received
        self._hash = hashlib.sha256()
        self._expected: str | None = None
        self.verified = False

    @property
    def transferred(self) -> int:
        return min(self.size, self.consumed * CHUNK_BYTES)

    def held_bytes(self) -> int:
        return sum(len(c) for c in self._buffer)

    def public(self, now: float, *, link_up: bool = True) -> dict[str, Any]:
        return super().public(now, link_up=link_up) | {"download": self.reading}

    def free(self) -> None:
        self._buffer.clear()

    # -- the user ---------------------------------------------------------------------------
    def accept(self, now: float) -> list[Output]:
        self._offered()
        self.state = FileState.TRANSFERRING
        self._sample(now)
        return [Control(wire.FileAccept(self.file_id)), Changed(), *self._check_hash()]

    def decline(self, now: float) -> list[Output]:
        self._offered()
        self._finish(FileState.DECLINED)
        return [Control(wire.FileDecline(self.file_id)), Changed()]

    def _offered(self) -> None:
        if self.state is not FileState.OFFERED:
            raise TransferRefusal(
                409, "file_not_offered", "This file is not waiting for an answer."
            )

    def attach(self) -> None:
        """A download reader starts."""
        if self.state is FileState.COMPLETE:
            raise TransferRefusal(410, "file_gone", "This file was downloaded; nothing is kept.")
        if self.state is not FileState.TRANSFERRING:
            raise TransferRefusal(409, "file_not_accepted", "Accept the file first.")
        if self.reading:
            raise TransferRefusal(409, "already_downloading", "This file is already downloading.")
        if self.consumed > 0:
            raise TransferRefusal(410, "file_gone", "Part of this file was downloaded already.")
        self.reading = True

    def detach(self) -> list[Output]:
        """The download reader stopped: before the end, the file cannot be had any more."""
        self.reading = False
        if self.state is FileState.TRANSFERRING and self.consumed > 0:
            return self.fail("download_interrupted")
        return []

    def take(self, max_chunks: int, now: float) -> tuple[list[bytes], list[Output]]:
        """Chunks for the download (never the last before the hash is checked), and the
        acknowledgement for them."""
        if self.state is not FileState.TRANSFERRING:
            return [], []
        count = len(self._buffer)
        if not self.verified and self.received == self.chunks:
            count -= 1  # the last chunk waits for the SHA-256
        count = max(0, min(count, max_chunks))
        taken = [self._buffer.popleft() for _ in range(count)]
        self.consumed += count
        if self.verified and self.consumed == self.chunks:
            self._sample(now)
            self._finish(FileState.COMPLETE)
            return taken, [Flow(wire_files.FileAck(self.file_id, self.consumed)), Changed()]
        if not taken:
            return [], []
        self._sample(now)
        return taken, [Flow(wire_files.FileAck(self.file_id, self.consumed)), Changed(True)]

    def readable(self) -> bool:
        """`take` has something for the download (or the transfer is over)."""
        if self.state is not FileState.TRANSFERRING:
            return True
        if self.verified:
            return True
        return len(self._buffer) > (1 if self.received == self.chunks else 0)

    # -- the peer ------------------------------------------------------------------------------
    def chunk(self, index: int, plaintext: bytes | None) -> list[Output]:
        """Chunk `index`, opened (None: its seal did not open)."""
        if self.state is not FileState.TRANSFERRING:
            return []  # after the end, chunks still on their way; before accept: ignored
        if index < self.received:
            return []  # sent again after a reconnect: already here
        if (
            plaintext is None
            or index != self.received
            or index - self.consumed >= WINDOW_CHUNKS
            or index >= self.chunks
            or len(plaintext) != chunk_size(self.size, index)
        ):
            return self.fail("bad_chunk")
        self._buffer.append(plaintext)
        self._hash.update(plaintext)
        self.received += 1
        return [Changed(progress=True), *self._check_hash()]

    def handle_file_done(self, frame: wire.FileDone, now: float) -> list[Output]:
        if self.final or self._expected is not None:
            return []
        self._expected = frame.sha256
        return self._check_hash()

    def _check_hash(self) -> list[Output]:
        if (
            self.state is not FileState.TRANSFERRING
            or self.verified
            or self._expected is None
            or self.received != self.chunks
        ):
            return []
        if self._hash.hexdigest() != self._expected:
            return self.fail("hash_mismatch")
        self.verified = True
        return [Changed(progress=True)]

    def resume(self) -> list[wire_files.FilesFrame]:
        """What to tell the sender on a new connection: how far the download went (acks
        sent on the old connection may have been lost with it) and where to go on."""
        if self.state is FileState.TRANSFERRING:
            return [
                wire_files.FileAck(self.file_id, self.consumed),
                wire_files.FileResume(self.file_id, self.received),
            ]
        if self.state is FileState.COMPLETE:
            return [wire_files.FileAck(self.file_id, self.chunks)]
        return []
