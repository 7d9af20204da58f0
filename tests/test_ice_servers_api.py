"""The rendezvous hands out ICE servers: in the join response and, on the socket, in
answer to `ice-refresh` (fresh TURN credentials); nothing when nothing is configured."""

from __future__ import annotations

import asyncio
import json
import logging
from typing import Any

import pytest

from tests.conftest import FakeClock, MakeRendezvous, RendezvousClient, issue, join

SECRET = "turn-secret-under-test"
ICE = {
    "turn_urls": "turn:127.0.0.1:3478,turn:127.0.0.1:3478?transport=tcp",
    "stun_urls": "stun:127.0.0.1:3478",
    "turn_shared_secret": SECRET,
    "turn_credential_ttl_seconds": 600,
}
T0 = 1768903200  # the fake clock's start


async def next_of(ws: Any, kind: str) -> dict[str, Any]:
    while True:
        body: dict[str, Any] = (await asyncio.wait_for(ws.receive(), 5)).json()
        if body["type"] == kind:
            return body


async def test_the_join_response_carries_ice_servers_with_turn_credentials(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(**ICE)
    token = await issue(rv)
    host = await join(rv, token, "host-identity")
    guest = await join(rv, token, "guest-identity")
    turn, stun = host["ice_servers"]
    assert turn["urls"] == ["turn:127.0.0.1:3478", "turn:127.0.0.1:3478?transport=tcp"]
    expiry, _, random_part = turn["username"].partition(":")
    assert int(expiry) == T0 + 600 == host["ice_expires_at"]
    assert host["ice_ttl_seconds"] == 600
    assert "identity" not in turn["username"] and len(random_part) >= 16
    assert stun == {"urls": ["stun:127.0.0.1:3478"]}
    # Each participant gets its own user name.
    assert guest["ice_servers"][0]["username"] != turn["username"]


async def test_nothing_configured_sends_nothing_as_before(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous()
    token = await issue(rv)
    joined = await join(rv, token, "host-identity")
    assert set(joined) == {"role", "session_status"}
    async with rv.ws_connect(f"/api/ws/{token}/host-identity") as ws:
        await next_of(ws, "session-status")
        await ws.send_str(json.dumps({"type": "ice-refresh", "id": 7}))
        refused = await next_of(ws, "error")
    assert refused["code"] == "ice_unavailable"
    assert refused["in_reply_to"] == {"type": "ice-refresh", "id": 7}


async def test_stun_only_has_no_credentials_and_no_expiry(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(stun_urls="stun:127.0.0.1:3478")
    token = await issue(rv)
    joined = await join(rv, token, "host-identity")
    assert joined["ice_servers"] == [{"urls": ["stun:127.0.0.1:3478"]}]
    assert "ice_ttl_seconds" not in joined and "ice_expires_at" not in joined


async def test_ice_refresh_on_the_socket_answers_fresh_credentials(
    make_rendezvous: MakeRendezvous, clock: FakeClock
) -> None:
    rv = await make_rendezvous(**ICE)
    token = await issue(rv)
    first = await join(rv, token, "host-identity")
    clock.advance(seconds=500)
    async with rv.ws_connect(f"/api/ws/{token}/host-identity") as ws:
        await next_of(ws, "session-status")
        await ws.send_str(json.dumps({"type": "ice-refresh"}))
        fresh = await next_of(ws, "ice-servers")
    assert fresh["ttl_seconds"] == 600
    assert fresh["expires_at"] == T0 + 500 + 600
    turn = fresh["ice_servers"][0]
    assert turn["username"].startswith(f"{T0 + 1100}:")
    assert turn["username"] != first["ice_servers"][0]["username"]
    assert turn["credential"] != first["ice_servers"][0]["credential"]
    assert fresh["ice_servers"][1:] == first["ice_servers"][1:]


async def test_ice_refresh_counts_against_the_socket_rate(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(**ICE, ws_messages_per_second=0.001, ws_message_burst=2)
    token = await issue(rv)
    await join(rv, token, "host-identity")
    async with rv.ws_connect(f"/api/ws/{token}/host-identity") as ws:
        await next_of(ws, "session-status")
        answers = []
        for _ in range(3):
            await ws.send_str(json.dumps({"type": "ice-refresh"}))
            answers.append((await asyncio.wait_for(ws.receive(), 5)).json())
    assert [a["type"] for a in answers] == ["ice-servers", "ice-servers", "error"]
    assert answers[2]["code"] == "rate_limited"


async def test_a_malformed_ice_refresh_is_refused_and_the_socket_stays(
    rv: RendezvousClient,
) -> None:
    token = await issue(rv)
    await join(rv, token, "host-identity")
    async with rv.ws_connect(f"/api/ws/{token}/host-identity") as ws:
        await next_of(ws, "session-status")
        await ws.send_str(json.dumps({"type": "ice-servers", "ice_servers": []}))
        refused = await next_of(ws, "error")
        assert refused["code"] == "unknown_type"  # only the rendezvous sends ice-servers
        await ws.send_str(json.dumps({"type": "ping"}))
        await next_of(ws, "pong")


async def test_the_secret_and_credentials_are_in_no_log_metrics_or_admin_page(
    make_rendezvous: MakeRendezvous, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    rv = await make_rendezvous(**ICE, log_level="debug")
    token = await issue(rv)
    joined = await join(rv, token, "host-identity")
    async with rv.ws_connect(f"/api/ws/{token}/host-identity") as ws:
        await next_of(ws, "session-status")
        await ws.send_str(json.dumps({"type": "ice-refresh"}))
        fresh = await next_of(ws, "ice-servers")
    metrics = await (await rv.get("/metrics")).text()
    assert "orbit_ice_grants_total 2" in metrics
    admin = await (await rv.get("/admin")).text()
    logged = "\n".join(
        f"{r.getMessage()} {getattr(r, 'fields', '')} {r.args}" for r in caplog.records
    )
    assert logged, "the rendezvous logged nothing at all: the check would be empty"
    secrets = [SECRET]
    for answer in (joined, fresh):
        turn = answer["ice_servers"][0]
        secrets += [turn["credential"], turn["username"]]
    for secret in secrets:
        for text in (logged, metrics, admin):
            assert secret not in text
