"""LAN invites, the parts with no I/O: the signed request, the code, rate limits, nonces.

An invite is `POST /lan/invite` from the inviter's daemon to the invitee's LAN listener,
an `orbitcore.protocol.lan.Invite`:

    {"session_id", "name", "fingerprint", "public_key", "ttl_minutes",
     "max_message_length", "nonce", "signature"}

`nonce` is one the invitee's listener handed out (`GET /lan/invite/nonce`) to that
source address, single-use, for `NONCE_SECONDS`; `signature` is the inviter's Ed25519
signature over `invite_message(...)`, which also names the invitee's own fingerprint.
So a request cannot be replayed (the nonce is spent), relayed to another daemon (its
fingerprint is signed) or made without the key (sha256(public_key) == fingerprint, and
that fingerprint must be in the Nearby list, proved by its hello, at the sender's address).

None of this authenticates the session: the person does, with the code (a PAKE).
"""

from __future__ import annotations

import hashlib
import json
import re
import secrets
import time
from dataclasses import dataclass
from typing import Any, TypeVar

from orbitcore.errors import Refusal
from orbitcore.protocol import lan
from orbitcore.protocol.frames import Frame, ProtocolError

from ..identity import Identity, signature_valid

INVITE_CONTEXT = "chatorbit-lan-invite/1"
WITHDRAW_CONTEXT = "chatorbit-lan-withdraw/1"
SESSION_ID_ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"
CODE = re.compile(r"[0-9]{6}")
NAME_MAX = lan.NAME_MAX
TTL_MINUTES = (1, 10000)
MAX_MESSAGE_LENGTH = (200, 16000)
DEFAULT_TTL_MINUTES = 60
DEFAULT_MAX_MESSAGE_LENGTH = 2000

# Rate limits and bounds of the invitee's listener.
INVITES_PER_MINUTE = 5  # POST /lan/invite per source address, refused ones included
NONCES_PER_MINUTE = 20  # GET /lan/invite/nonce per source address
LIMITED_ADDRESSES_MAX = 1024  # source addresses each rate limit remembers
NONCES_PER_ADDRESS = 4  # outstanding at once; the oldest goes first
NONCES_MAX = 256
NONCE_SECONDS = 60.0
PENDING_MAX = 8  # pending requests at once, from all peers


def new_session_id() -> str:
    return "".join(secrets.choice(SESSION_ID_ALPHABET) for _ in range(12))


def new_code() -> str:
    """Six digits from `secrets`: shown by the invitee, typed by the inviter."""
    return f"{secrets.randbelow(10**6):06d}"


def invite_message(
    *,
    nonce: str,
    session_id: str,
    name: str,
    fingerprint: str,
    to: str,
    ttl_minutes: int,
    max_message_length: int,
) -> bytes:
    """What an invite signs: unambiguous JSON of the context and every value."""
    fields = [INVITE_CONTEXT, nonce, session_id, name, fingerprint, to]
    return json.dumps([*fields, ttl_minutes, max_message_length], separators=(",", ":")).encode()


def withdraw_message(session_id: str, to: str) -> bytes:
    return json.dumps([WITHDRAW_CONTEXT, session_id, to], separators=(",", ":")).encode()


@dataclass(frozen=True)
class SignedInvite:
    session_id: str
    name: str
    fingerprint: str
    public_key: bytes
    ttl_minutes: int
    max_message_length: int
    nonce: str
    signature: bytes

    @classmethod
    def make(
        cls,
        identity: Identity,
        *,
        name: str,
        to: str,
        nonce: str,
        session_id: str,
        ttl_minutes: int,
        max_message_length: int,
    ) -> SignedInvite:
        message = invite_message(
            nonce=nonce,
            session_id=session_id,
            name=name,
            fingerprint=identity.fingerprint,
            to=to,
            ttl_minutes=ttl_minutes,
            max_message_length=max_message_length,
        )
        return cls(
            session_id,
            name,
            identity.fingerprint,
            identity.public_key,
            ttl_minutes,
            max_message_length,
            nonce,
            identity.sign(message),
        )

    def frame(self) -> lan.Invite:
        return lan.Invite(
            session_id=self.session_id,
            name=self.name,
            fingerprint=self.fingerprint,
            public_key=self.public_key.hex(),
            ttl_minutes=self.ttl_minutes,
            max_message_length=self.max_message_length,
            nonce=self.nonce,
            signature=self.signature.hex(),
        )

    def wire(self) -> dict[str, Any]:
        return self.frame().to_dict()

    def check(self, to: str) -> Refusal | None:
        """None if the signature is this key's, over this invite to `to`; else the refusal."""
        if hashlib.sha256(self.public_key).hexdigest() != self.fingerprint:
            return Refusal(403, "fingerprint_mismatch", "The public key is not the fingerprint.")
        message = invite_message(
            nonce=self.nonce,
            session_id=self.session_id,
            name=self.name,
            fingerprint=self.fingerprint,
            to=to,
            ttl_minutes=self.ttl_minutes,
            max_message_length=self.max_message_length,
        )
        if not signature_valid(self.public_key, self.signature, message):
            return Refusal(403, "bad_signature", "The signature does not match the invite.")
        return None


