"""Two rendezvous instances sharing one Redis and one database: a session's two sockets
on different instances relay, hold, push status, end and replace as on one instance."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest
from aiohttp import ClientWebSocketResponse, web

from rendezvous.relay_redis import RedisRelay
from rendezvous.session import Role
from tests.conftest import (
    FakeClock,
    MakeRendezvous,
    RendezvousClient,
    active_session,
    issue,
    join,
    service,
)
from tests.test_ws_relay import GUEST, HOST, closed_with, next_json, next_of_type, seated

FRAMES = 300  # each way; the per-socket rate limit is raised for them


@pytest.fixture
def shared_database(tmp_path: Path) -> str:
    return f"sqlite://{tmp_path / 'shared.db'}"


async def two_instances(
    make_rendezvous: MakeRendezvous, database: str, redis_url: str, **settings: object
) -> tuple[RendezvousClient, RendezvousClient]:
    common = {"database": database, "redis_url": redis_url} | settings
    one = await make_rendezvous(instance_name="a", **common)
    two = await make_rendezvous(instance_name="b", **common)
    return one, two


def relay_of(client: RendezvousClient) -> RedisRelay:
    relay = service(client).relay
    assert isinstance(relay, RedisRelay)
    return relay


async def relayed(ws: ClientWebSocketResponse, kind: str, count: int) -> list[int]:
    """The `n` of the next `count` frames of `kind` (status pushes skipped)."""
    return [(await next_of_type(ws, kind))["n"] for _ in range(count)]


async def split_pair_relays_in_order(one: RendezvousClient, two: RendezvousClient) -> None:
    token = await active_session(one)
    async with seated(token, one, two) as (host, guest):
        for n in range(FRAMES):
            await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "n": n}))
            await guest.send_str(json.dumps({"type": "sealed", "box": "b64", "n": n}))
        to_guest, to_host = await asyncio.gather(
            relayed(guest, "pake", FRAMES), relayed(host, "sealed", FRAMES)
        )
        assert to_guest == list(range(FRAMES)) and to_host == list(range(FRAMES))
        await host.send_str(json.dumps({"type": "ping"}))  # nothing more was on its way
        assert (await next_json(host)) == {"type": "pong"}
    assert relay_of(one).relayed == FRAMES and relay_of(two).relayed == FRAMES


async def test_a_split_pair_relays_both_ways_in_order(
    redis_url: str, make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    one, two = await two_instances(
        make_rendezvous, shared_database, redis_url, ws_message_burst=2 * FRAMES
    )
    await split_pair_relays_in_order(one, two)


async def test_a_split_pair_relays_in_order_on_postgresql(
    redis_url: str, make_rendezvous: MakeRendezvous, postgres_url: str
) -> None:
    one, two = await two_instances(
        make_rendezvous, postgres_url, redis_url, ws_message_burst=2 * FRAMES
    )
    await split_pair_relays_in_order(one, two)


async def test_messages_wait_in_redis_for_a_peer_on_another_instance(
    redis_url: str, make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    one, two = await two_instances(make_rendezvous, shared_database, redis_url)
    token = await issue(one)
    await join(one, token, HOST)
    async with one.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        await next_json(host)
        for n in range(3):  # the guest has not even joined yet
            await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "n": n}))
        await host.send_str(json.dumps({"type": "ping"}))
        assert (await next_json(host)) == {"type": "pong"}  # the three were taken
        await join(two, token, GUEST)
        async with two.ws_connect(f"/api/ws/{token}/{GUEST}") as guest:
            assert (await next_json(guest))["type"] == "session-status"
            assert [(await next_json(guest))["n"] for _ in range(3)] == [0, 1, 2]
            await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "n": 3}))
            assert (await next_json(guest))["n"] == 3  # then straight through


async def test_held_messages_keep_their_caps_across_instances(
    redis_url: str, make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    one, two = await two_instances(make_rendezvous, shared_database, redis_url, held_messages_max=2)
    token = await active_session(two)
    async with one.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        await next_json(host)
        for n in range(3):
            await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "id": f"m{n}"}))
        error = await next_json(host)
        assert error["type"] == "error" and error["code"] == "peer_queue_full"
        assert error["in_reply_to"] == {"type": "pake", "id": "m2"}


async def test_status_pushes_show_both_sockets_across_instances(
    redis_url: str, make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    one, two = await two_instances(make_rendezvous, shared_database, redis_url)
    token = await active_session(one)
    async with one.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        first = await next_of_type(host, "session-status")
        assert first["status"]["participants"]["guest"]["connected"] is False
        async with two.ws_connect(f"/api/ws/{token}/{GUEST}") as guest:
            for ws in (guest, host):
                seen = (await next_of_type(ws, "session-status"))["status"]["participants"]
                assert seen["host"]["connected"] is True and seen["guest"]["connected"] is True
            status = await (await two.get(f"/api/session/{token}/status")).json()
            assert status["participants"]["host"]["connected"] is True
        gone = await next_of_type(host, "session-status")
        assert gone["status"]["participants"]["guest"]["connected"] is False


async def test_ending_on_one_instance_closes_the_sockets_on_the_other(
    redis_url: str, make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    one, two = await two_instances(make_rendezvous, shared_database, redis_url)
    token = await active_session(one)
    async with seated(token, two) as (host, guest):
        response = await one.post(f"/api/session/{token}/end", json={"client_identity": GUEST})
        assert response.status == 200
        for ws in (host, guest):
            ended = await next_of_type(ws, "session-ended")
            assert ended["reason"] == "manually_ended"
            assert await closed_with(ws) == 1000
    assert relay_of(two).open_sockets == 0


async def test_a_newer_socket_on_another_instance_replaces_the_older(
    redis_url: str, make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    one, two = await two_instances(make_rendezvous, shared_database, redis_url)
    token = await active_session(one)
    async with (
        one.ws_connect(f"/api/ws/{token}/{HOST}") as old,
        one.ws_connect(f"/api/ws/{token}/{GUEST}") as guest,
    ):
        await next_of_type(old, "session-status")
        async with two.ws_connect(f"/api/ws/{token}/{HOST}") as new:
            assert await closed_with(old) == 4002
            await next_of_type(new, "session-status")
            await guest.send_str(json.dumps({"type": "pake", "msg": "AAAA", "to": "new"}))
            assert (await next_of_type(new, "pake"))["to"] == "new"
            assert relay_of(one).open_sockets == 1 and relay_of(two).open_sockets == 1


async def test_a_message_for_a_departed_socket_is_held_again(
    redis_url: str, make_rendezvous: MakeRendezvous, shared_database: str
) -> None:
    """A relayed message that reaches an instance after the seat's socket there has gone
    is forwarded again: held for the seat's next socket, wherever it opens."""
    one, two = await two_instances(make_rendezvous, shared_database, redis_url)
    token = await active_session(one)
    late = json.dumps({"type": "pake", "msg": "AAAA", "n": "late"})
    await relay_of(two)._receive(f"m|{token}|guest|{late}")  # no guest socket on two
    async with one.ws_connect(f"/api/ws/{token}/{GUEST}") as guest:
        assert (await next_of_type(guest, "pake"))["n"] == "late"


