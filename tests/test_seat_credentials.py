"""The seat's credential (`client_identity`): kept only as a digest, sent to the socket in a
header (never in a URL a proxy logs), the seed's path form still accepted."""

from __future__ import annotations

import asyncio
import logging
import secrets

import pytest
from aiohttp.test_utils import TestServer

from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame
from orbitd.rendezvous_client import RendezvousClient as DaemonClient
from rendezvous import session as rules
from rendezvous.app import create_app
from rendezvous.keys import SERVICE
from rendezvous.settings import load_config
from tests.conftest import MakeRendezvous, RendezvousClient, issue, join, service
from tests.test_ws_relay import closed_with, next_of_type

HOST, GUEST = "host-identity", "guest-identity"


def seat(identity: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {identity}"}


async def test_the_header_form_seats_both_sides_and_relays(rv: RendezvousClient) -> None:
    token = await issue(rv)
    await join(rv, token, HOST)
    await join(rv, token, GUEST)
    async with (
        rv.ws_connect(f"/api/ws/{token}", headers=seat(HOST)) as host,
        rv.ws_connect(f"/api/ws/{token}/{GUEST}") as guest,  # the seed's form, beside it
    ):
        status = await next_of_type(guest, "session-status")
        participants = status["status"]["participants"]
        assert participants["guest"]["id"] == rules.public_id(GUEST)  # public ids unchanged
        assert participants["host"]["id"] == rules.public_id(HOST)
        await host.send_str(relay.Pake("AAAA").encode())
        assert (await next_of_type(guest, "pake"))["msg"] == "AAAA"
        await guest.send_str(relay.Pake("BBBB").encode())
        assert (await next_of_type(host, "pake"))["msg"] == "BBBB"


@pytest.mark.parametrize(
    "headers",
    [{}, seat("stranger"), {"Authorization": f"Basic {HOST}"}, {"Authorization": "Bearer "}],
    ids=["none", "stranger", "basic", "empty"],
)
async def test_no_or_a_wrong_credential_is_not_a_participant(
    rv: RendezvousClient, headers: dict[str, str]
) -> None:
    token = await issue(rv)
    await join(rv, token, HOST)
    async with rv.ws_connect(f"/api/ws/{token}", headers=headers) as ws:
        assert await closed_with(ws) == 4001


async def test_refused_credentials_count_against_the_join_limit(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(join_rate_limit_per_hour=3)
    token = await issue(rv)
    await join(rv, token, HOST)
    for guess in ("a", "b"):
        async with rv.ws_connect(f"/api/ws/{token}", headers=seat(guess)) as ws:
            assert await closed_with(ws) == 4001
    async with rv.ws_connect(f"/api/ws/{token}", headers=seat(HOST)) as ws:
        assert await closed_with(ws) == 4029


async def test_the_store_keeps_digests_and_compares_them(rv: RendezvousClient) -> None:
    token = await issue(rv)
    await join(rv, token, HOST)
    kept = await service(rv).store.get_session(token)
    assert kept is not None and kept.host_id == rules.seat_digest(HOST)
    assert kept.role_of(HOST) is rules.Role.HOST
    assert kept.role_of(rules.seat_digest(HOST)) is None  # the digest is no credential
    again = await rv.post("/api/tokens/join", json={"token": token, "client_identity": HOST})
    assert (await again.json())["role"] == "host"


async def test_a_daemon_session_leaves_no_credential_in_the_access_log_or_the_database(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG)
    config = load_config(environ={}, overrides={"database": ":memory:"})
    app = create_app(config)
    host_id, guest_id = secrets.token_urlsafe(24), secrets.token_urlsafe(24)
    got: asyncio.Queue[Frame] = asyncio.Queue()
    async with TestServer(app, host="127.0.0.1") as server:
        client = DaemonClient(str(server.make_url("")))
        token = (await client.issue("day", 60, 2000))["token"]
        await client.join(token, host_id)
        await client.join(token, guest_id)
        host = client.signaling(token, host_id, lambda frame: None)
        guest = client.signaling(token, guest_id, got.put_nowait)
        host.start()
        guest.start()
        async with asyncio.timeout(5):
            await host.connected.wait()
            await host.send(relay.Pake("AAAA"))
            while not isinstance(frame := await got.get(), relay.Pake):
                pass
        assert frame == relay.Pake("AAAA")  # the header seated both sockets
        await client.end(token, host_id)
        dump = "\n".join(app[SERVICE].store._db.iterdump())  # type: ignore[attr-defined]
        await host.close()
        await guest.close()
        await client.close()
    # aiohttp's access log has the request lines a reverse proxy would write down.
    lines = [r.getMessage() for r in caplog.records if r.name == "aiohttp.access"]
    assert any(f"GET /api/ws/{token} " in line for line in lines), lines
    assert any(f"POST /api/session/{token}/end " in line for line in lines), lines
    for secret in (host_id, guest_id):
        assert secret not in caplog.text
        assert secret not in dump
    assert rules.seat_digest(host_id) in dump
