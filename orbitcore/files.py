"""The one way either program writes a file it keeps: whole, synced, private.

The content goes to a temporary file beside the target (same directory, so the
same file system), is synced to disk, and is then renamed over the target. A
reader sees the old file or the new one, never half of either, and the file
never exists with a mode other than `mode` (0600 unless said otherwise).
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

PRIVATE = 0o600


def write_atomic(path: Path, content: bytes, *, mode: int = PRIVATE, keep: bool = False) -> bool:
    """Put `content` at `path`; return whether it went in.

    With `keep`, a file already at `path` stays as it is (the new one is linked into
    place, which fails if anything is there): two processes making the same file at
    once end up with one of the two, whole. Without it, the file is replaced.
    """
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(6)}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, mode)
    try:
        with os.fdopen(fd, "wb") as fh:
            os.fchmod(fh.fileno(), mode)  # exactly `mode`, whatever the umask
            fh.write(content)
            fh.flush()
            os.fsync(fh.fileno())
        if keep:
            try:
                os.link(tmp, path)
            except FileExistsError:
                return False
        else:
            os.replace(tmp, path)
        _sync_directory(path.parent)
        return True
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def _sync_directory(path: Path) -> None:
    """Make the rename itself durable (not every file system can sync a directory)."""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
