from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from rendezvous.app import create_app
from rendezvous.keys import SERVICE
from rendezvous.service import Rendezvous
from rendezvous.settings import load_config
from tests.processes import start_rendezvous

# The browser, coturn, PostgreSQL and Redis fixtures, registered here for every test module.
pytest_plugins = ("tests.browser", "tests.coturn", "tests.postgres", "tests.redis_server")


class FakeClock:
    """A clock the test moves by hand."""

    def __init__(self, start: datetime | None = None) -> None:
        self.current = start or datetime(2026, 1, 20, 10, 0, tzinfo=UTC)

    def now(self) -> datetime:
        return self.current

    def advance(self, **delta: float) -> None:
        self.current += timedelta(**delta)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


RendezvousClient = TestClient[web.Request, web.Application]
MakeRendezvous = Callable[..., Awaitable[RendezvousClient]]


@pytest.fixture
def rendezvous_database() -> str:
    """The `database` of `make_rendezvous`; a module overrides it to run on both stores."""
    return ":memory:"


@pytest.fixture(params=["sqlite", "postgres"])
def both_databases(request: pytest.FixtureRequest) -> str:
    """SQLite in memory, then a fresh PostgreSQL database (tests/postgres.py)."""
    if request.param == "sqlite":
        return ":memory:"
    url = request.getfixturevalue("postgres_url")
    assert isinstance(url, str)
    return url


@pytest.fixture
def make_rendezvous(
    aiohttp_client: Callable[..., Awaitable[RendezvousClient]],
    clock: FakeClock,
    rendezvous_database: str,
) -> MakeRendezvous:
    """A real rendezvous on 127.0.0.1 (a free port), in memory (or `rendezvous_database`),
    on the fake clock."""

    async def make(**settings: Any) -> RendezvousClient:
        settings.setdefault("database", rendezvous_database)
        config = load_config(environ={}, overrides=settings)
        return await aiohttp_client(create_app(config, clock=clock))

    return make


@pytest.fixture
async def rv(make_rendezvous: MakeRendezvous) -> RendezvousClient:
    return await make_rendezvous()


def service(client: RendezvousClient) -> Rendezvous:
    return client.app[SERVICE]


async def issue(client: RendezvousClient, **body: Any) -> str:
    response = await client.post("/api/tokens/issue", json=body)
    assert response.status == 200, await response.text()
    token = (await response.json())["token"]
    assert isinstance(token, str)
    return token


async def join(client: RendezvousClient, token: str, identity: str) -> dict[str, Any]:
    response = await client.post(
        "/api/tokens/join", json={"token": token, "client_identity": identity}
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def active_session(client: RendezvousClient, **body: Any) -> str:
    token = await issue(client, **body)
    await join(client, token, "host-identity")
    await join(client, token, "guest-identity")
    return token


@pytest.fixture
async def rendezvous(tmp_path: Path) -> AsyncIterator[str]:
    """A real rendezvous process (tests/processes.py) for daemons to meet at; its URL."""
    process, url = await start_rendezvous(tmp_path)
    yield url
    await process.stop()