async def test_a_socket_taking_its_seat_as_the_session_ends_is_closed(
    redis_url: str,
    make_rendezvous: MakeRendezvous,
    shared_database: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The session ends on one instance while a socket on the other is between its
    checks and its seat: it is closed 4003, not left open on an ended session."""
    one, two = await two_instances(make_rendezvous, shared_database, redis_url)
    token = await active_session(one)
    relay = relay_of(two)
    attach = relay.attach

    async def end_first(token: str, role: Role, ws: web.WebSocketResponse) -> None:
        await service(one).end(token, GUEST)
        await attach(token, role, ws)

    monkeypatch.setattr(relay, "attach", end_first)
    async with two.ws_connect(f"/api/ws/{token}/{HOST}") as late:
        assert await closed_with(late) == 4003


async def test_the_countdown_on_both_instances_ends_the_session_once(
    redis_url: str,
    make_rendezvous: MakeRendezvous,
    shared_database: str,
    clock: FakeClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Each instance with a socket of the session runs its countdown; both fire, both
    sockets are told, and the end is counted once."""
    caplog.set_level(logging.INFO, logger="rendezvous")
    one, two = await two_instances(make_rendezvous, shared_database, redis_url)
    token = await active_session(one, ttl_minutes=1)
    clock.advance(seconds=59.8)  # 0.2 s left when the sockets arrive
    async with seated(token, one, two) as (host, guest):
        clock.advance(seconds=0.3)
        for ws in (host, guest):
            assert (await next_of_type(ws, "session-ended"))["reason"] == "timer_expired"
            assert await closed_with(ws) == 1000
    for instance in (one, two):  # each instance's timer, however late it fires
        await service(instance)._expire(token)
    await asyncio.gather(*service(one)._tasks, *service(two)._tasks)
    ended = [r for r in caplog.records if r.getMessage() == "session ended"]
    assert len(ended) == 1
