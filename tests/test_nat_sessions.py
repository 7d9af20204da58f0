"""Sessions across two NATs and a public segment (tests/nat.py): what each user sees
through their daemon's API. Real orbitd, rendezvous and coturn, in namespaces the
tests build and tear down (root; `flock /tmp/netns.lock`)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest

from tests.nat import CONE, SYMMETRIC, NatNet, hand_ice_flags, nat_net_fixture
from tests.netns import NsDaemon

__all__ = ["nat_net_fixture"]  # a fixture, used by name

CONNECT_WAIT = 30.0
# --- sessions ------------------------------------------------------------------------------


async def phase(daemon: NsDaemon, wanted: str, within: float = CONNECT_WAIT) -> dict[str, Any]:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200, state
    session: dict[str, Any] | None = state.get("session")
    if session is not None and session["phase"] == wanted:
        return session
    event = await daemon.until("session", lambda e: e["session"]["phase"] == wanted, within)
    found: dict[str, Any] = event["session"]
    return found


async def connect(alice: NsDaemon, bob: NsDaemon, within: float = CONNECT_WAIT) -> None:
    """Alice (home A) requests a token, Bob (home B) joins; both reach `ready`, same SAS."""
    status, created = await alice.call(
        "POST", "/api/tokens", {"validity_option": "day", "ttl_minutes": 60}
    )
    assert status == 201, created
    status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    assert status == 200, joined
    a, b = await asyncio.gather(phase(alice, "ready", within), phase(bob, "ready", within))
    assert a["sas"] and a["sas"] == b["sas"]


async def chat_both_ways(alice: NsDaemon, bob: NsDaemon, tag: str) -> None:
    for sender, receiver in ((alice, bob), (bob, alice)):
        text = f"{tag} from {'alice' if sender is alice else 'bob'}"
        status, sent = await sender.call("POST", "/api/messages", {"text": text})
        assert status == 201, sent
        got = await receiver.event("message")
        assert got["message"]["text"] == text and got["message"]["author"] == "peer"
        await sender.event(
            "message-status", message_id=sent["message"]["message_id"], status="delivered"
        )


async def path_of(daemon: NsDaemon) -> str | None:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200, state
    path: str | None = state["session"].get("path")
    return path


async def two_daemons(
    net: NatNet, alice_flags: list[str], bob_flags: list[str]
) -> tuple[NsDaemon, NsDaemon]:
    return await asyncio.gather(
        net.daemon("a", "alice", *alice_flags), net.daemon("b", "bob", *bob_flags)
    )


@pytest.mark.parametrize("nat_net", [(CONE, CONE)], indirect=True)
async def test_cone_to_cone_with_stun_is_internet_direct(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(), nat_net.start_coturn())
    stun = hand_ice_flags(nat_net, nat_net.stun_url)
    alice, bob = await two_daemons(nat_net, stun, stun)
    try:
        await connect(alice, bob)
        await chat_both_ways(alice, bob, "through two cone NATs")
        assert await path_of(alice) == await path_of(bob) == "internet-direct"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


@pytest.mark.parametrize("nat_net", [(SYMMETRIC, SYMMETRIC)], indirect=True)
async def test_symmetric_to_symmetric_is_relayed_with_credentials_from_the_rendezvous(
    nat_net: NatNet,
) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, [], [])  # no ICE server of their own
    try:
        await connect(alice, bob)
        await chat_both_ways(alice, bob, "through two symmetric NATs")
        assert await path_of(alice) == await path_of(bob) == "relayed"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
    for daemon in (alice, bob):  # the minted credential never reaches a log
        own_log = Path(daemon.ready["log"]).read_text()
        assert nat_net.turn_secret not in own_log


@pytest.mark.parametrize("nat_net", [(CONE, CONE)], indirect=True)
async def test_relay_only_where_direct_would_work_is_relayed(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, ["--ice-relay-only"], [])
    try:
        await connect(alice, bob)
        await chat_both_ways(alice, bob, "hidden address")
        assert await path_of(alice) == await path_of(bob) == "relayed"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
