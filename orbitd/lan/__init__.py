"""LAN mode: nearby daemons (zeroconf), their liveness, and the verified-peers store.

`setup_lan(app)` (called by `create_app` after `api.setup(app)`) adds:

- `app[LAN_APP]`: the LAN listener's own `web.Application`, served on `lan_port`
  and bound only to the LAN addresses. It answers `GET /lan/hello`; more LAN
  routes (invites) may be added to it until the daemon starts;
- a cleanup context with the Nearby switch (`switch.LanSwitch`): `LanPresence` runs
  only while the user made this daemon visible (off by default; `lan_enabled` false:
  never), pushing `{"type": "nearby", "peers": [...]}` to the UI's event sockets;
- the UI's routes (behind the daemon's Host/Origin/login checks):
  `GET /api/nearby`, `GET /api/nearby/verified`, `POST /api/nearby/verify`
  `{"fingerprint", "replace"?}` and `DELETE /api/nearby/verify/{name}`; the switch's
  `GET`/`POST /api/nearby/visibility` (`switch`);
- LAN invites and sessions with no rendezvous: the listener's `/lan/invite...` and
  `/lan/session/{id}` (`listener`), the UI's `/api/nearby/invite`, `/requests` and
  `/code` (`routes`); the flows are in `invitee` and `inviter`, the signaling in `link`.

zeroconf is imported only when LAN presence starts (the user made us visible).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbitcore.errors import Refusal, json_object, make_error_middleware

from .. import api
from ..keys import CONFIG, IDENTITY
from ..pages import PREFERENCES
from . import listener, routes, switch
from .hello import add_hello
from .invitee import Invitee
from .inviter import Inviter
from .networks import LanInterface
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
    switch: switch.LanSwitch | None = None
    off: str | None = "starting"
    """Why there is no presence: disabled, invisible, no_interface, cannot_start (None:
    running)."""


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
    add_hello(app[LAN_APP], identity, app[CONFIG].lan_name)
    listener.add_routes(app[LAN_APP], invitee)
    routes.add_routes(app, inviter, invitee)
    switch.add_routes(app, lambda: _switch(state))
    app.router.add_get("/api/nearby", _nearby)
    app.router.add_get("/api/nearby/verified", _verified)
    app.router.add_post("/api/nearby/verify", _verify)
    app.router.add_delete("/api/nearby/verify/{name}", _forget)
    app.cleanup_ctx.append(_lan_ctx)


async def _lan_ctx(app: web.Application) -> AsyncIterator[None]:
    config, state, preferences = app[CONFIG], app[LAN], app[PREFERENCES]
    state.store = VerifiedPeers(config.data_path())
    state.off = "invisible" if config.lan_enabled else "disabled"

    def lan_session() -> bool:
        session = app[api.MANAGER].session
        return session is not None and session.lan_peer is not None and not session.ended

    state.switch = switch.LanSwitch(
        enabled=config.lan_enabled,
        wanted_interfaces=config.lan_interfaces,
        visible_seconds=config.lan_visible_seconds,
        load=lambda: preferences.current.lan_visibility,
        save=preferences.set_lan_visibility,
        start_presence=lambda interfaces: _start_presence(app, interfaces),
        stop_presence=lambda: _stop_presence(app),
        running=lambda: state.presence,
        lan_session=lan_session,
        emit=_emitter(app),
    )
    await state.switch.start()
    try:
        yield
    finally:
        await state.switch.stop()
        state.off = "stopped"


def _emitter(app: web.Application) -> Callable[[dict[str, Any]], None]:
    def emit(event: dict[str, Any]) -> None:
        events = app.get(api.EVENTS)
        if events is not None:
            events.emit(event)

    return emit


def _switch(state: LanState) -> switch.LanSwitch:
    if state.switch is None:
        raise Refusal(503, "lan_not_ready", "The daemon is still starting.")
    return state.switch


async def _start_presence(app: web.Application, interfaces: list[LanInterface]) -> None:
    """Start LAN presence (zeroconf is imported here, the first time)."""
    config, state = app[CONFIG], app[LAN]
    if not interfaces:
        state.off = "no_interface"
        log.info("LAN: no private LAN interface; nearby discovery is off")
        return
    from .discovery import LanError, LanPresence

    emit = _emitter(app)
    assert state.store is not None
    presence = LanPresence(
        app[IDENTITY],
        config.lan_name,
        interfaces,
        config.lan_port,
        state.store,
        lan_app=app[LAN_APP],
        on_change=lambda peers: emit({"type": "nearby", "peers": peers}),
    )
    try:
        await presence.start()
    except LanError as exc:
        state.off = "cannot_start"
        log.warning("LAN: nearby discovery is off", extra={"fields": {"error": str(exc)}})
        return
    state.presence, state.off = presence, None
    app[routes.INVITER].start()
    app[routes.INVITEE_UI].start()
    emit({"type": "nearby", "peers": presence.peers()})


async def _stop_presence(app: web.Application) -> None:
    state = app[LAN]
    presence = state.presence
    if presence is None:
        return
    await app[routes.INVITER].stop()  # withdraws an open invite of ours
    await app[routes.INVITEE_UI].stop()
    state.presence, state.off = None, "invisible"
    await presence.stop()
    _emitter(app)({"type": "nearby", "peers": []})


def _nearby_state(state: LanState) -> dict[str, Any]:
    presence = state.presence
    return {
        "enabled": presence is not None,
        "off": state.off,
        "name": presence.name if presence else None,
        "interfaces": presence.addresses if presence else [],
        "port": presence.port if presence else None,
        "peers": presence.peers() if presence else [],
        "visibility": state.switch.public() if state.switch is not None else None,
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
