"""ChatOrbit daemon: one per user; serves the local UI and talks to the peer's daemon."""

from __future__ import annotations

__version__ = "0.1.0"
