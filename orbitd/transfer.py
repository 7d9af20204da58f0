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

The sender is `orbitd.transfer_sender.Outgoing`, the receiver
`orbitd.transfer_receiver.Incoming`; this module holds what they share.

Inputs are the user's actions and the peer's frames, each with `now`; outputs are the
frames to send (`Control`: the peer channel's durable stream; `Flow`: the files
channel) and `Changed` (the UI's file event; `progress` when only the figures moved).
A transfer that ends (complete, declined, cancelled, failed) frees its buffers at once.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from orbitcore.errors import Refusal
from orbitcore.protocol import files as wire_files
from orbitcore.protocol import peer as wire
from orbitcore.protocol.files import CHUNK_BYTES, chunk_count

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
