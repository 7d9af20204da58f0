"""HTTP plumbing shared by the handlers: JSON errors, client address, CORS, headers."""

from __future__ import annotations

import ipaddress
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from orbitcore.errors import error_response, read_object
from orbitcore.ratelimit import Verdict

from .session import SessionError

log = logging.getLogger("rendezvous.http")
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def rate_limited(verdict: Verdict, now_ts: float) -> web.Response:
    retry = verdict.retry_after(now_ts)
    headers = verdict.headers() | {"Retry-After": str(retry)}
    return error_response(
        429, "rate_limited", f"Too many requests; try again in {retry} s.", headers
    )


async def read_json(request: web.Request) -> dict[str, Any]:
    """The body as a JSON object, through the one reader both servers share (bounded,
    valid Unicode in every string); an empty body is refused here, not read as {}."""
    if request.content_type != "application/json":
        raise SessionError(415, "unsupported_media_type", "Send the body as application/json.")
    raw = await request.read()
    if not raw:
        raise SessionError(400, "invalid_json", "The request body is not acceptable JSON.")
    return read_object(raw)


def client_ip(
    request: web.Request, trusted: list[ipaddress.IPv4Network | ipaddress.IPv6Network]
) -> str:
    """The client's address: X-Forwarded-For is believed only from a trusted proxy."""
    remote = request.remote or "unknown"

    def is_trusted(addr: str) -> bool:
        try:
            ip = ipaddress.ip_address(addr)
        except ValueError:
            return False
        return any(ip in net for net in trusted)

    if not trusted or not is_trusted(remote):
        return remote
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",") if h.strip()]
    for hop in reversed(hops):
        if not is_trusted(hop):
            try:
                return str(ipaddress.ip_address(hop))
            except ValueError:
                return remote
    return hops[0] if hops else remote


def parse_networks(values: list[str]) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
    return [ipaddress.ip_network(v, strict=False) for v in values]


def make_cors_middleware(origins: list[str]) -> Middleware:
    allowed = frozenset(origins)

    @web.middleware
    async def cors(request: web.Request, handler: Handler) -> web.StreamResponse:
        origin = request.headers.get("Origin")
        preflight = (
            request.method == "OPTIONS" and "Access-Control-Request-Method" in request.headers
        )
        if preflight:
            if origin not in allowed:
                return error_response(
                    403, "origin_not_allowed", "This origin may not call the API."
                )
            response: web.StreamResponse = web.Response(status=204)
            response.headers["Access-Control-Allow-Methods"] = "GET, POST, OPTIONS"
            response.headers["Access-Control-Allow-Headers"] = "Content-Type, Authorization"
            response.headers["Access-Control-Max-Age"] = "600"
        else:
            response = await handler(request)
        if origin in allowed and not response.prepared:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.headers["Vary"] = "Origin"
        return response

    return cors


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if response.prepared:  # a WebSocket: its headers went out at the upgrade
        return response
    for key, value in SECURITY_HEADERS.items():
        response.headers.setdefault(key, value)
    return response


PAGE_PATHS = ("/join", "/admin")
STATIC_TEXT = (".css", ".js", ".svg")


@web.middleware
async def compress_pages(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Gzip the invite and admin pages and the static files, which hold no secret (never the
    API: no secret is compressed beside text a client could choose)."""
    response = await handler(request)
    path = request.path
    if response.prepared or not (path in PAGE_PATHS or path.startswith("/static/")):
        return response
    if isinstance(response, web.FileResponse):  # its type is known only once it is sent
        compressible = path.endswith(STATIC_TEXT)
    else:
        compressible = response.content_type == "text/html"
    if compressible and "gzip" in request.headers.get("Accept-Encoding", ""):
        response.enable_compression()
    return response
