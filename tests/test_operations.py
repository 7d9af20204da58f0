"""Operations with Redis: /healthz and /metrics name what answers (the database, Redis, the
pool, the shared figures), and SIGTERM hands a real process's sockets over (close 1001)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType
from redis.asyncio import Redis

from rendezvous import operations
from tests.conftest import MakeRendezvous, RendezvousClient, issue
from tests.processes import start_rendezvous
from tests.redis_server import RedisServer
from tests.test_metrics import samples


async def _scrape(rv: RendezvousClient) -> dict[str, float]:
    response = await rv.get("/metrics")
    assert response.status == 200
    return samples(await response.text())


async def test_healthz_names_redis_when_it_stops_and_recovers(
    make_rendezvous: MakeRendezvous, redis_server: RedisServer
) -> None:
    rv = await make_rendezvous(redis_url=redis_server.url)
    healthy = await rv.get("/healthz")
    assert healthy.status == 200
    body = await healthy.json()
    assert body["status"] == "ok"
    assert body["database"]["ok"] is True and body["database"]["ms"] >= 0
    assert body["redis"]["ok"] is True and body["redis"]["ms"] >= 0

    redis_server.stop()
    sick = await rv.get("/healthz")
    assert sick.status == 503
    body = await sick.json()
    assert body["status"] == "degraded"
    assert body["redis"]["ok"] is False
    assert body["database"]["ok"] is True  # it says which part fails
    scraped = await _scrape(rv)  # /metrics still answers, without the shared figures
    assert scraped["orbit_redis_ping_failures_total"] >= 2
    assert not any(name.startswith("orbit_shared_") for name in scraped)

    redis_server.start()
    again = await rv.get("/healthz")
    assert again.status == 200
    assert (await again.json())["redis"]["ok"] is True


async def test_a_hung_redis_is_a_503_within_the_timeout(
    make_rendezvous: MakeRendezvous, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    rv = await make_rendezvous(redis_url=redis_server.url)
    monkeypatch.setattr(operations, "PROBE_TIMEOUT", 0.05)
    assert redis_server.process is not None
    redis_server.process.send_signal(signal.SIGSTOP)  # accepts nothing, answers nothing
    try:
        sick = await rv.get("/healthz")
        assert sick.status == 503
        assert (await sick.json())["redis"]["ok"] is False
    finally:
        redis_server.process.send_signal(signal.SIGCONT)


@pytest.mark.parametrize("database", ["sqlite", "postgres"])
async def test_metrics_show_redis_the_pool_and_the_shared_refusals(
    make_rendezvous: MakeRendezvous,
    redis_url: str,
    database: str,
    request: pytest.FixtureRequest,
) -> None:
    where = ":memory:" if database == "sqlite" else request.getfixturevalue("postgres_url")
    settings = {"redis_url": redis_url, "database": where, "token_rate_limit_per_hour": 1}
    a = await make_rendezvous(instance_name="a", **settings)
    b = await make_rendezvous(instance_name="b", **settings)
    await issue(a)
    assert (await a.post("/api/tokens/issue", json={})).status == 429
    assert (await b.post("/api/tokens/issue", json={})).status == 429
    assert (await b.post("/api/tokens/issue", json={})).status == 429

    got_a, got_b = await _scrape(a), await _scrape(b)
    assert got_a['orbit_instance_info{name="a"}'] == 1
    assert got_b['orbit_instance_info{name="b"}'] == 1
    # Per instance: its own refusals; shared: every instance's, the same on both.
    assert got_a['orbit_rate_limited_total{limit="token"}'] == 1
    assert got_b['orbit_rate_limited_total{limit="token"}'] == 2
    assert got_a['orbit_shared_rate_limited_total{limit="token"}'] == 3
    assert got_b['orbit_shared_rate_limited_total{limit="token"}'] == 3
    assert got_b['orbit_shared_rate_limited_total{limit="join"}'] == 0
    assert got_a["orbit_shared_instances"] == got_b["orbit_shared_instances"] == 2
    # Redis round-trip time: a PING at start (the periodic probe) and at the scrape.
    assert got_a["orbit_redis_ping_seconds_count"] >= 1
    assert got_a["orbit_redis_ping_failures_total"] == 0
    # The pool: one connection on SQLite; asyncpg's pool (at least one open) on PostgreSQL.
    idle = got_a['orbit_db_pool_connections{state="idle"}']
    in_use = got_a['orbit_db_pool_connections{state="in_use"}']
    if database == "sqlite":
        assert (idle, in_use, got_a["orbit_db_pool_max_connections"]) == (1, 0, 1)
    else:
        assert idle + in_use >= 1
        assert got_a["orbit_db_pool_max_connections"] == 10
    await b.close()  # stopped cleanly: its heartbeat key goes with it
    assert (await _scrape(a))["orbit_shared_instances"] == 1
    # One that died without a word is counted until its last heartbeat is 10 s old.
    redis = Redis.from_url(redis_url)
    try:
        now_ms = int(time.time() * 1000)
        await redis.zadd("orbit:instances", {"died-now": now_ms, "died-long-ago": now_ms - 60_000})
        assert (await _scrape(a))["orbit_shared_instances"] == 2
        assert await redis.zscore("orbit:instances", "died-long-ago") is None  # dropped
    finally:
        await redis.aclose()


async def test_without_redis_metrics_have_no_redis_figures(rv: RendezvousClient) -> None:
    got = await _scrape(rv)
    assert got["orbit_redis_ping_seconds_count"] == 0
    assert not any(name.startswith("orbit_shared_") for name in got)
    assert got['orbit_db_pool_connections{state="idle"}'] == 1


async def test_the_periodic_probe_pings_redis_between_scrapes(
    make_rendezvous: MakeRendezvous, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    pinged = asyncio.Event()
    rounds = 0
    real_ping = operations.ping_redis

    async def counting_ping(*args: object, **kwargs: object) -> tuple[bool, float]:
        nonlocal rounds
        result = await real_ping(*args, **kwargs)  # type: ignore[arg-type]
        rounds += 1
        if rounds == 3:
            pinged.set()
        return result

    monkeypatch.setattr(operations, "REDIS_PROBE_INTERVAL", 0.01)
    monkeypatch.setattr(operations, "ping_redis", counting_ping)
    rv = await make_rendezvous(redis_url=redis_url)
    await asyncio.wait_for(pinged.wait(), 10)  # three rounds, no request made
    assert (await _scrape(rv))["orbit_redis_ping_seconds_count"] >= 3


async def test_sigterm_closes_every_socket_with_1001_then_exits(
    tmp_path: Path, redis_url: str
) -> None:
    process, url = await start_rendezvous(tmp_path, "--redis-url", redis_url)
    try:
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{url}/api/tokens/issue", json={}) as response:
                token = (await response.json())["token"]
            for who in ("host-secret-id", "guest-secret-id"):
                async with http.post(
                    f"{url}/api/tokens/join", json={"token": token, "client_identity": who}
                ) as response:
                    assert response.status == 200
            silent = await http.ws_connect(f"{url}/api/ws/{token}/host-secret-id")
            guest = await http.ws_connect(f"{url}/api/ws/{token}/guest-secret-id")
            assert (await guest.receive_json())["type"] == "session-status"
            process.proc.send_signal(signal.SIGTERM)
            # The guest hears 1001 while the host's client has not read a thing since SIGTERM
            # (a silent peer, closed first, does not hold the others' hand-over).
            assert await asyncio.wait_for(_until_closed(guest), 10) == 1001
            assert await asyncio.wait_for(_until_closed(silent), 10) == 1001
            with pytest.raises(aiohttp.ClientConnectionError):  # it accepts no one new
                async with http.get(f"{url}/healthz") as response:
                    pass
        assert await asyncio.wait_for(process.proc.wait(), 10) == 0
    finally:
        await process.stop()


async def _until_closed(ws: aiohttp.ClientWebSocketResponse) -> int | None:
    while True:
        msg = await ws.receive()
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSED, WSMsgType.CLOSING):
            return ws.close_code if msg.type is not WSMsgType.CLOSE else int(msg.data)
