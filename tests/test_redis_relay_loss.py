"""Losing one of two instances that share Redis: stopped gracefully, killed, or hung
past its heartbeat. The peer's messages wait in Redis; the socket reconnecting on the
surviving instance receives them in order."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.conftest import MakeRendezvous, active_session
from tests.processes import Process, start_rendezvous
from tests.test_redis_relay import relay_of, two_instances
from tests.test_ws_relay import GUEST, HOST, closed_with, next_json, next_of_type, seated

WAIT = 10.0  # seconds for a condition a test waits on


def pake(n: int) -> str:
    return json.dumps({"type": "pake", "msg": "AAAA", "n": n})


async def test_a_graceful_stop_closes_with_1001_and_the_seat_moves(
    redis_url: str, make_rendezvous: MakeRendezvous, tmp_path: Path
) -> None:
    one, two = await two_instances(make_rendezvous, f"sqlite://{tmp_path / 's.db'}", redis_url)
    token = await active_session(one)
    async with seated(token, one, two) as (host, guest):
        await two.server.close()  # on_shutdown: seats freed, sockets closed 1001
        assert await closed_with(guest) == 1001
        for n in range(3):
            await host.send_str(pake(n))
        async with one.ws_connect(f"/api/ws/{token}/{GUEST}") as again:
            assert [(await next_of_type(again, "pake"))["n"] for _ in range(3)] == [0, 1, 2]
    assert relay_of(two).open_sockets == 0


class Pair:
    """Two rendezvous processes sharing one SQLite file and one Redis."""

    def __init__(self, processes: list[Process], urls: list[str], redis: Redis) -> None:
        self.processes, self.urls, self.redis = processes, urls, redis
        self.http = aiohttp.ClientSession()

    async def post(self, index: int, path: str, body: dict[str, object]) -> dict[str, object]:
        async with self.http.post(self.urls[index] + path, json=body) as response:
            assert response.status == 200, await response.text()
            answer: dict[str, object] = await response.json()
            return answer

    async def session(self) -> str:
        token = (await self.post(0, "/api/tokens/issue", {}))["token"]
        assert isinstance(token, str)
        for identity in (HOST, GUEST):
            await self.post(0, "/api/tokens/join", {"token": token, "client_identity": identity})
        return token

    def socket(self, index: int, token: str, identity: str) -> Any:
        url = self.urls[index].replace("http://", "ws://") + f"/api/ws/{token}"
        return self.http.ws_connect(
            url,
            headers={"Authorization": f"Bearer {identity}"},
            timeout=aiohttp.ClientWSTimeout(ws_close=1.0),  # a hung instance never answers
        )

    async def listeners(self) -> int:
        channels = await self.redis.pubsub_channels("orbit:to:*")
        return len(channels)


@pytest.fixture
async def pair(redis_url: str, tmp_path: Path) -> AsyncIterator[Pair]:
    database = f"sqlite://{tmp_path / 'shared.db'}"
    processes, urls = [], []
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        flags = ("--database", database, "--redis-url", redis_url, "--instance-name", name)
        process, url = await start_rendezvous(tmp_path / name, *flags)
        processes.append(process)
        urls.append(url)
    redis = Redis.from_url(redis_url)
    pair = Pair(processes, urls, redis)
    try:
        yield pair
    finally:
        await pair.http.close()
        for process in processes:
            await process.stop(signal.SIGKILL)
        await redis.aclose()


async def until(condition: Callable[[], Awaitable[bool]]) -> None:
    """Wait (polling Redis, the only way to watch it) until `condition()` holds."""
    async with asyncio.timeout(WAIT):
        while not await condition():  # noqa: ASYNC110 (Redis has no event to wait on)
            await asyncio.sleep(0.02)


async def relayed_then_lost(pair: Pair, lose: Callable[[], Awaitable[None]]) -> None:
    """A split pair relays; instance b is lost (`lose`); the host's messages wait and
    reach the guest reconnecting on a."""
    token = await pair.session()
    async with (
        pair.socket(0, token, HOST) as host,
        pair.socket(1, token, GUEST) as guest,
    ):
        await next_of_type(host, "session-status")
        await next_of_type(guest, "session-status")
        await host.send_str(pake(-1))
        assert (await next_of_type(guest, "pake"))["n"] == -1  # through b
        await lose()
        for n in range(3):
            await host.send_str(pake(n))
        await host.send_str(json.dumps({"type": "ping"}))
        assert (await next_of_type(host, "pong")) == {"type": "pong"}  # none refused
        held = await pair.redis.lrange(f"orbit:held:{token}:guest", 0, -1)
        assert [json.loads(text)["n"] for text in held] == [0, 1, 2]
        async with pair.socket(0, token, GUEST) as again:
            assert (await next_json(again))["type"] == "session-status"
            assert [(await next_json(again))["n"] for _ in range(3)] == [0, 1, 2]


async def test_a_killed_instance_gets_no_more_messages(pair: Pair) -> None:
    """Killed: its subscription drops with its connection, so nothing is published
    into the void even before its heartbeat expires."""

    async def kill() -> None:
        await pair.processes[1].stop(signal.SIGKILL)
        await until(lambda: _fewer(pair, 1))  # b's subscription is gone

    await relayed_then_lost(pair, kill)


async def test_a_hung_instance_is_passed_over_once_its_heartbeat_expires(pair: Pair) -> None:
    """Hung (SIGSTOP): still subscribed, but its heartbeat key expires; the test deletes
    the key rather than wait out its TTL."""

    async def hang() -> None:
        pair.processes[1].proc.send_signal(signal.SIGSTOP)
        for key in await pair.redis.keys("orbit:alive:b/*"):
            await pair.redis.delete(key)

    try:
        await relayed_then_lost(pair, hang)
    finally:
        pair.processes[1].proc.send_signal(signal.SIGCONT)


async def _fewer(pair: Pair, count: int) -> bool:
    return await pair.listeners() <= count
