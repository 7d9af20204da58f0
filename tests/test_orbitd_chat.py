"""Two real orbitd processes and the real rendezvous on 127.0.0.1, driven through
the daemons' local APIs: the whole session, end to end."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.processes import Daemon, Process, start_daemon, start_rendezvous


@pytest.fixture
async def rendezvous(tmp_path: Path) -> AsyncIterator[tuple[Process, str]]:
    process, url = await start_rendezvous(tmp_path, "--ttl-minute-seconds", "1")
    yield process, url
    await process.stop()


@pytest.fixture
async def pair(
    tmp_path: Path, rendezvous: tuple[Process, str]
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous[1]), start_daemon(tmp_path, "bob", rendezvous[1])
    )
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())


async def connect(alice: Daemon, bob: Daemon, ttl_minutes: int = 600) -> str:
    """Alice requests a token, Bob joins with the invite; both reach `ready`."""
    status, created = await alice.call(
        "POST",
        "/api/tokens",
        {"validity_option": "day", "ttl_minutes": ttl_minutes, "max_message_length": 200},
    )
    assert status == 201, created
    assert created["role"] == "host" and created["invite"].startswith(created["token"] + "-")
    status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    assert status == 200, joined
    assert joined["role"] == "guest"
    a, b = await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
    assert a["sas"] and a["sas"] == b["sas"]  # the short authentication strings match
    invite: str = created["invite"]
    return invite


async def test_chat_both_ways_with_delivery_and_delete(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    await connect(alice, bob)

    status, sent = await alice.call("POST", "/api/messages", {"text": "Hello Bob 👋"})
    assert status == 201 and sent["message"]["status"] == "sent"
    message_id = sent["message"]["message_id"]
    got = await bob.event("message")
    assert got["message"]["text"] == "Hello Bob 👋" and got["message"]["author"] == "peer"
    await alice.event("message-status", message_id=message_id, status="delivered")

    status, reply = await bob.call("POST", "/api/messages", {"text": "Hi Alice"})
    assert status == 201
    assert (await alice.event("message"))["message"]["text"] == "Hi Alice"
    await bob.event("message-status", message_id=reply["message"]["message_id"], status="delivered")

    status, _ = await alice.call("DELETE", f"/api/messages/{message_id}")
    assert status == 200
    await bob.event("message-deleted", message_id=message_id)
    status, state = await bob.call("GET", "/api/state")
    shown = {m["message_id"]: m for m in state["session"]["messages"]}
    assert shown[message_id]["deleted"] is True and shown[message_id]["text"] == ""

    status, refused = await bob.call("DELETE", f"/api/messages/{message_id}")
    assert status == 404  # already gone
    status, refused = await alice.call("DELETE", f"/api/messages/{reply['message']['message_id']}")
    assert (status, refused["error"]) == (403, "not_your_message")


async def test_bad_input_gets_clear_errors(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    status, error = await bob.call("POST", "/api/join", {"invite": "not an invite"})
    assert (status, error["error"]) == (422, "invalid_invite")
    status, error = await bob.call("POST", "/api/join", {"invite": "ZZZZZZZZZZZZ-abcdefghijkmnpqr"})
    assert (status, error["error"]) == (404, "token_not_found")
    status, error = await alice.call("POST", "/api/messages", {"text": "too early"})
    assert (status, error["error"]) == (409, "no_session")
    status, error = await alice.call("POST", "/api/tokens", {"ttl_minutes": 0})
    assert (status, error["error"]) == (422, "invalid_ttl_minutes")
    for path in ("/api/tokens", "/api/join", "/api/messages", "/api/preferences"):
        async with alice.http.post(alice.base + path, data="[" * 20_000) as nested:
            assert nested.status == 400, path  # nesting deeper than the reader takes
            assert (await nested.json())["error"] == "invalid_json"

    await connect(alice, bob)
    status, error = await alice.call("POST", "/api/messages", {"text": "x" * 201})
    assert (status, error["error"]) == (422, "message_too_long")
    assert "200" in error["reason"]
    status, error = await alice.call("POST", "/api/messages", {"text": ""})
    assert (status, error["error"]) == (422, "empty_message")
    status, error = await alice.call("POST", "/api/tokens", {})
    assert (status, error["error"]) == (409, "session_in_progress")
    status, _ok = await alice.call("POST", "/api/messages", {"text": "x" * 200})
    assert status == 201
    assert len((await bob.event("message"))["message"]["text"]) == 200


async def test_end_by_hand_reaches_both(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    await connect(alice, bob)
    status, _ = await bob.call("POST", "/api/session/end", {})
    assert status == 200
    for daemon in (alice, bob):
        ended = await daemon.event("session-ended")
        assert ended["reason"] == "manually_ended"
    status, state = await alice.call("GET", "/api/state")
    assert state["session"]["phase"] == "ended"
    assert state["session"]["messages"] == []
    status, error = await alice.call("POST", "/api/messages", {"text": "anyone?"})
    assert (status, error["error"]) == (409, "session_ended")


async def test_the_countdown_ends_the_session(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    await connect(alice, bob, ttl_minutes=3)  # a TTL "minute" lasts 1 s here
    await alice.call("POST", "/api/messages", {"text": "quick"})
    for daemon in (alice, bob):
        ended = await daemon.event("session-ended")
        assert ended["reason"] == "timer_expired"
    _status, state = await bob.call("GET", "/api/state")
    assert state["session"]["phase"] == "ended" and state["session"]["messages"] == []


async def logged(daemon: Daemon, text: str) -> None:
    """Until the daemon's log has `text` (a poll: no event says it)."""
    async with asyncio.timeout(15):
        while text not in daemon.process.log_path.read_text():  # noqa: ASYNC110 - a file
            await asyncio.sleep(0.05)


async def test_chat_goes_on_when_the_rendezvous_dies(
    pair: tuple[Daemon, Daemon], rendezvous: tuple[Process, str]
) -> None:
    alice, bob = pair
    await connect(alice, bob)
    await rendezvous[0].stop()
    for daemon in (alice, bob):  # both noticed: a reconnect to the rendezvous failed
        await logged(daemon, "signaling socket down")
    status, sent = await alice.call("POST", "/api/messages", {"text": "still here?"})
    assert status == 201
    assert (await bob.event("message"))["message"]["text"] == "still here?"
    await alice.event(
        "message-status", message_id=sent["message"]["message_id"], status="delivered"
    )
    status, _ = await bob.call("POST", "/api/messages", {"text": "yes"})
    assert status == 201
    assert (await alice.event("message"))["message"]["text"] == "yes"
    # Ending still works without the rendezvous: the peer is told directly.
    status, _ = await alice.call("POST", "/api/session/end", {})
    assert status == 200
    assert (await bob.event("session-ended"))["reason"] == "manually_ended"
    status, error = await alice.call("POST", "/api/tokens", {})
    assert (status, error["error"]) == (503, "rendezvous_unreachable")


async def test_a_wrong_secret_is_refused_on_both_sides_and_burns_the_token(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    status, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 600})
    token, secret = created["invite"].split("-")
    wrong = secret[:-1] + ("a" if secret[-1] != "a" else "b")
    status, _ = await bob.call("POST", "/api/join", {"invite": f"{token}-{wrong}"})
    assert status == 200
    for daemon in (alice, bob):
        error = await daemon.event("error")
        assert error["code"] == "invite_mismatch"
        assert "wrong or has been tampered with" in error["message"]
        await daemon.event("session-ended")
    # Burned: nobody gets a second guess, not even with the right secret.
    status, error = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    assert (status, error["error"]) == (410, "session_ended")
