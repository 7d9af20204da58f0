"""The application factory: `create_app(config, identity, login)` wires security and routes."""

from __future__ import annotations

from aiohttp import web

from orbitcore.errors import make_error_middleware

from . import api, invite, pages
from .error_pages import not_found_page
from .identity import Identity
from .keys import CONFIG, IDENTITY, LOGIN
from .lan import setup_lan
from .security import (
    LoginGate,
    add_security_headers,
    login,
    make_host_middleware,
    make_login_middleware,
    make_origin_middleware,
)
from .settings import Config

REQUEST_BODY_MAX = 256 * 1024


def create_app(config: Config, identity: Identity, login_gate: LoginGate) -> web.Application:
    app = web.Application(
        client_max_size=REQUEST_BODY_MAX,
        middlewares=[
            make_error_middleware("Something went wrong in the daemon."),
            make_host_middleware(config.host, config.profile),
            make_origin_middleware(config.host, config.profile),
            make_login_middleware(login_gate),
            not_found_page,
        ],
    )
    app[CONFIG] = config
    app[IDENTITY] = identity
    app[LOGIN] = login_gate
    app.on_response_prepare.append(add_security_headers)
    app.router.add_get("/login", _login, allow_head=False)
    app.router.add_get("/healthz", _healthz)
    pages.setup(app)
    api.setup(app)
    setup_lan(app)
    invite.setup(app)
    return app


async def _login(request: web.Request) -> web.StreamResponse:
    return await login(request, request.app[LOGIN])


async def _healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})
