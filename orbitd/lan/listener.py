"""The LAN listener's invite endpoints (no Host, Origin or login checks here: each
endpoint authenticates for itself, see `invites` and `invitee`).

    GET    /lan/invite/nonce            {"nonce", "expires_in"}: for one invite, from this address
    POST   /lan/invite                  a signed invite: 202 {"request_id", "expires_in"}
    GET    /lan/invite/{id}?since=S&wait=N   the request's state (long poll while it is S)
    DELETE /lan/invite/{id}             {"signature"}: the inviter withdraws
    GET    /lan/session/{id}            WebSocket: the session's relay frames, once accepted

Everything but the nonce and the invite itself answers only the address the invite
came from. The bodies are `orbitcore.protocol.lan`'s frames (docs/protocol.md); a body
that is not the endpoint's frame is refused with 400 or 422 (`invites.read_body`).
"""

from __future__ import annotations

from aiohttp import web

from orbitcore.errors import Refusal
from orbitcore.protocol import lan

from .invitee import POLL_WAIT_MAX, REQUEST_SECONDS, Invitee
from .invites import NONCE_SECONDS, read_body
from .link import FRAME_MAX_BYTES

INVITEE = web.AppKey("lan_invitee", Invitee)


def _remote(request: web.Request) -> str:
    if not request.remote:
        raise Refusal(400, "no_address", "The sender's address is unknown.")
    return request.remote


async def _nonce(request: web.Request) -> web.Response:
    nonce = request.app[INVITEE].nonce(_remote(request))
    return web.json_response(lan.InviteNonce(nonce, int(NONCE_SECONDS)).to_dict())


async def _invite(request: web.Request) -> web.Response:
    address = _remote(request)
    incoming = request.app[INVITEE].receive(await request.read() or b"{}", address)
    received = lan.InviteReceived(incoming.id, int(REQUEST_SECONDS))
    return web.json_response(received.to_dict(), status=202)


async def _poll(request: web.Request) -> web.Response:
    try:
        wait = max(0.0, min(float(request.query.get("wait", "0")), POLL_WAIT_MAX))
    except ValueError:
        raise Refusal(422, "invalid_wait", "wait: seconds, 0 to 10.") from None
    answer = await request.app[INVITEE].poll(
        request.match_info["id"], _remote(request), request.query.get("since", ""), wait
    )
    return web.json_response(answer.to_dict())


async def _withdraw(request: web.Request) -> web.Response:
    withdraw = read_body(lan.Withdraw, await request.read() or b"{}")
    request.app[INVITEE].withdraw(request.match_info["id"], _remote(request), withdraw)
    return web.json_response(lan.Withdrawn(True).to_dict())


async def _session(request: web.Request) -> web.StreamResponse:
    link = request.app[INVITEE].socket_link(request.match_info["id"], _remote(request))
    ws = web.WebSocketResponse(max_msg_size=FRAME_MAX_BYTES, heartbeat=20.0)
    await ws.prepare(request)
    await link.serve(ws)
    return ws


def add_routes(lan_app: web.Application, invitee: Invitee) -> None:
    lan_app[INVITEE] = invitee
    lan_app.router.add_get("/lan/invite/nonce", _nonce, allow_head=False)
    lan_app.router.add_post("/lan/invite", _invite)
    lan_app.router.add_get("/lan/invite/{id}", _poll, allow_head=False)
    lan_app.router.add_delete("/lan/invite/{id}", _withdraw)
    lan_app.router.add_get("/lan/session/{id}", _session, allow_head=False)
