"""The receiving side of a file transfer (`orbitd.transfer`): a state machine with no I/O.

It opens, checks and hashes each chunk, keeps it until its user's download takes it and
acknowledges only then (a slow download slows the sender), and holds back the file's
last chunk until the SHA-256 of the whole file is the one the sender's `file-done` names.
"""

from __future__ import annotations

import hashlib
from collections import deque
from typing import Any

from orbitcore.protocol import files as wire_files
from orbitcore.protocol import peer as wire
from orbitcore.protocol.files import CHUNK_BYTES, chunk_size

from .transfer import (
    WINDOW_CHUNKS,
    Changed,
    Control,
    FileState,
    Flow,
    Output,
    Transfer,
    TransferRefusal,
)


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
