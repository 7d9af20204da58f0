"""A real daemon app, in process on 127.0.0.1 and logged in, for the HTTP input tests.

`daemon_client` builds it the way `orbitd` does (create_app with its security layer)
and redeems a login link, so requests reach the API's handlers; `api_headers` are
what the daemon's own page sends (its Origin, JSON).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from orbitd.app import create_app
from orbitd.identity import load_or_create_identity
from orbitd.security import LoginGate
from orbitd.settings import load_config

Client = TestClient[web.Request, web.Application]
LOGIN_SECRET = "fuzz-login-secret-" + "y" * 30


def daemon_app(data_dir: Path, **settings: Any) -> web.Application:
    """The daemon's app as `orbitd` builds it; its login link is `LOGIN_PATH`."""
    overrides = {"data_dir": str(data_dir), "profile": "alice", "lan_enabled": False} | settings
    config = load_config(environ={}, overrides=overrides)
    gate = LoginGate(profile=config.profile, login_secret=LOGIN_SECRET)
    return create_app(config, load_or_create_identity(data_dir), gate)


async def daemon_client(
    aiohttp_client: Callable[..., Awaitable[Client]], data_dir: Path, **settings: Any
) -> Client:
    client = await aiohttp_client(daemon_app(data_dir, **settings))
    response = await client.get(f"/login?secret={LOGIN_SECRET}", allow_redirects=False)
    assert response.status == 303, await response.text()
    return client


def api_headers(client: Client, content_type: str = "application/json") -> dict[str, str]:
    return {"Origin": f"http://127.0.0.1:{client.port}", "Content-Type": content_type}
