"""The rate-limit windows in Redis (rendezvous/limits.py) against a real redis-server:
the same verdicts as the in-memory limiter, one window shared by every instance, atomic
under concurrency, keys that expire, and an outage that lets requests through."""

from __future__ import annotations

import asyncio
import logging
import random
import signal
from collections.abc import AsyncIterator
from typing import Any

import pytest
from redis.asyncio import Redis

from rendezvous import limits as limits_module
from rendezvous.limits import KEY_PREFIX, Limits, MemoryLimits, RedisLimits
from tests.conftest import FakeClock, MakeRendezvous, service
from tests.redis_server import RedisServer
from tests.test_metrics import samples

WINDOW = 3600.0
T0 = 1_768_903_200.0  # a Unix time with a fraction below: exercises float round trips


@pytest.fixture
async def redis(redis_url: str) -> AsyncIterator[Redis]:
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


@pytest.fixture
async def other_redis(redis_url: str) -> AsyncIterator[Redis]:
    """A second client: what another instance would hold."""
    client = Redis.from_url(redis_url)
    yield client
    await client.aclose()


async def test_redis_gives_the_verdicts_the_memory_limiter_gives(redis: Redis) -> None:
    memory, shared = MemoryLimits(WINDOW), RedisLimits(redis, WINDOW)
    pick = random.Random(13)
    now = T0 + 0.123456
    for _ in range(400):
        now += pick.choice([0.001, 1.5, 60.0, 700.0, 3599.999, 3600.0])
        client = pick.choice(["192.0.2.1", "192.0.2.2", "2001:db8::/64"])
        bucket, limit = pick.choice([("token", 3), ("join", 5)])
        record = pick.random() < 0.8
        backends: list[Limits] = [memory, shared]
        if record:
            got = [await b.hit(bucket, client, limit, now) for b in backends]
        else:
            got = [await b.peek(bucket, client, limit, now) for b in backends]
        assert got[1] == got[0], (bucket, client, now, record)


async def test_two_instances_count_in_one_window(redis: Redis, other_redis: Redis) -> None:
    a, b = RedisLimits(redis, WINDOW), RedisLimits(other_redis, WINDOW)
    for i in range(3):
        assert (await a.hit("token", "192.0.2.7", 4, T0 + i)).allowed
    last = await b.hit("token", "192.0.2.7", 4, T0 + 10)
    assert last.allowed and last.remaining == 0
    refused = await a.hit("token", "192.0.2.7", 4, T0 + 11)
    assert not refused.allowed
    assert refused.reset_at == T0 + WINDOW  # when the first hit, made on A, leaves
    assert not (await b.peek("token", "192.0.2.7", 4, T0 + 12)).allowed
    # The window slides on either instance's clock: the first hit leaves at T0 + WINDOW.
    assert (await b.hit("token", "192.0.2.7", 4, T0 + WINDOW)).allowed
    assert not (await a.hit("token", "192.0.2.7", 4, T0 + WINDOW + 0.5)).allowed
    # Other buckets and clients have windows of their own.
    assert (await b.hit("join", "192.0.2.7", 4, T0 + 12)).allowed
    assert (await b.hit("token", "192.0.2.8", 4, T0 + 12)).allowed
    assert await a.refusals(["token", "join"]) == {"token": 3, "join": 0}


async def test_the_last_slot_goes_to_one_request_only(redis: Redis, other_redis: Redis) -> None:
    a, b = RedisLimits(redis, WINDOW), RedisLimits(other_redis, WINDOW)
    hits = [(a if i % 2 else b).hit("join", "198.51.100.1", 10, T0 + i / 1000) for i in range(60)]
    verdicts = await asyncio.gather(*hits)
    assert sum(v.allowed for v in verdicts) == 10


async def test_a_window_expires_with_its_newest_hit(redis: Redis) -> None:
    limits = RedisLimits(redis, 30.0)
    await limits.peek("token", "192.0.2.9", 2, T0)
    assert await redis.exists(f"{KEY_PREFIX}token:192.0.2.9") == 0  # a look stores nothing
    await limits.hit("token", "192.0.2.9", 2, T0)
    assert 29_000 < await redis.pttl(f"{KEY_PREFIX}token:192.0.2.9") <= 30_000
    await limits.hit("token", "192.0.2.9", 2, T0 + 1)
    await limits.hit("token", "192.0.2.9", 2, T0 + 2)  # refused: stores nothing either
    assert await redis.zcard(f"{KEY_PREFIX}token:192.0.2.9") == 2
    assert limits.expire(T0 + 1000) == 0  # nothing to sweep: Redis expires the keys


