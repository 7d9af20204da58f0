"""Which limit of the machine stopped a load: descriptors, ports or memory.

A failure that names one becomes a line in the table ("limit: descriptors ..."), not a
traceback; anything else stays an ordinary failure.
"""

from __future__ import annotations

import errno

DESCRIPTORS = "descriptors"
PORTS = "ports"
MEMORY = "memory"

_BY_ERRNO = {
    errno.EMFILE: DESCRIPTORS,
    errno.ENFILE: DESCRIPTORS,
    errno.EADDRNOTAVAIL: PORTS,
    errno.EADDRINUSE: PORTS,
    errno.ENOMEM: MEMORY,
    errno.ENOBUFS: MEMORY,
}
_BY_TEXT = {
    "Too many open files": DESCRIPTORS,
    "Cannot assign requested address": PORTS,
    "Address already in use": PORTS,
    "Cannot allocate memory": MEMORY,
    "No buffer space available": MEMORY,
}


def limit_of(exc: BaseException) -> str | None:
    """The limit `exc` says was hit, or None. Looks through aiohttp's wrapping
    (`os_error`) and the exception's cause."""
    if isinstance(exc, MemoryError):
        return MEMORY
    seen: BaseException | None = exc
    for _ in range(4):  # exc, its os_error, its cause...
        if seen is None:
            break
        number = getattr(seen, "errno", None)
        if isinstance(number, int) and number in _BY_ERRNO:
            return _BY_ERRNO[number]
        for text, limit in _BY_TEXT.items():
            if text in str(seen):
                return limit
        seen = getattr(seen, "os_error", None) or seen.__cause__
    return None
