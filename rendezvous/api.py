"""HTTP handlers for tokens and sessions: the seed's paths and JSON shapes."""

from __future__ import annotations

import logging

from aiohttp import web

from orbitcore.errors import Refusal

from . import session as rules
from .http import client_ip, rate_limited, read_json
from .keys import SERVICE, TRUSTED_PROXIES
from .session import SessionError

routes = web.RouteTableDef()
log = logging.getLogger("rendezvous")


def _client(request: web.Request) -> str:
    return client_ip(request, request.app[TRUSTED_PROXIES])


@routes.post("/api/tokens/issue")
async def issue_token(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    verdict = await svc.rate("token", _client(request))
    if not verdict.allowed:
        return rate_limited(verdict, svc.now().timestamp())
    body = await read_json(request)
    try:
        fresh = await svc.issue(body)
    except SessionError as exc:
        return web.json_response(
            {"error": exc.code, "reason": exc.reason}, status=exc.status, headers=verdict.headers()
        )
    return web.json_response(
        {
            "token": fresh.token,
            "valid_until": rules.iso(fresh.valid_until),
            "ttl_minutes": fresh.ttl_minutes,
            "max_message_length": fresh.max_message_length,
        },
        headers=verdict.headers(),
    )


@routes.post("/api/tokens/join")
async def join_token(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    verdict = await svc.rate("join", _client(request))
    if not verdict.allowed:
        return rate_limited(verdict, svc.now().timestamp())
    try:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise SessionError(422, "invalid_body", "The request body must be a JSON object.")
        joined, role = await svc.join(body.get("token"), body.get("client_identity"))
    except SessionError as exc:
        return web.json_response(
            {"error": exc.code, "reason": exc.reason}, status=exc.status, headers=verdict.headers()
        )
    answer: dict[str, object] = {"role": role.value, "session_status": await svc.status(joined)}
    ice = svc.ice_servers()
    if ice is not None:
        granted = ice.to_dict()
        answer["ice_servers"] = granted["ice_servers"]
        if ice.ttl_seconds is not None:
            answer["ice_ttl_seconds"] = ice.ttl_seconds
            answer["ice_expires_at"] = ice.expires_at
    return web.json_response(answer, headers=verdict.headers())


@routes.get("/api/session/{token}/status")
async def session_status(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    client = _client(request)
    verdict = await svc.rate("join", client, record=False)
    if not verdict.allowed:
        return rate_limited(verdict, svc.now().timestamp())
    try:
        found = await svc.lookup(request.match_info["token"])
    except SessionError:
        await svc.rate("join", client)  # a miss counts: tokens cannot be scanned here either
        raise
    return web.json_response(await svc.status(found))


@routes.post("/api/session/{token}/end")
async def end_session(request: web.Request) -> web.Response:
    svc = request.app[SERVICE]
    client = _client(request)
    verdict = await svc.rate("join", client, record=False)
    if not verdict.allowed:
        return rate_limited(verdict, svc.now().timestamp())
    try:
        body = await read_json(request)
        if not isinstance(body, dict):
            raise SessionError(422, "invalid_body", "The request body must be a JSON object.")
        ended = await svc.end(request.match_info["token"], body.get("client_identity"))
    except Refusal:
        await svc.rate("join", client)  # a refusal counts: 404 vs 403 must not be an oracle
        raise
    return web.json_response({"message": "Session ended", "ended_at": rules.iso(ended.ended_at)})
