"""Two daemons in network namespaces that see each other: helpers for the LAN tests."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orbitd.identity import Identity
from orbitd.lan.invites import SignedInvite, new_session_id
from tests.netns import Host, NetnsLan, NsDaemon


async def start(host: Host, home: Path, name: str) -> NsDaemon:
    return await NsDaemon.start(
        host, home / name, "--profile", name, "--visible", "--", "--display-name", name
    )


async def fingerprint_of(daemon: NsDaemon) -> str:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200
    fingerprint: str = state["fingerprint"]
    return fingerprint


async def sees(daemon: NsDaemon, fingerprint: str) -> dict[str, Any]:
    peers = await daemon.nearby_until(lambda p: any(x["fingerprint"] == fingerprint for x in p))
    return next(p for p in peers if p["fingerprint"] == fingerprint)


async def pair(lan: NetnsLan, home: Path) -> tuple[NsDaemon, NsDaemon, str, str]:
    """alice on h1 and bob on h2, each listing the other."""
    h1, h2 = lan.hosts[0], lan.hosts[1]
    alice, bob = await asyncio.gather(start(h1, home, "alice"), start(h2, home, "bob"))
    alice_fp, bob_fp = await fingerprint_of(alice), await fingerprint_of(bob)
    await asyncio.gather(sees(alice, bob_fp), sees(bob, alice_fp))
    return alice, bob, alice_fp, bob_fp


async def invite(alice: NsDaemon, bob: NsDaemon, bob_fp: str, **body: Any) -> dict[str, Any]:
    """alice invites bob; bob's UI gets the request."""
    status, answer = await alice.call("POST", "/api/nearby/invite", {"fingerprint": bob_fp, **body})
    assert status == 202, answer
    event = await bob.event("lan-request")
    request: dict[str, Any] = event["request"]
    assert request["id"] == answer["request_id"]
    return request


async def phase(daemon: NsDaemon, wanted: str) -> dict[str, Any]:
    event = await daemon.until("session", lambda e: e["session"]["phase"] == wanted, 20)
    session: dict[str, Any] = event["session"]
    return session


def new_identity() -> Identity:
    return Identity.from_private_key(Ed25519PrivateKey.generate())


def signed(
    identity: Identity, *, to: str, nonce: str, name: str = "alice", session_id: str = ""
) -> dict[str, Any]:
    invite = SignedInvite.make(
        identity,
        name=name,
        to=to,
        nonce=nonce,
        session_id=session_id or new_session_id(),
        ttl_minutes=60,
        max_message_length=2000,
    )
    return invite.wire()
