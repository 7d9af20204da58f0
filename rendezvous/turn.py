"""The ICE servers a participant receives: STUN URLs as configured, TURN URLs with
time-limited credentials in the TURN REST convention (what coturn checks with
`use-auth-secret`).

The user name is `<expiry unix time>:<random id>` (nothing about the participant in it)
and the credential is base64(HMAC-SHA1(secret, user name)). Pure: the clock and the
randomness are arguments. Nothing here logs; a credential is never logged.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Callable, Sequence
from datetime import datetime

from orbitcore.protocol.relay import IceServer, IceServers


def random_id() -> str:
    """The random part of a TURN user name (no `:`, no identity)."""
    return secrets.token_urlsafe(12)


def turn_credential(secret: str, username: str) -> str:
    """base64(HMAC-SHA1(secret, username)): coturn's `use-auth-secret` password."""
    digest = hmac.new(secret.encode(), username.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode("ascii")


def mint(
    secret: str,
    ttl_seconds: int,
    now: datetime,
    *,
    turn_urls: Sequence[str],
    stun_urls: Sequence[str] = (),
    make_id: Callable[[], str] = random_id,
) -> IceServers | None:
    """The ICE servers to hand out at `now`, or None when none are configured.

    All TURN URLs share one user name and credential (one `RTCIceServer`); each STUN URL
    list is one more server without credentials."""
    servers: list[IceServer] = []
    ttl: int | None = None
    expires_at: int | None = None
    if turn_urls:
        ttl = ttl_seconds
        expires_at = int(now.timestamp()) + ttl_seconds
        username = f"{expires_at}:{make_id()}"
        servers.append(
            IceServer(
                urls=tuple(turn_urls),
                username=username,
                credential=turn_credential(secret, username),
            )
        )
    if stun_urls:
        servers.append(IceServer(urls=tuple(stun_urls)))
    if not servers:
        return None
    return IceServers(ice_servers=tuple(servers), ttl_seconds=ttl, expires_at=expires_at)
