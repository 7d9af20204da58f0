"""WS /api/ws/{token} with `Authorization: Bearer <client_identity>`: a participant's
signaling socket. The seed's form, /api/ws/{token}/{client_identity}, is kept for its
clients (a reverse proxy logs the credential with the path; daemons use the header).

Close codes: 4004 unknown token, 4003 session ended, 4001 not a participant,
4002 replaced by a newer socket of the same identity, 4029 rate limited,
1003 binary frame, 1009 message too big, 1000 session ended, 1001 server
going away, 1013 try again later (the state instances share is unreachable).
Errors that keep the socket open come as `error` frames that echo the `type` (and
`id`, if any) of the message they answer. The frames are `orbitcore.protocol.relay`'s
(docs/protocol.md).
"""

from __future__ import annotations

import logging
import time

from aiohttp import WSCloseCode, WSMsgType, web

from orbitcore.protocol import relay as wire
from orbitcore.ratelimit import TokenBucket

from .http import client_ip
from .keys import CONFIG, SERVICE, TRUSTED_PROXIES
from .relay import (
    CLOSE_ENDED,
    CLOSE_NOT_FOUND,
    CLOSE_RATE_LIMITED,
    CLOSE_UNAUTHORIZED,
    PROBLEMS,
    Received,
    RelayUnavailable,
    read_client_frame,
    refusal,
)
from .service import Rendezvous, token_tag
from .session import Role, SessionError, State

log = logging.getLogger("rendezvous.ws")
routes = web.RouteTableDef()
HEARTBEAT_SECONDS = 30.0  # a ping after this long without traffic; app.py keeps it unrounded


async def _refuse(ws: web.WebSocketResponse, code: int, reason: str) -> web.WebSocketResponse:
    await ws.close(code=code, message=reason.encode())
    return ws


def bearer(request: web.Request) -> str | None:
    """The credential in `Authorization: Bearer <credential>`, or None."""
    scheme, _, credential = request.headers.get("Authorization", "").partition(" ")
    credential = credential.strip()
    return credential if scheme.lower() == "bearer" and credential else None


@routes.get("/api/ws/{token}")
async def signaling_socket(request: web.Request) -> web.WebSocketResponse:
    """The seat's credential comes in the Authorization header, out of every URL."""
    return await _open(request, request.match_info["token"], bearer(request))


@routes.get("/api/ws/{token}/{client_identity}")
async def signaling_socket_seed_form(request: web.Request) -> web.WebSocketResponse:
    """The seed's form, for compatibility: the credential is the last path segment."""
    return await _open(request, request.match_info["token"], request.match_info["client_identity"])


async def _open(request: web.Request, token: str, identity: str | None) -> web.WebSocketResponse:
    svc, config = request.app[SERVICE], request.app[CONFIG]
    client = client_ip(request, request.app[TRUSTED_PROXIES])
    ws = web.WebSocketResponse(
        max_msg_size=config.ws_max_message_bytes, heartbeat=HEARTBEAT_SECONDS
    )
    await ws.prepare(request)

    if not (await svc.rate("join", client, record=False)).allowed:
        return await _refuse(ws, CLOSE_RATE_LIMITED, "Too many attempts")
    try:
        found = await svc.lookup(token)
    except SessionError:
        await svc.rate("join", client)
        return await _refuse(ws, CLOSE_NOT_FOUND, "Token not found")
    if found.state(svc.now()) is State.ENDED:
        return await _refuse(ws, CLOSE_ENDED, "Session ended")
    role = None if identity is None else found.role_of(identity)
    if role is None:
        await svc.rate("join", client)
        return await _refuse(ws, CLOSE_UNAUTHORIZED, "Not a participant")

    try:
        await svc.relay.attach(token, role, ws)  # closes the socket it replaces with 4002
    except RelayUnavailable:
        return await _refuse(ws, WSCloseCode.TRY_AGAIN_LATER, "Try again later")
    log.info("socket open", extra={"fields": {"token": token_tag(token), "role": role.value}})
    try:
        current = await svc.store.get_session(token)  # it may have ended on another instance
        if current is None or current.ended_at is not None:
            await ws.close(code=CLOSE_ENDED, message=b"Session ended")
            return ws
        await svc.push_status(current)
        await svc.relay.deliver_held(token, role, ws)
        await _serve(svc, ws, token, role)
    finally:
        if await svc.relay.detach(token, role, ws):
            log.info(
                "socket closed", extra={"fields": {"token": token_tag(token), "role": role.value}}
            )
            latest = await svc.store.get_session(token)
            if latest is not None and latest.ended_at is None:
                await svc.push_status(latest)
    return ws


async def _serve(svc: Rendezvous, ws: web.WebSocketResponse, token: str, role: Role) -> None:
    config = svc.config
    bucket = TokenBucket(rate=config.ws_messages_per_second, burst=config.ws_message_burst)
    max_bytes = config.ws_max_message_bytes
    async for msg in ws:
        if msg.type is WSMsgType.BINARY:
            await ws.close(
                code=WSCloseCode.UNSUPPORTED_DATA, message=b"Binary frames are not accepted"
            )
            return
        if msg.type is not WSMsgType.TEXT:
            continue
        got = read_client_frame(msg.data, max_bytes)
        if isinstance(got, wire.Error):
            await ws.send_str(got.encode())
            continue
        if isinstance(got.frame, wire.Ping):
            await ws.send_str(wire.Pong().encode())
            continue
        if not bucket.take(time.monotonic()):
            await ws.send_str(
                refusal(
                    "rate_limited", "Too many messages; this one was not relayed.", got.answering
                ).encode()
            )
            continue
        if isinstance(got.frame, wire.IceRefresh):
            await ws.send_str(_ice_answer(svc, got).encode())
            continue
        problem = await svc.relay.forward(token, role, msg.data)
        if problem is not None:
            await ws.send_str(refusal(problem, PROBLEMS[problem], got.answering).encode())


def _ice_answer(svc: Rendezvous, got: Received) -> wire.IceServers | wire.Error:
    """Fresh ICE servers for `ice-refresh`, or `ice_unavailable` when none are configured."""
    ice = svc.ice_servers()
    if ice is None:
        return refusal(
            "ice_unavailable", "This rendezvous hands out no ICE servers.", got.answering
        )
    return ice