async def test_in_an_outage_the_instance_decides_alone_and_says_so(
    redis: Redis, redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    alone: list[str] = []
    limits = RedisLimits(redis, WINDOW, decided_locally=alone.append)
    asked = 0
    script = limits._script

    async def counted(**kwargs: Any) -> Any:
        nonlocal asked
        asked += 1
        return await script(**kwargs)

    limits._script = counted  # type: ignore[assignment]
    assert (await limits.hit("token", "192.0.2.1", 1, T0)).allowed
    assert not (await limits.hit("token", "192.0.2.1", 1, T0 + 1)).allowed
    assert asked == 2

    redis_server.stop()
    with caplog.at_level(logging.INFO, logger="rendezvous"):
        verdicts = [
            (await limits.hit("token", "192.0.2.1", 1, T0 + at)).allowed
            for at in (2.0, 2.5, 2.9, 3.0)
        ]
        assert verdicts == [True, False, False, False]  # a window of its own: not open
        assert alone == ["token"] * 4
        assert asked == 4  # asked at 2.0 (fails), not again until RECHECK_AFTER (at 3.0)
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1  # one line per outage, not one per request
        assert "Redis does not answer" in warnings[0].getMessage()

        redis_server.start()  # an empty Redis (no persistence): the script is loaded again
        assert (await limits.hit("token", "192.0.2.1", 1, T0 + 10)).allowed
        assert asked == 5
        assert not (await limits.hit("token", "192.0.2.1", 1, T0 + 11)).allowed
        assert any("answers again" in r.getMessage() for r in caplog.records)
    assert alone == ["token"] * 4


# -- two rendezvous apps sharing one Redis --------------------------------------------


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_two_rendezvous_share_each_clients_hour(
    make_rendezvous: MakeRendezvous, redis_url: str, clock: FakeClock
) -> None:
    settings = {"redis_url": redis_url, "token_rate_limit_per_hour": 3}
    a, b = await make_rendezvous(**settings), await make_rendezvous(**settings)
    assert isinstance(service(a).limits, RedisLimits)
    for rv in (a, a, b):
        assert (await rv.post("/api/tokens/issue", json={})).status == 200
        clock.advance(minutes=10)
    refused = await b.post("/api/tokens/issue", json={})
    assert refused.status == 429
    assert refused.headers["Retry-After"] == str(30 * 60)  # the first hit, on A, leaves then
    assert (await a.post("/api/tokens/issue", json={})).status == 429
    clock.advance(minutes=30)  # the window slides on the shared clock of both apps
    assert (await b.post("/api/tokens/issue", json={})).status == 200
    assert (await a.post("/api/tokens/issue", json={})).status == 429


async def test_an_ipv6_client_counts_by_its_64_on_every_instance(
    make_rendezvous: MakeRendezvous, redis_url: str
) -> None:
    settings = {
        "redis_url": redis_url,
        "trusted_proxies": "127.0.0.0/8",
        "token_rate_limit_per_hour": 2,
    }
    a, b = await make_rendezvous(**settings), await make_rendezvous(**settings)
    home = "2001:db8:aa:bb::"
    issued = [
        await a.post("/api/tokens/issue", json={}, headers=_from(home + "1")),
        await b.post("/api/tokens/issue", json={}, headers=_from(home + "ffff:2")),
    ]
    assert [r.status for r in issued] == [200, 200]
    rotated = await b.post("/api/tokens/issue", json={}, headers=_from(home + "1234:5678:9"))
    assert rotated.status == 429  # another address in the same /64: the same client
    neighbour = await a.post("/api/tokens/issue", json={}, headers=_from("2001:db8:aa:bc::1"))
    assert neighbour.status == 200  # the next /64 is another home


async def test_with_redis_down_each_instance_limits_alone_and_counts_it(
    make_rendezvous: MakeRendezvous, redis_server: RedisServer
) -> None:
    rv = await make_rendezvous(redis_url=redis_server.url, token_rate_limit_per_hour=1)
    assert (await rv.post("/api/tokens/issue", json={})).status == 200
    assert (await rv.post("/api/tokens/issue", json={})).status == 429
    redis_server.stop()
    assert (await rv.post("/api/tokens/issue", json={})).status == 200  # no 500, no lock-out
    assert (await rv.post("/api/tokens/issue", json={})).status == 429  # and no open door
    scraped = samples(await (await rv.get("/metrics")).text())
    assert scraped['orbit_rate_limit_local_total{limit="token"}'] == 2


async def test_a_burst_on_a_hung_redis_meets_the_local_window(
    redis: Redis, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(limits_module, "LIMIT_TIMEOUT", 0.05)
    alone: list[str] = []
    limits = RedisLimits(redis, WINDOW, decided_locally=alone.append)
    assert (await limits.hit("join", "192.0.2.5", 3, T0)).allowed
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # answers nothing, refuses nothing
    try:
        burst = [limits.hit("join", "192.0.2.5", 3, T0 + 1 + n / 1000) for n in range(200)]
        verdicts = await asyncio.gather(*burst)
        assert sum(v.allowed for v in verdicts) == 3  # the local window's 3, not 200
        assert alone == ["join"] * 200
    finally:
        redis_server.process.send_signal(signal.SIGCONT)
