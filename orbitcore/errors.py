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
from aiohttp.http_exceptions import HttpProcessingError
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


def valid_text(value: Any) -> bool:
    """Every string in `value` (keys too) is Unicode text: no lone surrogate such as
    `"\\ud800"`, which JSON may spell but UTF-8, SQLite and the ciphers cannot take."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            try:
                item.encode("utf-8")
            except UnicodeEncodeError:
                return False
        elif isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return True


def read_object(raw: bytes) -> dict[str, Any]:
    """The one reader of a JSON request body on both servers: bounded size and depth
    (`read_json`), valid Unicode in every string, and a JSON object (empty reads as {})."""
    try:
        body = read_json(raw or b"{}", max_bytes=MAX_BODY_BYTES)
    except ProtocolError as exc:
        if exc.code == "frame_too_large":
            raise Refusal(413, "body_too_large", exc.message) from None
        reason = f"The request body is not acceptable JSON: {exc.message}"
        raise Refusal(400, "invalid_json", reason) from None
    if not valid_text(body):
        reason = "The request body is not acceptable JSON: a string is not valid Unicode text."
        raise Refusal(400, "invalid_json", reason)
    if not isinstance(body, dict):
        raise Refusal(422, "invalid_body", "The request body must be a JSON object.")
    return body


async def json_object(request: web.Request) -> dict[str, Any]:
    """The request's JSON body, which must be an object (an empty body reads as {})."""
    return read_object(await request.read())


def route_of(request: web.Request) -> str:
    """What a log may say of the request's path: its route (`/api/session/{token}/end`),
    never the path itself, which may hold a token or a seat's credential."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "-"


class BadHttpFilter(logging.Filter):
    """aiohttp answers HTTP it cannot parse (a request line over 8 KiB, a broken header)
    with its own 400 before any middleware runs, and logs it as an error with a
    traceback. It is a client's bad input: one info line, no traceback."""

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        if isinstance(exc, HttpProcessingError) and (exc.code or 400) < 500:
            record.levelno, record.levelname = logging.INFO, "INFO"
            record.msg, record.args, record.exc_info = "bad HTTP request refused", (), None
            record.__dict__["fields"] = {"status": exc.code, "error": type(exc).__name__}
        return True


def quiet_bad_http() -> None:
    """Install `BadHttpFilter` on aiohttp's server logger (once)."""
    server_log = logging.getLogger("aiohttp.server")
    if not any(isinstance(f, BadHttpFilter) for f in server_log.filters):
        server_log.addFilter(BadHttpFilter())


def make_error_middleware(internal_reason: str) -> Middleware:
    quiet_bad_http()

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
        except ConnectionResetError:  # the client hung up (mid-body, say): nobody to answer
            log.info("client went away", extra={"fields": {"route": route_of(request)}})
            return error_response(400, "client_gone", "The request ended before its body.")
        except Exception:
            log.exception("unhandled error", extra={"fields": {"route": route_of(request)}})
            return error_response(500, "internal_error", internal_reason)

    return errors
