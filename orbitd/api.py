"""The local API the UI calls: JSON over HTTP plus one WebSocket of events.

Everything here sits behind the security layer (Host, Origin, login cookie).
Described in docs/ui-api.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import TYPE_CHECKING, Any

from aiohttp import web

from orbitcore.errors import json_object

from . import files_api
from .chat import ChatError
from .keys import CONFIG, IDENTITY
from .manager import Events, SessionManager
from .pages import PREFERENCES

if TYPE_CHECKING:
    from .call import Call

routes = web.RouteTableDef()
MANAGER = web.AppKey("manager", SessionManager)
EVENTS = web.AppKey("events", Events)


def _state(request: web.Request) -> dict[str, Any]:
    config, identity = request.app[CONFIG], request.app[IDENTITY]
    return {
        "profile": config.profile,
        "fingerprint": identity.fingerprint,
        "rendezvous": config.rendezvous,
    } | request.app[MANAGER].state()


@routes.get("/api/state")
async def state(request: web.Request) -> web.Response:
    return web.json_response(_state(request))


def _issue_request(body: dict[str, Any]) -> dict[str, Any]:
    """POST /api/tokens' members, typed before they go on to the rendezvous (which
    checks their ranges): a string option and whole numbers, or 422 here."""
    option = body.get("validity_option", "day")
    if not isinstance(option, str) or len(option) > 16:
        raise ChatError(422, "invalid_validity_option", "validity_option must be a string.")
    checked: dict[str, Any] = {"validity_option": option}
    for name, default in (("ttl_minutes", 60), ("max_message_length", 2000)):
        value = body.get(name, default)
        if not isinstance(value, int) or isinstance(value, bool) or abs(value) > 2**31:
            raise ChatError(422, f"invalid_{name}", f"{name} must be a whole number.")
        checked[name] = value
    return checked


@routes.post("/api/tokens")
async def request_token(request: web.Request) -> web.Response:
    body = _issue_request(await json_object(request))
    created = await request.app[MANAGER].create(body)
    return web.json_response(created, status=201)


@routes.post("/api/join")
async def join(request: web.Request) -> web.Response:
    body = await json_object(request)
    return web.json_response(await request.app[MANAGER].join(body.get("invite")))


@routes.post("/api/messages")
async def send_message(request: web.Request) -> web.Response:
    body = await json_object(request)
    message = request.app[MANAGER].current().send_message(body.get("text"))
    return web.json_response({"message": message}, status=201)


@routes.delete("/api/messages/{message_id}")
async def delete_message(request: web.Request) -> web.Response:
    message_id = request.match_info["message_id"]
    request.app[MANAGER].current().delete_message(message_id)
    return web.json_response({"message_id": message_id, "deleted": True})


@routes.post("/api/session/end")
async def end_session(request: web.Request) -> web.Response:
    return web.json_response({"session": await request.app[MANAGER].end()})


@routes.post("/api/report")
async def report(request: web.Request) -> web.Response:
    filed = await request.app[MANAGER].report(await json_object(request))
    return web.json_response(filed, status=201)


def _call(request: web.Request) -> Call:
    session = request.app[MANAGER].current()
    if session.call is None or session.ended is not None:
        raise ChatError(409, "not_connected", "Calls need a connected session.")
    if not session.has_feature("calls"):
        raise ChatError(
            409, "feature_unavailable", "The other person's ChatOrbit does not offer calls."
        )
    return session.call


@routes.post("/api/call")
async def start_call(request: web.Request) -> web.Response:
    return web.json_response({"call": _call(request).call()})


@routes.post("/api/call/accept")
async def accept_call(request: web.Request) -> web.Response:
    return web.json_response({"call": _call(request).accept()})


@routes.post("/api/call/decline")
async def decline_call(request: web.Request) -> web.Response:
    return web.json_response({"call": _call(request).decline()})


@routes.post("/api/call/hangup")
async def hang_up(request: web.Request) -> web.Response:
    return web.json_response({"call": _call(request).hang_up()})


@routes.post("/api/call/mute")
async def mute(request: web.Request) -> web.Response:
    body = await json_object(request)
    return web.json_response({"call": _call(request).mute(body.get("kind"), body.get("muted"))})


@routes.post("/api/media/offer")
async def media_offer(request: web.Request) -> web.Response:
    body = await json_object(request)
    return web.json_response(await _call(request).browser_offer(body.get("sdp")))


@routes.post("/api/media/close")
async def media_close(request: web.Request) -> web.Response:
    await _call(request).close_link()
    return web.json_response({"closed": True})


@routes.get("/api/events")
async def events(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse(heartbeat=30.0, max_msg_size=4096)
    await ws.prepare(request)
    await request.app[EVENTS].serve(ws, {"type": "state", "state": _state(request)})
    return ws


async def _manager_ctx(app: web.Application) -> AsyncIterator[None]:
    events = Events()
    app[EVENTS] = events
    config, preferences = app[CONFIG], app[PREFERENCES]
    app[MANAGER] = SessionManager(
        config, events, lambda: preferences.current.relay_only(config.ice_relay_only)
    )
    yield
    await app[MANAGER].close()


async def _close_event_sockets(app: web.Application) -> None:
    await app[EVENTS].close_all()


def setup(app: web.Application) -> None:
    """Add the API's routes and the session manager to the app."""
    app.add_routes(routes)
    app.add_routes(files_api.routes)
    app.cleanup_ctx.append(_manager_ctx)
    app.on_shutdown.append(_close_event_sockets)
