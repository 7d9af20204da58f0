"""LAN mode: nearby daemons (zeroconf), their liveness, and the verified-peers store.

`setup_lan(app)` (called by `create_app` after `api.setup(app)`) adds:

- `app[LAN_APP]`: the LAN listener's own `web.Application`, served on `lan_port`
  and bound only to the LAN addresses. It answers `GET /lan/hello`; more LAN
  routes (invites) may be added to it until the daemon starts;
- a cleanup context that starts and stops `LanPresence` when `lan_enabled`,
  pushing `{"type": "nearby", "peers": [...]}` to the UI's event sockets;
- the UI's routes (behind the daemon's Host/Origin/login checks):
  `GET /api/nearby`, `GET /api/nearby/verified`, `POST /api/nearby/verify`
  `{"fingerprint", "replace"?}` and `DELETE /api/nearby/verify/{name}`;
- LAN invites and sessions with no rendezvous: the listener's `/lan/invite...` and
  `/lan/session/{id}` (`listener`), the UI's `/api/nearby/invite`, `/requests` and
  `/code` (`routes`); the flows are in `invitee` and `inviter`, the signaling in `link`.

zeroconf is imported only when LAN presence starts.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbitcore.errors import Refusal, json_object, make_error_middleware

from .. import api
from ..keys import CONFIG, IDENTITY
from . import listener, routes
from .invitee import Invitee
from .inviter import Inviter
from .peers import FINGERPRINT, VerifiedPeers

if TYPE_CHECKING:
    from ..manager import SessionManager
    from .discovery import LanPresence

log = logging.getLogger("orbitd.lan")

LAN_BODY_MAX = 64 * 1024


@dataclass
class LanState:
    """What the UI's routes need: the store, and the presence while it runs."""

    store: VerifiedPeers | None = None
    presence: LanPresence | None = None
    off: str | None = "starting"
    """Why there is no presence: disabled, no_interface, cannot_start (None: running)."""


LAN = web.AppKey("lan", LanState)
LAN_APP = web.AppKey("lan_app", web.Application)


def make_lan_app() -> web.Application:
    """The LAN listener's app: JSON errors, no CORS, no caching, no framing."""
    lan_app = web.Application(
        client_max_size=LAN_BODY_MAX,
        middlewares=[make_error_middleware("Something went wrong in the daemon.")],
    )
    lan_app.on_response_prepare.append(_lan_headers)
    return lan_app


async def _lan_headers(request: web.Request, response: web.StreamResponse) -> None:
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["Cache-Control"] = "no-store"


def setup_lan(app: web.Application) -> None:
    """Add LAN presence and the Nearby routes to the daemon's app (after `api.setup`)."""
    state = app[LAN] = LanState()
    app[LAN_APP] = make_lan_app()

    def emit(event: dict[str, Any]) -> None:
        events = app.get(api.EVENTS)
        if events is not None:
            events.emit(event)

    def presence() -> LanPresence | None:
        return state.presence

    def manager() -> SessionManager:
        return app[api.MANAGER]

    identity = app[IDENTITY]
    invitee = Invitee(identity, presence, manager, emit)
    inviter = Inviter(identity, app[CONFIG].lan_name, presence, manager, emit)
    listener.add_routes(app[LAN_APP], invitee)
    routes.add_routes(app, inviter, invitee)
    app.router.add_get("/api/nearby", _nearby)
    app.router.add_get("/api/nearby/verified", _verified)
    app.router.add_post("/api/nearby/verify", _verify)
    app.router.add_delete("/api/nearby/verify/{name}", _forget)
    app.cleanup_ctx.append(_lan_ctx)


async def _lan_ctx(app: web.Application) -> AsyncIterator[None]:
    config, identity, state = app[CONFIG], app[IDENTITY], app[LAN]
    state.store = VerifiedPeers(config.data_path())
    if not config.lan_enabled:
        state.off = "disabled"
        yield
        return
    from .discovery import LanError, LanPresence, choose_interfaces

    interfaces, missing = choose_interfaces(config.lan_interfaces)
    for why in missing:
        log.warning(
            "LAN: an interface in lan_interfaces is missing", extra={"fields": {"why": why}}
        )
    if not interfaces:
        state.off = "no_interface"
        log.info("LAN: no private LAN interface; nearby discovery is off")
        yield
        return
    events = app.get(api.EVENTS)

    def on_change(peers: list[dict[str, Any]]) -> None:
        if events is not None:
            events.emit({"type": "nearby", "peers": peers})

    presence = LanPresence(
        identity,
        config.lan_name,
        interfaces,
        config.lan_port,
        state.store,
        lan_app=app[LAN_APP],
        on_change=on_change,
    )
    try:
        await presence.start()
    except LanError as exc:
        state.off = "cannot_start"
        log.warning("LAN: nearby discovery is off", extra={"fields": {"error": str(exc)}})
        yield
        return
    state.presence, state.off = presence, None
    inviter, invitee = app[routes.INVITER], app[routes.INVITEE_UI]
    inviter.start()
    invitee.start()
    try:
        yield
    finally:
        await inviter.stop()  # withdraws an open invite of ours
        await invitee.stop()
        state.presence, state.off = None, "stopped"
        await presence.stop()


def _nearby_state(state: LanState) -> dict[str, Any]:
    presence = state.presence
    return {
        "enabled": presence is not None,
        "off": state.off,
        "name": presence.name if presence else None,
        "interfaces": presence.addresses if presence else [],
        "port": presence.port if presence else None,
        "peers": presence.peers() if presence else [],
    }


async def _nearby(request: web.Request) -> web.Response:
    return web.json_response(_nearby_state(request.app[LAN]))


async def _verified(request: web.Request) -> web.Response:
    store = _store(request.app[LAN])
    return web.json_response({"verified": [p.public() for p in store.all()]})


def _store(state: LanState) -> VerifiedPeers:
    if state.store is None:
        raise Refusal(503, "lan_not_ready", "The daemon is still starting.")
    return state.store


async def _verify(request: web.Request) -> web.Response:
    state = request.app[LAN]
    store = _store(state)
    body = await json_object(request)
    fingerprint = body.get("fingerprint")
    if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
        raise Refusal(422, "invalid_fingerprint", "fingerprint: 64 lowercase hex digits.")
    if state.presence is None:
        raise Refusal(409, "lan_off", "Nearby discovery is off.")
    peer = state.presence.find(fingerprint)
    if peer is None:
        raise Refusal(404, "not_nearby", "No nearby device has proved that key; it may have left.")
    if store.status(peer["name"], fingerprint) == "mismatch" and body.get("replace") is not True:
        raise Refusal(
            409,
            "name_verified_with_other_key",
            "You verified this name before with another key. Check the fingerprint with "
            "the person, then verify again with replace.",
        )
    verified = store.remember(peer["name"], fingerprint)
    state.presence.refresh()
    return web.json_response(
        {"verified": verified.public(), "peers": state.presence.peers()}, status=201
    )


async def _forget(request: web.Request) -> web.Response:
    state = request.app[LAN]
    name = request.match_info["name"]
    if not _store(state).forget(name):
        raise Refusal(404, "not_verified", "No verified peer has this name.")
    if state.presence is not None:
        state.presence.refresh()
    return web.json_response({"name": name, "forgotten": True})


__all__ = ["LAN", "LAN_APP", "LanState", "make_lan_app", "setup_lan"]
