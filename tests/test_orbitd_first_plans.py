"""The first connection moves to the next ICE plan (issue #10), two real daemons on
127.0.0.1: their first plan (TURN over UDP, on a loopback port nobody listens on) cannot
work, the next (a real coturn, TURN over TCP) can; with "hide my address" nothing else
could carry them."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from rendezvous.turn import mint
from tests.coturn import Coturn, coturn, free_port
from tests.processes import Daemon, start_daemon
from tests.test_orbitd_ice import connect

__all__ = ["coturn"]  # the fixture


async def next_of(daemon: Daemon, kind: str) -> dict[str, Any]:
    """The next event of `kind`, however long it takes (the caller bounds the wait)."""
    while True:
        event: dict[str, Any] = await daemon.events.get()
        if event.get("type") == kind:
            return event


def dead_udp_then_tcp(server: Coturn) -> list[str]:
    """TURN over UDP on a closed loopback port first, then the coturn over TCP."""
    minted = mint(server.secret, 600, datetime.now(UTC), turn_urls=[server.turn_url])
    assert minted is not None
    handed = minted.ice_servers[0]
    assert handed.username and handed.credential
    closed = f"turn:127.0.0.1:{free_port()}"
    return [
        "--ice-relay-only",
        "--connect-timeout-seconds",
        "16",  # two plans: 10 s each (the least a plan gets)
        "--ice-servers",
        f"{closed},{server.turn_tcp_url}",
        "--ice-username",
        handed.username,
        "--ice-credential",
        handed.credential,
    ]


async def test_a_first_plan_that_cannot_work_gives_way_to_turn_over_tcp(
    tmp_path: Path, rendezvous: str, coturn: Coturn
) -> None:
    flags = dead_udp_then_tcp(coturn)
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous, *flags),
        start_daemon(tmp_path, "bob", rendezvous, *flags),
    )
    try:
        ready = await connect(alice, bob)
        assert [s["path"] for s in ready] == ["relayed", "relayed"]
        assert ready[0]["sas"] == ready[1]["sas"] is not None
        status, _ = await alice.call("POST", "/api/messages", {"text": "over TCP"})
        assert status == 201
        assert (await bob.event("message"))["message"]["text"] == "over TCP"
    finally:
        await asyncio.gather(alice.close(), bob.close())
    for daemon in (alice, bob):
        log = daemon.process.log_path.read_text()
        assert "next ICE plan" in log and "turn-tcp:127.0.0.1" in log


async def test_when_every_plan_fails_the_session_ends_with_connect_timeout(
    tmp_path: Path, rendezvous: str
) -> None:
    closed_udp, closed_tcp = free_port(), free_port()
    flags = [
        "--ice-relay-only",
        "--connect-timeout-seconds",
        "1",  # two plans: 10 s each (the least a plan gets)
        "--ice-servers",
        f"turn:127.0.0.1:{closed_udp},turn:127.0.0.1:{closed_tcp}?transport=tcp",
        "--ice-username",
        "user",
        "--ice-credential",
        "secret",
    ]
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous, *flags),
        start_daemon(tmp_path, "bob", rendezvous, *flags),
    )
    try:
        body = {"validity_option": "day", "ttl_minutes": 60, "max_message_length": 200}
        status, created = await alice.call("POST", "/api/tokens", body)
        assert status == 201, created
        status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
        assert status == 200, joined
        async with asyncio.timeout(40):  # two plans of 10 s: longer than `event` waits
            error = await next_of(alice, "error")
            assert error["code"] == "connect_timeout" and "relay" in error["message"]
            assert (await next_of(alice, "session-ended"))["reason"] == "connect_timeout"
            await next_of(bob, "session-ended")  # the other side is not left waiting
    finally:
        await asyncio.gather(alice.close(), bob.close())
    log = alice.process.log_path.read_text()
    assert "turn-udp:127.0.0.1" in log and "turn-tcp:127.0.0.1" in log
