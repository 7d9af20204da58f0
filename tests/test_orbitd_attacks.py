"""What a malicious rendezvous can and cannot do, and what stays off disk."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestServer

from tests.evil_rendezvous import OwnPake, Tamper, evil_app, flip_sealed
from tests.processes import Daemon, start_daemon

MakeServer = Callable[..., Awaitable[TestServer]]


async def daemons_behind(
    tmp_path: Path, aiohttp_server: MakeServer, upstream: str, tamper: Tamper
) -> tuple[Daemon, Daemon]:
    evil: TestServer = await aiohttp_server(evil_app(upstream, tamper))
    url = str(evil.make_url("")).rstrip("/")
    return await asyncio.gather(
        start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
    )


@pytest.mark.parametrize(
    "tamper", [flip_sealed, OwnPake()], ids=["swaps-sealed-sdp", "runs-own-pake"]
)
async def test_a_tampering_rendezvous_is_refused_and_no_message_passes(
    tmp_path: Path, aiohttp_server: MakeServer, rendezvous: str, tamper: Tamper
) -> None:
    alice, bob = await daemons_behind(tmp_path, aiohttp_server, rendezvous, tamper)
    try:
        status, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
        assert status == 201
        status, _ = await bob.call("POST", "/api/join", {"invite": created["invite"]})
        assert status == 200
        for daemon in (alice, bob):
            error = await daemon.event("error")
            assert error["code"] == "invite_mismatch"
            await daemon.event("session-ended")
            status, state = await daemon.call("GET", "/api/state")
            assert state["session"]["phase"] == "ended" and state["session"]["sas"] is None
        status, refused = await alice.call("POST", "/api/messages", {"text": "are you there?"})
        assert (status, refused["error"]) == (409, "session_ended")
        assert not any(e.get("type") == "message" for e in drain(bob))
    finally:
        await asyncio.gather(alice.close(), bob.close())


def drain(daemon: Daemon) -> list[dict[str, Any]]:
    seen = []
    while not daemon.events.empty():
        seen.append(daemon.events.get_nowait())
    return seen


async def test_nothing_of_a_chat_reaches_disk_or_logs(tmp_path: Path, rendezvous: str) -> None:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous), start_daemon(tmp_path, "bob", rendezvous)
    )
    words = ["PlaintextCanaryAlpha", "PlaintextCanaryBravo"]
    try:
        _, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
        invite = created["invite"]
        await bob.call("POST", "/api/join", {"invite": invite})
        ready = await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        sas = ready[0]["sas"]
        await alice.call("POST", "/api/messages", {"text": words[0]})
        await bob.event("message")
        await bob.call("POST", "/api/messages", {"text": words[1]})
        await alice.event("message")
        await alice.call("POST", "/api/session/end", {})
        await bob.event("session-ended")
    finally:
        await asyncio.gather(alice.close(), bob.close())

    secret = invite.split("-")[1]
    found = occurrences(tmp_path, [*words, secret, sas])
    assert found == []


def occurrences(root: Path, needles: list[str]) -> list[tuple[str, str]]:
    """(needle, file) for every needle found in any file under root (logs, keys, data)."""
    files = [p for p in root.rglob("*") if p.is_file()]
    assert any(p.name.endswith(".log") for p in files)
    assert any(p.name == "identity.key" for p in files)
    return [
        (needle, str(path))
        for path in files
        for needle in needles
        if needle.encode() in path.read_bytes()
    ]
