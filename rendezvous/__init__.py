"""ChatOrbit rendezvous: mints tokens, applies the session rules, relays first signaling."""

from __future__ import annotations

__version__ = "0.1.0"
