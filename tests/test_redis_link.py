"""The rendezvous's Redis client: none by default, connected at start, a clear start
failure when Redis cannot be reached (rendezvous/redis_link.py)."""

from __future__ import annotations

import pytest

from rendezvous.redis_link import REDIS, RedisUnavailable, connect, where
from tests.conftest import MakeRendezvous
from tests.test_cli import run_cli


async def test_no_redis_url_means_no_client(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous()
    assert rv.app[REDIS] is None


async def test_the_app_connects_to_redis_at_start(
    make_rendezvous: MakeRendezvous, redis_url: str
) -> None:
    rv = await make_rendezvous(redis_url=redis_url)
    client = rv.app[REDIS]
    assert client is not None
    assert await client.ping()


async def test_an_unreachable_redis_is_refused_with_its_address() -> None:
    url = "redis://:hunter2secret@127.0.0.1:1/0"  # nothing listens on port 1
    with pytest.raises(RedisUnavailable) as caught:
        await connect(url)
    assert "cannot reach Redis at redis://127.0.0.1:1" in str(caught.value)
    assert "hunter2secret" not in str(caught.value)


def test_where_names_no_credentials() -> None:
    assert where("redis://user:pw@example.net/0") == "redis://example.net:6379"
    assert where("unix:///run/redis/redis.sock") == "unix:///run/redis/redis.sock"


def test_the_server_refuses_to_start_without_its_redis() -> None:
    done = run_cli(
        "--port", "0", "--database", ":memory:", "--redis-url", "unix:///nonexistent/r.sock"
    )
    assert done.returncode == 1, done.stderr
    assert "cannot reach Redis at unix:///nonexistent/r.sock" in done.stderr
    assert "Traceback" not in done.stderr
