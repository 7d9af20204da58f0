"""The rendezvous's Redis client, shared by everything that several instances share.

`redis_url` empty (the default): no Redis, `app[REDIS]` is None and the instance keeps
everything in memory. Set: one `redis.asyncio.Redis` for the whole app, connected (and
pinged) when the app starts, so a Redis that cannot be reached fails the start with a
clear message, as the database does; closed when the app stops.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from urllib.parse import urlsplit

from aiohttp import web
from redis.asyncio import BlockingConnectionPool, Redis
from redis.exceptions import RedisError

from .keys import CONFIG

REDIS: web.AppKey[Redis | None] = web.AppKey("redis")
CONNECT_TIMEOUT = 5.0  # seconds to reach Redis at start (and for each reconnection)
CONNECTIONS_MAX = 50  # at most this many connections (a burst waits for a free one,
POOL_WAIT = 5.0  # up to this many seconds, rather than open a descriptor per request)


class RedisUnavailable(Exception):
    """Redis cannot be reached at start (the message names no password)."""


def where(url: str) -> str:
    """The URL's host and port or socket path, with no credentials (for messages)."""
    parts = urlsplit(url)
    if parts.scheme == "unix":
        return f"unix://{parts.path}"
    host = parts.hostname or "?"
    return f"{parts.scheme}://{host}:{parts.port or 6379}"


async def connect(url: str) -> Redis:
    """A client for `url`, already answering PING; RedisUnavailable if it does not."""
    try:
        pool = BlockingConnectionPool.from_url(
            url,
            max_connections=CONNECTIONS_MAX,
            timeout=POOL_WAIT,
            socket_connect_timeout=CONNECT_TIMEOUT,
            health_check_interval=30,
        )
        client: Redis = Redis.from_pool(pool)  # closing the client closes its pool
    except ValueError as exc:
        raise RedisUnavailable(f"redis_url: {exc}") from None
    try:
        await client.ping()
    except (RedisError, OSError) as exc:
        await client.aclose()
        raise RedisUnavailable(
            f"cannot reach Redis at {where(url)}: {type(exc).__name__}: {exc}"
        ) from None
    return client


async def redis_ctx(app: web.Application) -> AsyncIterator[None]:
    """The app's cleanup context for the client: connect at start, close at stop."""
    url = app[CONFIG].redis_url
    client = await connect(url) if url else None
    app[REDIS] = client
    yield
    if client is not None:
        await client.aclose()
