"""Refusals and how they leave: `{"error": code, "reason": sentence}` with a 4xx status.

Shared by the rendezvous and the daemon: every refusal either of them makes is
a `Refusal`, and one middleware turns refusals, aiohttp's HTTP errors and
crashes into JSON, so no request ever gets a traceback or an HTML error page.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Middleware

from .protocol.frames import ProtocolError, read_json

log = logging.getLogger("chatorbit.errors")
MAX_BODY_BYTES = 1024 * 1024  # aiohttp's own `client_max_size` default
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class Refusal(Exception):
    """A request refused: the HTTP status, a stable code and a sentence for the user."""

    def __init__(self, status: int, code: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.code = code
        self.reason = reason


def error_response(
    status: int, code: str, reason: str, headers: dict[str, str] | None = None
) -> web.Response:
    return web.json_response({"error": code, "reason": reason}, status=status, headers=headers)


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object (an empty body reads as {})."""
    try:
        body = read_json(await request.read() or b"{}", max_bytes=MAX_BODY_BYTES)
    except ProtocolError as exc:
        if exc.code == "frame_too_large":
            raise Refusal(413, "body_too_large", exc.message) from None
        reason = f"The request body is not acceptable JSON: {exc.message}"
        raise Refusal(400, "invalid_json", reason) from None
    if not isinstance(body, dict):
        raise Refusal(422, "invalid_body", "The request body must be a JSON object.")
    return body


def make_error_middleware(internal_reason: str) -> Middleware:
    @web.middleware
    async def errors(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            return await handler(request)
        except Refusal as exc:
            return error_response(exc.status, exc.code, exc.reason)
        except web.HTTPRequestEntityTooLarge:
            return error_response(413, "body_too_large", "The request body is too large.")
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = exc.reason.lower().replace(" ", "_")
            allow = {k: v for k, v in exc.headers.items() if k == "Allow"}
            return error_response(exc.status, code, exc.reason, allow)
        except Exception:
            log.exception("unhandled error", extra={"fields": {"path": request.path}})
            return error_response(500, "internal_error", internal_reason)

    return errors
