"""The UI's routes for LAN invites (behind the daemon's Host, Origin and login checks).

POST   /api/nearby/invite              {"fingerprint", "ttl_minutes"?, "max_message_length"?}
DELETE /api/nearby/invite/{id}         withdraw our invite
GET    /api/nearby/requests            {"incoming": [...], "outgoing": ... or null}
POST   /api/nearby/requests/{id}/accept   {"code", "session"}
POST   /api/nearby/requests/{id}/decline
POST   /api/nearby/code                {"request_id", "code"}: starts the handshake
"""

from __future__ import annotations

from aiohttp import web

from orbitcore.errors import json_object

from .invitee import Invitee
from .inviter import Inviter
from .inviter import State as OutgoingState

INVITER = web.AppKey("lan_inviter", Inviter)
INVITEE_UI = web.AppKey("lan_invitee_ui", Invitee)


async def _invite(request: web.Request) -> web.Response:
    out = await request.app[INVITER].invite(await json_object(request))
    return web.json_response({"request_id": out.id, "request": out.public()}, status=202)


async def _cancel(request: web.Request) -> web.Response:
    await request.app[INVITER].cancel(request.match_info["id"])
    return web.json_response({"cancelled": True})


async def _requests(request: web.Request) -> web.Response:
    out = request.app[INVITER].outgoing
    open_states = (OutgoingState.WAITING, OutgoingState.ACCEPTED)
    return web.json_response(
        {
            "incoming": request.app[INVITEE_UI].pending(),
            "outgoing": out.public() if out is not None and out.state in open_states else None,
        }
    )


async def _accept(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INVITEE_UI].accept(request.match_info["id"]))


async def _decline(request: web.Request) -> web.Response:
    request.app[INVITEE_UI].decline(request.match_info["id"])
    return web.json_response({"declined": True})


async def _code(request: web.Request) -> web.Response:
    return web.json_response(await request.app[INVITER].code(await json_object(request)))


def add_routes(app: web.Application, inviter: Inviter, invitee: Invitee) -> None:
    app[INVITER] = inviter
    app[INVITEE_UI] = invitee
    app.router.add_post("/api/nearby/invite", _invite)
    app.router.add_delete("/api/nearby/invite/{id}", _cancel)
    app.router.add_get("/api/nearby/requests", _requests)
    app.router.add_post("/api/nearby/requests/{id}/accept", _accept)
    app.router.add_post("/api/nearby/requests/{id}/decline", _decline)
    app.router.add_post("/api/nearby/code", _code)
