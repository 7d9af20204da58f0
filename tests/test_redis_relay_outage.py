"""Redis failing under two instances: sockets stay open and say what was not relayed,
a socket that cannot take its seat closes 1013, and the relay resumes once Redis is
back (the seats are put back, the subscriptions renewed)."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest
from redis.asyncio import Redis

from rendezvous import relay_redis
from tests.conftest import MakeRendezvous, RendezvousClient, active_session
from tests.redis_server import RedisServer
from tests.test_redis_relay import relay_of, two_instances
from tests.test_ws_relay import HOST, closed_with, next_of_type, seated

WAIT = 15.0  # seconds: the heartbeat (every 3 s) puts the seats back


async def pair_of(
    redis_server: RedisServer, make_rendezvous: MakeRendezvous, tmp_path: Path
) -> tuple[RendezvousClient, RendezvousClient]:
    database = f"sqlite://{tmp_path / 'shared.db'}"
    return await two_instances(make_rendezvous, database, redis_server.url)


async def test_the_relay_refuses_while_redis_is_down_and_resumes_after(
    redis_server: RedisServer, make_rendezvous: MakeRendezvous, tmp_path: Path
) -> None:
    one, two = await pair_of(redis_server, make_rendezvous, tmp_path)
    token = await active_session(one)
    async with seated(token, one, two) as (host, guest):
        redis_server.stop()  # Redis forgets everything: no persistence
        await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "id": "lost"}))
        refused = await next_of_type(host, "error")
        assert refused["code"] == "relay_unavailable"
        assert refused["in_reply_to"] == {"type": "pake", "id": "lost"}
        async with two.ws_connect(f"/api/ws/{token}/{HOST}") as newcomer:
            assert await closed_with(newcomer) == 1013
        await host.send_str(json.dumps({"type": "ping"}))
        assert (await next_of_type(host, "pong")) == {"type": "pong"}  # still open

        redis_server.start()
        redis = Redis.from_url(redis_server.url)
        try:
            async with asyncio.timeout(WAIT):
                while not await _resumed(redis, token):  # noqa: ASYNC110 (no event to wait on)
                    await asyncio.sleep(0.05)
        finally:
            await redis.aclose()
        await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "id": "after"}))
        assert (await next_of_type(guest, "pake"))["id"] == "after"
        await guest.send_str(json.dumps({"type": "sealed", "box": "b64", "id": "back"}))
        assert (await next_of_type(host, "sealed"))["id"] == "back"


async def _resumed(redis: Redis, token: str) -> bool:
    """Both seats back in Redis, and both instances listening again."""
    seats = await redis.exists(f"orbit:seat:{token}:host", f"orbit:seat:{token}:guest")
    return seats == 2 and len(await redis.pubsub_channels("orbit:to:*")) == 2


async def test_a_seat_another_instance_took_unnoticed_is_let_go(
    redis_server: RedisServer,
    make_rendezvous: MakeRendezvous,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """If the `replaced` message never arrived, the next presence refresh notices the
    seat is another socket's and closes this one with 4002; the other seat stays."""
    monkeypatch.setattr(relay_redis, "REFRESH_BATCH", 1)  # one pipeline per seat
    one, _ = await pair_of(redis_server, make_rendezvous, tmp_path)
    token = await active_session(one)
    async with seated(token, one) as (_host, guest):
        redis = Redis.from_url(redis_server.url)
        try:
            await redis.set(f"orbit:seat:{token}:guest", "b/0000|7")
            await relay_of(one)._refresh_presence()
            assert await closed_with(guest) == 4002
            assert relay_of(one).open_sockets == 1
            assert await redis.ttl(f"orbit:seat:{token}:host") > 0  # kept, with its TTL
        finally:
            await redis.aclose()
