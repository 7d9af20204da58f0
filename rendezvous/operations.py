"""What an operator asks of an instance: `/healthz`, `/metrics`, and the Redis-backed limits.

`/healthz` asks the database (count the sessions) and, when configured, Redis (PING) at
once, each within PROBE_TIMEOUT: 200 `{"status": "ok", ...}` when both answer, else 503
`{"status": "degraded", ...}`; each part says `ok` and how many milliseconds it took.
`/metrics` renders `Metrics` after the same probes, the database pool's use, and the
figures every instance shares in Redis. A periodic PING (every REDIS_PROBE_INTERVAL)
keeps the Redis round-trip histogram filled between scrapes.

`setup(app)` adds the routes and two cleanup contexts, after the Redis client's
(`redis_link.redis_ctx`): the rate limits move to Redis when it is configured, and the
periodic probe runs while the app does.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
import time
from collections.abc import AsyncIterator
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from .keys import CONFIG, SERVICE
from .limits import RedisLimits
from .metrics import CONTENT_TYPE_LATEST, Scrape, Shared
from .redis_link import REDIS
from .relay_redis import RedisRelay
from .service import RATE_WINDOW, Rendezvous
from .session import State

log = logging.getLogger("rendezvous")
routes = web.RouteTableDef()
PROBE_TIMEOUT = 2.0  # seconds the database or Redis may take to answer /healthz or /metrics
REDIS_PROBE_INTERVAL = 15.0  # seconds between the periodic PINGs
BUCKETS = ["token", "join", "report", "admin_login"]


def setup(app: web.Application) -> None:
    app.add_routes(routes)
    app.cleanup_ctx.append(_limits_ctx)
    app.cleanup_ctx.append(_redis_probe_ctx)


def instance_name(app: web.Application) -> str:
    config = app[CONFIG]
    return config.instance_name or f"{socket.gethostname()}:{config.port}"


async def _probe_database(svc: Rendezvous) -> tuple[dict[State, int] | None, float]:
    """The sessions by state (None if the database does not answer in time), and the time."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            counts = await svc.store.count_by_state(svc.now())
    except Exception:
        log.warning("database probe failed", exc_info=True)
        counts = None
    took = time.perf_counter() - started
    svc.metrics.probed(took, counts is not None)
    return counts, took


async def ping_redis(svc: Rendezvous, redis: Redis) -> tuple[bool, float]:
    """Whether Redis answered a PING within PROBE_TIMEOUT, and the time (the metric)."""
    started = time.perf_counter()
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):  # not wait_for: on 3.11 it can swallow
            await redis.ping()  # a cancellation that comes as the ping answers
        ok = True
    except (RedisError, OSError, TimeoutError) as exc:
        log.warning("Redis probe failed", extra={"fields": {"error": type(exc).__name__}})
        ok = False
    took = time.perf_counter() - started
    svc.metrics.redis_pinged(took, ok)
    return ok, took


def _part(ok: bool, took: float) -> dict[str, Any]:
    return {"ok": ok, "ms": round(took * 1000, 3)}


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    svc, redis = request.app[SERVICE], request.app[REDIS]
    if redis is None:
        counts, took = await _probe_database(svc)
        redis_part = None
        healthy = counts is not None
    else:
        (counts, took), (redis_ok, redis_took) = await asyncio.gather(
            _probe_database(svc), ping_redis(svc, redis)
        )
        redis_part = _part(redis_ok, redis_took)
        healthy = counts is not None and redis_ok
    body = {
        "status": "ok" if healthy else "degraded",
        "database": _part(counts is not None, took),
        "redis": redis_part,
    }
    return web.json_response(body, status=200 if healthy else 503)


@routes.get("/metrics")
async def metrics(request: web.Request) -> web.Response:
    svc, redis = request.app[SERVICE], request.app[REDIS]
    shared = None
    if redis is None:
        counts, _ = await _probe_database(svc)
    else:
        (counts, _), (redis_ok, _) = await asyncio.gather(
            _probe_database(svc), ping_redis(svc, redis)
        )
        if redis_ok:
            shared = await _read_shared(svc, redis)
    scrape = Scrape(sessions=counts or {}, pool=svc.store.pool_use(), shared=shared)
    body = svc.metrics.render(scrape)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def _read_shared(svc: Rendezvous, redis: Redis) -> Shared | None:
    """The figures every instance shares, or None if Redis does not give them in time."""
    try:
        async with asyncio.timeout(PROBE_TIMEOUT):
            return await _shared_figures(svc, redis)
    except (RedisError, OSError, TimeoutError):
        return None  # the scrape goes on without them


async def _shared_figures(svc: Rendezvous, redis: Redis) -> Shared:
    limits, relay = svc.limits, svc.relay
    refused = await limits.refusals(BUCKETS) if isinstance(limits, RedisLimits) else {}
    instances = None
    if isinstance(relay, RedisRelay):
        instances = await relay.live_instances()
    return Shared(rate_limited=refused, instances=instances)


async def _limits_ctx(app: web.Application) -> AsyncIterator[None]:
    """Name the instance in /metrics; with Redis, count the rate limits there."""
    svc, redis = app[SERVICE], app[REDIS]
    svc.metrics.name_instance(instance_name(app))
    if redis is not None:
        svc.limits = RedisLimits(
            redis,
            RATE_WINDOW.total_seconds(),
            keys_max=app[CONFIG].rate_limit_keys_max,
            decided_locally=svc.metrics.rate_limit_decided_locally,
        )
    yield


async def _redis_probe_ctx(app: web.Application) -> AsyncIterator[None]:
    svc, redis = app[SERVICE], app[REDIS]
    if redis is None:
        yield
        return

    async def loop() -> None:
        while True:
            await ping_redis(svc, redis)
            await asyncio.sleep(REDIS_PROBE_INTERVAL)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
