"""Two real daemons that announce different protocol versions (the test hook
ORBITD_ANNOUNCE_PROTOCOL_VERSION, docs/protocol.md): another major ends the session on
both sides with `version_mismatch` and a message naming the other's version; a newer
minor talks, with only the features both announce."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbitcore.protocol.version import PROTOCOL_VERSION
from tests.processes import Daemon, start_daemon


async def meet(alice: Daemon, bob: Daemon) -> str:
    status, created = await alice.call(
        "POST", "/api/tokens", {"validity_option": "day", "ttl_minutes": 60}
    )
    assert status == 201, created
    status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    assert status == 200, joined
    token: str = created["token"]
    return token


async def test_another_major_ends_the_session_on_both_sides_with_a_clear_message(
    tmp_path: Path, rendezvous: str
) -> None:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous),
        start_daemon(
            tmp_path, "bob", rendezvous, environ={"ORBITD_ANNOUNCE_PROTOCOL_VERSION": "2.0"}
        ),
    )
    try:
        await meet(alice, bob)
        a_error, b_error = await asyncio.gather(alice.event("error"), bob.event("error"))
        assert a_error["code"] == b_error["code"] == "version_mismatch"
        assert (a_error["peer_version"], a_error["local_version"]) == ("2.0", PROTOCOL_VERSION)
        assert (b_error["peer_version"], b_error["local_version"]) == (PROTOCOL_VERSION, "2.0")
        assert "protocol 2.0" in a_error["message"]
        assert "Update orbitd on this computer" in a_error["message"]
        assert f"protocol {PROTOCOL_VERSION}" in b_error["message"]
        assert "Ask the other person to update" in b_error["message"]
        a_ended, b_ended = await asyncio.gather(alice.phase("ended"), bob.phase("ended"))
        for ended, peer_version in ((a_ended, "2.0"), (b_ended, PROTOCOL_VERSION)):
            assert ended["ended"]["reason"] == "version_mismatch"
            assert ended["protocol"]["compatible"] is False
            assert ended["protocol"]["peer_version"] == peer_version
            assert ended["sas"] is None and ended["messages"] == []
        # Cleanly over: the state answers, and a new session can start.
        for daemon in (alice, bob):
            status, state = await daemon.call("GET", "/api/state")
            assert status == 200 and state["session"]["phase"] == "ended"
        status, _ = await alice.call(
            "POST", "/api/tokens", {"validity_option": "day", "ttl_minutes": 60}
        )
        assert status == 201
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_a_newer_minor_talks_with_the_features_both_announce(
    tmp_path: Path, rendezvous: str
) -> None:
    newer = {
        "ORBITD_ANNOUNCE_PROTOCOL_VERSION": "1.9",
        "ORBITD_ANNOUNCE_FEATURES": "chat,calls,teleport",
    }
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous),
        start_daemon(tmp_path, "bob", rendezvous, environ=newer),
    )
    try:
        await meet(alice, bob)
        a, b = await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        assert a["protocol"] == {
            "version": PROTOCOL_VERSION,
            "peer_version": "1.9",
            "features": ["calls", "chat"],
            "compatible": True,
        }
        assert b["protocol"] == {
            "version": "1.9",
            "peer_version": PROTOCOL_VERSION,
            "features": ["calls", "chat"],
            "compatible": True,
        }
        status, _ = await bob.call("POST", "/api/messages", {"text": "from the future"})
        assert status == 201
        assert (await alice.event("message"))["message"]["text"] == "from the future"
        status, _ = await alice.call("POST", "/api/call")  # calls: both announced them
        assert status == 200
        await bob.event("call-incoming")
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_without_calls_on_one_side_neither_offers_a_call(
    tmp_path: Path, rendezvous: str
) -> None:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous),
        start_daemon(tmp_path, "bob", rendezvous, environ={"ORBITD_ANNOUNCE_FEATURES": "chat"}),
    )
    try:
        await meet(alice, bob)
        a, b = await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        assert a["protocol"]["features"] == b["protocol"]["features"] == ["chat"]
        for daemon in (alice, bob):
            status, refused = await daemon.call("POST", "/api/call")
            assert (status, refused["error"]) == (409, "feature_unavailable")
        status, _ = await alice.call("POST", "/api/messages", {"text": "chat only"})
        assert status == 201
        assert (await bob.event("message"))["message"]["text"] == "chat only"
    finally:
        await asyncio.gather(alice.close(), bob.close())
