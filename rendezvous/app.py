"""The application factory: `create_app(config)` wires store, relay, service and routes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from datetime import timedelta

from aiohttp import web

from orbitcore.errors import make_error_middleware

from . import admin_page, api, gc_policy, join_page, operations, reports, ws
from .admin import AdminSessions
from .clock import Clock, SystemClock
from .http import compress_pages, make_cors_middleware, parse_networks, security_headers
from .keys import ADMIN, CONFIG, SERVICE, TRUSTED_PROXIES
from .metrics import Metrics
from .redis_link import REDIS, redis_ctx
from .relay import GOING_AWAY, Relay, SeatRelay
from .relay_redis import RedisRelay, instance_id
from .service import Rendezvous
from .settings import Config
from .store import Store, open_store

log = logging.getLogger("rendezvous")
REQUEST_BODY_MAX = 64 * 1024


def create_app(
    config: Config, *, clock: Clock | None = None, store: Store | None = None
) -> web.Application:
    app = web.Application(
        client_max_size=REQUEST_BODY_MAX,
        # aiohttp rounds timers longer than this up to a whole second: all the sockets opened
        # within one second would ping in one loop iteration (tests/test_ws_heartbeat.py)
        handler_args={"timeout_ceil_threshold": ws.HEARTBEAT_SECONDS},
        middlewares=[
            make_error_middleware("Something went wrong on the server."),
            security_headers,
            make_cors_middleware(config.cors_origins),
            compress_pages,
        ],
    )
    app[CONFIG] = config
    app[TRUSTED_PROXIES] = parse_networks(config.trusted_proxies)
    store = store or open_store(config.database_path(), config.ttl_minute_seconds)
    app[ADMIN] = AdminSessions(
        config.admin_password_hash, timedelta(minutes=config.admin_session_minutes), store
    )
    app[reports.NOTIFY_TASKS] = set()
    relay: SeatRelay
    if config.redis_url:  # several instances: the relay between them goes through Redis
        relay = RedisRelay(
            instance=instance_id(config.instance_name, config.port),
            held_messages_max=config.held_messages_max,
            held_bytes_max=config.held_bytes_max,
        )
    else:
        relay = Relay(
            held_messages_max=config.held_messages_max, held_bytes_max=config.held_bytes_max
        )
    metrics = Metrics()
    metrics.watch_relay(lambda: relay.open_sockets, lambda: relay.relayed)
    app[SERVICE] = Rendezvous(
        config,
        store,
        clock or SystemClock(),
        relay,
        metrics,
    )
    app.add_routes(api.routes)
    app.add_routes(ws.routes)
    app.add_routes(reports.routes)
    admin_page.setup(app)
    join_page.setup(app)
    app.cleanup_ctx.append(redis_ctx)  # first: an unreachable Redis fails the start
    app.cleanup_ctx.append(_relay_ctx)
    app.cleanup_ctx.append(_store_ctx)
    app.cleanup_ctx.append(_sweeper_ctx)
    app.cleanup_ctx.append(_notify_ctx)
    operations.setup(app)  # /healthz, /metrics; limits in Redis; after redis_ctx
    gc_policy.setup(app, config.gc_thaw_minutes * 60)  # full collections: survivors frozen
    app.on_shutdown.append(_close_sockets)
    return app


async def _relay_ctx(app: web.Application) -> AsyncIterator[None]:
    relay = app[SERVICE].relay
    if not isinstance(relay, RedisRelay):
        yield
        return
    client = app[REDIS]
    assert client is not None  # redis_url is set
    await relay.start(client)
    yield
    await relay.stop()


async def _store_ctx(app: web.Application) -> AsyncIterator[None]:
    await app[SERVICE].store.open()  # a database that cannot be reached fails the start
    yield
    svc = app[SERVICE]
    await svc.close()
    await svc.store.close()


async def _sweeper_ctx(app: web.Application) -> AsyncIterator[None]:
    svc, interval = app[SERVICE], app[CONFIG].cleanup_interval_seconds

    async def loop() -> None:
        while True:
            try:
                await svc.sweep()
            except Exception:
                log.exception("sweep failed")
            await asyncio.sleep(interval)

    task = asyncio.create_task(loop())
    yield
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task


async def _notify_ctx(app: web.Application) -> AsyncIterator[None]:
    yield
    tasks = app[reports.NOTIFY_TASKS]
    if tasks:
        await asyncio.wait(tasks, timeout=10)


async def _close_sockets(app: web.Application) -> None:
    await app[SERVICE].relay.close_all(GOING_AWAY, b"Server shutting down")
