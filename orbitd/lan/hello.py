"""The LAN hello: a signed answer that proves a daemon holds the key it announced,
at the address it was reached on (liveness, impostors and relays in one check)."""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from typing import Any

from aiohttp import web

from ..identity import Identity, signature_valid

PROTOCOL_VERSION = "1"
HELLO_PATH = "/lan/hello"
HELLO_CONTEXT = "chatorbit-lan-hello/1"
NONCE = re.compile(r"[A-Za-z0-9_-]{16,128}")


def hello_message(nonce: str, name: str, fingerprint: str, address: str) -> bytes:
    """What a hello signs: unambiguous JSON of the context and the four values."""
    return json.dumps(
        [HELLO_CONTEXT, nonce, name, fingerprint, address], separators=(",", ":")
    ).encode()


@dataclass(frozen=True)
class HelloState:
    identity: Identity
    name: str


HELLO_STATE = web.AppKey("lan_hello", HelloState)


async def serve_hello(request: web.Request) -> web.Response:
    state = request.app[HELLO_STATE]
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
    return web.json_response(
        {
            "name": state.name,
            "fingerprint": fingerprint,
            "version": PROTOCOL_VERSION,
            "public_key": state.identity.public_key.hex(),
            "address": address,
            "signature": signature.hex(),
        }
    )


def check_hello(
    answer: Any, *, nonce: str, name: str, fingerprint: str, address: str
) -> str | None:
    """None if `answer` proves the key `fingerprint` under `name` at `address`, else why not."""
    if not isinstance(answer, dict):
        return "not a JSON object"
    try:
        public_key = bytes.fromhex(str(answer["public_key"]))
        signature = bytes.fromhex(str(answer["signature"]))
    except (KeyError, ValueError):
        return "no public key or signature"
    if hashlib.sha256(public_key).hexdigest() != fingerprint:
        return "the key is not the announced fingerprint"
    if not signature_valid(public_key, signature, hello_message(nonce, name, fingerprint, address)):
        if answer.get("name") != name:
            return "the name is not the announced name"
        if answer.get("address") != address:
            return f"signed for {answer.get('address')!r}, not {address!r} (relayed?)"
        return "bad signature"
    return None
