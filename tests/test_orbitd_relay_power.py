"""What a malicious rendezvous can no longer do to a session it cannot read (issue #11):
replay the host's sealed offer, make up aborts and key exchanges, push a shorter
countdown, or drop every frame and leave both daemons waiting forever."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from tests.evil_rendezvous import Recorder, drop_relayed, evil_app
from tests.processes import Daemon, start_daemon

MakeServer = Callable[..., Awaitable[TestServer]]


async def behind(
    tmp_path: Path, aiohttp_server: MakeServer, upstream: str, tamper: Any, *flags: str
) -> tuple[Daemon, Daemon]:
    evil: TestServer = await aiohttp_server(evil_app(upstream, tamper))
    url = str(evil.make_url("")).rstrip("/")
    return await asyncio.gather(
        start_daemon(tmp_path, "alice", url, *flags), start_daemon(tmp_path, "bob", url, *flags)
    )


async def peer_says(daemon: Daemon) -> str:
    while True:
        message = (await daemon.event("message"))["message"]
        if message["author"] == "peer":
            return str(message["text"])


def marked(heard: dict[str, Any], mark: str) -> dict[str, Any]:
    """A true `session-status` with a mark the daemon shows (a seat's public id)."""
    status = heard["status"]
    seats = status["participants"] | {"guest": status["participants"]["guest"] | {"id": mark}}
    return heard | {"status": status | {"participants": seats}}


async def shown(daemon: Daemon, mark: str) -> dict[str, Any]:
    """The daemon's first snapshot with the mark: it read every frame before it."""
    while True:
        session: dict[str, Any] = (await daemon.event("session"))["session"]
        if (session["participants"] or {}).get("guest", {}).get("id") == mark:
            return session


async def state_at_rendezvous(upstream: str, token: str) -> str:
    async with (
        aiohttp.ClientSession() as http,
        http.get(f"{upstream}/api/session/{token}/status") as answer,
    ):
        body: dict[str, Any] = await answer.json()
        return str(body["state"])


async def test_replayed_offer_aborts_and_pakes_leave_a_ready_chat_alone(
    tmp_path: Path, aiohttp_server: MakeServer, rendezvous: str
) -> None:
    evil = Recorder()
    alice, bob = await behind(tmp_path, aiohttp_server, rendezvous, evil)
    try:
        _, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
        await bob.call("POST", "/api/join", {"invite": created["invite"]})
        await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        token = created["token"]
        host_boxes = [f for f in evil.sent["host"] if f.get("type") == "sealed"]
        offer = next(f for f in host_boxes if f.get("seq") == 1 and f["phase"] == "handshake")
        guest_boxes = [f for f in evil.sent["guest"] if f.get("type") == "sealed"]
        pakes = {
            seat: next(f for f in evil.sent[seat] if f["type"] == "pake") for seat in evil.sent
        }
        # The relay replays the host's sealed offer (as it was, and with a higher `seq`),
        # every sealed box, a made-up abort and the other side's key exchange again.
        for frame in [offer, offer | {"seq": 99}, *host_boxes]:
            await evil.inject("guest", frame)
        for frame in guest_boxes:
            await evil.inject("host", frame)
        for seat, other in (("guest", "host"), ("host", "guest")):
            await evil.inject(seat, {"type": "abort", "code": "invite_mismatch"})
            await evil.inject(seat, pakes[other] | {"msg": pakes[seat]["msg"]})
        # A frame of its own last: once each daemon has shown it, it read all before it.
        status = json.loads(next(t for t in reversed(evil.heard["guest"]) if "session-status" in t))
        for seat in ("host", "guest"):
            await evil.inject(seat, marked(status, "marker"))
        sessions = await asyncio.gather(shown(alice, "marker"), shown(bob, "marker"))
        assert [s["phase"] for s in sessions] == ["ready", "ready"]
        await alice.call("POST", "/api/messages", {"text": "still here?"})
        assert await peer_says(bob) == "still here?"
        await bob.call("POST", "/api/messages", {"text": "yes"})
        assert await peer_says(alice) == "yes"
        assert await state_at_rendezvous(rendezvous, token) == "ACTIVE"  # not burned
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_a_status_that_contradicts_the_sealed_limits_is_ignored(
    tmp_path: Path, aiohttp_server: MakeServer, rendezvous: str
) -> None:
    evil = Recorder()
    alice, bob = await behind(tmp_path, aiohttp_server, rendezvous, evil)
    try:
        _, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
        await bob.call("POST", "/api/join", {"invite": created["invite"]})
        await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        heard = json.loads(next(t for t in reversed(evil.heard["guest"]) if "session-status" in t))
        real = heard["status"]
        lies = [
            real | {"max_message_length": 5},
            real | {"timer": real["timer"] | {"ttl_minutes": 1, "remaining_seconds": 2}},
            real | {"timer": real["timer"] | {"remaining_seconds": 2}},  # cut short
        ]
        for lie in lies:
            await evil.inject("guest", {"type": "session-status", "status": lie})
        await evil.inject("guest", marked(heard, "truth"))  # the truth again: shown
        session = await shown(bob, "truth")
        assert session["max_message_length"] == real["max_message_length"]
        assert session["ttl_minutes"] == 60 and session["remaining_seconds"] > 3000
        assert session["phase"] == "ready"
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_a_relay_that_drops_every_frame_times_out_on_both_sides(
    tmp_path: Path, aiohttp_server: MakeServer, rendezvous: str
) -> None:
    alice, bob = await behind(
        tmp_path, aiohttp_server, rendezvous, drop_relayed, "--connect-timeout-seconds", "3"
    )
    try:
        _, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
        await bob.call("POST", "/api/join", {"invite": created["invite"]})
        for daemon in (alice, bob):
            error = await daemon.event("error")
            assert error["code"] == "connect_timeout"
            assert "nothing it sent arrived" in error["message"]
            ended = await daemon.event("session-ended")
            assert ended["reason"] == "connect_timeout"
    finally:
        await asyncio.gather(alice.close(), bob.close())
