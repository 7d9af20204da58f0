"""orbitd as a hostile file sender, for tests/test_files_hostile.py: the real daemon
(`python -m tests.hostile_files <orbitd flags>`), with one lie told by its file sender,
chosen by the environment's HOSTILE_FILES:

- `tag`: chunk 3 of every file it sends is changed after sealing (its tag fails);
- `hash`: its `file-done` names the SHA-256 of other bytes;
- `limit`: it ignores the other daemon's `file-limits` and offers any size.
"""

from __future__ import annotations

import os
import sys

from orbitcore.protocol import files as wire_files
from orbitcore.protocol import peer as wire
from orbitd import files, transfer, transfer_sender
from orbitd.cli import main

CORRUPT_INDEX = 3


def corrupt_chunks() -> None:
    pack = wire_files.pack_chunk

    def corrupted(number: int, index: int, sealed: bytes) -> bytes:
        if index == CORRUPT_INDEX:
            sealed = sealed[:-1] + bytes([sealed[-1] ^ 1])
        return pack(number, index, sealed)

    files.wire_files.pack_chunk = corrupted  # type: ignore[attr-defined]


def lie_about_the_hash() -> None:
    real = transfer_sender.Outgoing.take

    def take(
        self: transfer_sender.Outgoing, offset: int, data: bytes, now: float
    ) -> list[transfer.Output]:
        out = real(self, offset, data, now)
        return [
            transfer.Control(wire.FileDone(o.frame.file_id, "0" * 64))
            if isinstance(o, transfer.Control) and isinstance(o.frame, wire.FileDone)
            else o
            for o in out
        ]

    transfer_sender.Outgoing.take = take  # type: ignore[method-assign]


def ignore_limits() -> None:
    files.FileTransfers.handle_file_limits = lambda self, frame: None  # type: ignore[method-assign]


if __name__ == "__main__":
    {"tag": corrupt_chunks, "hash": lie_about_the_hash, "limit": ignore_limits}[
        os.environ["HOSTILE_FILES"]
    ]()
    sys.exit(main())
