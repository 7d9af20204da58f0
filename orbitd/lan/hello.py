"""The LAN hello: a signed answer that proves a daemon holds the key it announced,
at the address it was reached on (liveness, impostors and relays in one check).
The answer is `orbitcore.protocol.lan.Hello`.

Each source address may ask `HELLOS_PER_MINUTE` times a minute (a nearby daemon asks
every 2 s, every 1 s while it retries, so about 30 to 60); more get 429 `rate_limited`
with Retry-After, before any signing is done."""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass, field

from aiohttp import web

from orbitcore.protocol import lan
from orbitcore.ratelimit import RateLimiter

from ..identity import Identity, signature_valid

PROTOCOL_VERSION = "1"
HELLO_PATH = "/lan/hello"
HELLO_CONTEXT = "chatorbit-lan-hello/1"
NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")
HELLOS_PER_MINUTE = 120  # per source address
HELLO_ADDRESSES_MAX = 1024  # source addresses the limit remembers


def hello_message(nonce: str, name: str, fingerprint: str, address: str) -> bytes:
    """What a hello signs: unambiguous JSON of the context and the four values."""
    return json.dumps(
        [HELLO_CONTEXT, nonce, name, fingerprint, address], separators=(",", ":")
    ).encode()


@dataclass(frozen=True)
class HelloState:
    identity: Identity
    name: str
    limit: RateLimiter = field(
        default_factory=lambda: RateLimiter(60.0, keys_max=HELLO_ADDRESSES_MAX), compare=False
    )


HELLO_STATE = web.AppKey("lan_hello", HelloState)


async def serve_hello(request: web.Request) -> web.Response:
    state = request.app[HELLO_STATE]
    now = time.monotonic()
    verdict = state.limit.hit(request.remote or "", HELLOS_PER_MINUTE, now)
    if not verdict.allowed:
        return web.json_response(
            {"error": "rate_limited", "reason": "Too many hellos from your address."},
            status=429,
            headers={"Retry-After": str(verdict.retry_after(now))},
        )
    nonce = request.query.get("nonce", "")
    if not NONCE.fullmatch(nonce):
        return web.json_response(
            {"error": "bad_nonce", "reason": "nonce: 16 to 128 of A-Z, a-z, 0-9, '_', '-'."},
            status=400,
        )
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    if not sockname:
        raise web.HTTPServiceUnavailable()
    address = f"{sockname[0]}:{sockname[1]}"
    fingerprint = state.identity.fingerprint
    signature = state.identity.sign(hello_message(nonce, state.name, fingerprint, address))
    hello = lan.Hello(
        name=state.name,
        fingerprint=fingerprint,
        public_key=state.identity.public_key.hex(),
        address=address,
        signature=signature.hex(),
        version=PROTOCOL_VERSION,
    )
    return web.json_response(hello.to_dict())


def add_hello(lan_app: web.Application, identity: Identity, name: str) -> None:
    """`GET /lan/hello` on `lan_app` (before it first runs; it may run many times)."""
    lan_app[HELLO_STATE] = HelloState(identity, name)
    lan_app.router.add_get(HELLO_PATH, serve_hello, allow_head=False)


def check_hello(
    hello: lan.Hello, *, nonce: str, name: str, fingerprint: str, address: str
) -> str | None:
    """None if `hello` proves the key `fingerprint` under `name` at `address`, else why not."""
    public_key, signature = bytes.fromhex(hello.public_key), bytes.fromhex(hello.signature)
    if hashlib.sha256(public_key).hexdigest() != fingerprint:
        return "the key is not the announced fingerprint"
    if not signature_valid(public_key, signature, hello_message(nonce, name, fingerprint, address)):
        if hello.name != name:
            return "the name is not the announced name"
        if hello.address != address:
            return f"signed for {hello.address!r}, not {address!r} (relayed?)"
        return "bad signature"
    return None
