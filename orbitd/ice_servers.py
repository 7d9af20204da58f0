"""The ICE servers the rendezvous handed this session: from the join response, then
fresh ones (`ice-servers`) in answer to `ice-refresh` before the TURN credentials expire.

A value object on the daemon's monotonic clock (the rendezvous's clock may differ: only
`ttl_seconds`, a duration, is trusted). Credentials are never logged (`IceServer` has no
repr of them, and this module logs none).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from orbitcore.protocol import relay
from orbitcore.protocol.frames import ProtocolError

log = logging.getLogger("orbitd.ice")

REFRESH_AT = 0.8
"""Ask for fresh credentials when this share of their life is gone (a fifth is left)."""


@dataclass(frozen=True)
class IceServers:
    """The rendezvous's ICE servers, received at `received_at` (monotonic seconds)."""

    servers: tuple[relay.IceServer, ...]
    received_at: float
    ttl_seconds: int | None = None

    @property
    def expires_at(self) -> float | None:
        """When the TURN credentials expire (monotonic); None without TURN."""
        if self.ttl_seconds is None:
            return None
        return self.received_at + self.ttl_seconds

    @property
    def refresh_at(self) -> float | None:
        """When to ask for fresh ones (monotonic); None when they never expire."""
        if self.ttl_seconds is None:
            return None
        return self.received_at + REFRESH_AT * self.ttl_seconds

    @classmethod
    def of(cls, frame: relay.IceServers, now: float) -> IceServers:
        return cls(frame.ice_servers, now, frame.ttl_seconds)


def from_join(joined: dict[str, Any], now: float) -> IceServers | None:
    """The ICE servers in a join response, read as the relay channel's `ice-servers`
    frame; None when there are none, or when they are malformed (logged, never a crash:
    the session goes on without them)."""
    if joined.get("ice_servers") is None:
        return None
    body = {
        "type": relay.IceServers.TYPE,
        "ice_servers": joined.get("ice_servers"),
        "ttl_seconds": joined.get("ice_ttl_seconds"),
        "expires_at": joined.get("ice_expires_at"),
    }
    try:
        frame = relay.CHANNEL.parse_as(relay.IceServers, body)
    except ProtocolError as exc:
        log.warning(
            "protocol_error",
            extra={"fields": {"channel": "join", "member": exc.member, "code": exc.code}},
        )
        return None
    return IceServers.of(frame, now)
