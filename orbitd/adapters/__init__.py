"""Adapters: the only modules that touch a library's private API.

aiortc, aioice and zeroconf give the daemon no public way to do a few things it
needs (read the certificate the peer presented, see which ICE pair won, forward
encoded media, forget a gone peer's records...). Every such use is in one module
per library, behind a small named function, with a `REQUIRED` list that
`check()` verifies against the installed library (tests/test_adapters_*.py):

- `orbitd.adapters.aiortc_internals`: aiortc and aioice (heavy: import it only
  when a session or call starts);
- `orbitd.adapters.zeroconf_internals`: zeroconf (imported with LAN discovery).

`pyproject.toml` caps these libraries below their next minor release for the same
reason: a new release is taken only once these tests pass with it.
"""

from __future__ import annotations