def whole(value: object, low: int, high: int) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        return None
    return value


def session_limits(body: dict[str, Any]) -> tuple[int, int]:
    """(ttl_minutes, max_message_length) from a body, defaults for missing ones."""
    return check_limits(
        body.get("ttl_minutes", DEFAULT_TTL_MINUTES),
        body.get("max_message_length", DEFAULT_MAX_MESSAGE_LENGTH),
    )


def check_limits(ttl_minutes: object, max_message_length: object) -> tuple[int, int]:
    ttl = whole(ttl_minutes, *TTL_MINUTES)
    if ttl is None:
        raise Refusal(422, "invalid_ttl_minutes", "ttl_minutes: a whole number from 1 to 10000.")
    length = whole(max_message_length, *MAX_MESSAGE_LENGTH)
    if length is None:
        raise Refusal(
            422,
            "invalid_max_message_length",
            "max_message_length: a whole number from 200 to 16000.",
        )
    return ttl, length


F = TypeVar("F", bound=Frame)


def read_body(cls: type[F], raw: str | bytes | dict[str, Any]) -> F:
    """A LAN listener's request body as the frame its endpoint takes: the one refusal
    path (400 `invalid_json`, 422 `invalid_body` or `invalid_<member>`)."""
    try:
        return lan.CHANNEL.parse_as(cls, raw)
    except ProtocolError as exc:
        if exc.member is not None:
            raise Refusal(422, f"invalid_{exc.member}", exc.message) from None
        if exc.frame_type is None:  # not even JSON
            raise Refusal(
                400, "invalid_json", f"The request body is not valid: {exc.message}"
            ) from None
        raise Refusal(422, "invalid_body", "The request body must be a JSON object.") from None


def parse_invite(body: str | bytes | dict[str, Any]) -> SignedInvite:
    """The invite in a request body, checked (422 `invalid_<member>` for what is wrong)."""
    invite = read_body(lan.Invite, body)
    if not invite.name.strip() or len(invite.name.encode()) > NAME_MAX:
        raise Refusal(422, "invalid_name", "name: 1 to 63 bytes.")
    ttl, length = check_limits(invite.ttl_minutes, invite.max_message_length)
    return SignedInvite(
        invite.session_id,
        invite.name,
        invite.fingerprint,
        bytes.fromhex(invite.public_key),
        ttl,
        length,
        invite.nonce,
        bytes.fromhex(invite.signature),
    )


class Nonces:
    """Single-use nonces handed to source addresses, each good for `NONCE_SECONDS`."""

    def __init__(self, lifetime: float = NONCE_SECONDS) -> None:
        self.lifetime = lifetime
        self._issued: dict[str, tuple[str, float]] = {}  # nonce -> (address, expiry)

    def issue(self, address: str) -> str:
        now = time.monotonic()
        for nonce, (_, expiry) in list(self._issued.items()):
            if expiry <= now:
                del self._issued[nonce]
        mine = [n for n, (a, _) in self._issued.items() if a == address]
        for nonce in mine[: max(0, len(mine) - NONCES_PER_ADDRESS + 1)]:
            del self._issued[nonce]
        while len(self._issued) >= NONCES_MAX:
            del self._issued[next(iter(self._issued))]
        nonce = secrets.token_urlsafe(24)
        self._issued[nonce] = (address, now + self.lifetime)
        return nonce

    def take(self, address: str, nonce: str) -> bool:
        """True once for a nonce issued to `address` that has not expired."""
        issued = self._issued.get(nonce)
        if issued is None or issued[0] != address:
            return False
        del self._issued[nonce]
        return issued[1] > time.monotonic()
