"""The lan channel: the HTTP bodies two daemons exchange on a LAN listener (`lan_port`,
default 7171), with no rendezvous.

An HTTP body is named by its endpoint: each frame here is read as the one its endpoint
expects (`CHANNEL.parse_as`), whether or not it carries its `type` (a daemon sends it;
daemons before this module did not). The signed values (`hello`, `invite`, `withdraw`)
are signed over canonical JSON arrays made from the values (orbitd/lan/hello.py and
invites.py), never over the body's text. The session's own socket,
`GET /lan/session/{id}`, carries `relay` frames.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated

from .frames import Channel, Frame, Text, text

MAX_BYTES = 4096
FINGERPRINT_RE = r"[0-9a-f]{64}"
PUBLIC_KEY_RE = r"[0-9a-fA-F]{64}"  # an Ed25519 public key, hex
SIGNATURE_RE = r"[0-9a-fA-F]{128}"  # an Ed25519 signature, hex
NONCE_RE = r"[A-Za-z0-9_-]{22,64}"
SESSION_ID_RE = r"[A-Z0-9]{12}"
CODE_RE = r"[a-z][a-z0-9_]{0,63}"
NAME_MAX = 63  # bytes of UTF-8 (a character is at least one)

FINGERPRINT = Annotated[str, Text(64, FINGERPRINT_RE)]
PUBLIC_KEY = Annotated[str, Text(64, PUBLIC_KEY_RE)]
SIGNATURE = Annotated[str, Text(128, SIGNATURE_RE)]
SESSION_ID = Annotated[str, Text(12, SESSION_ID_RE)]

CHANNEL = Channel(
    "lan",
    "JSON bodies of the LAN listener's HTTP endpoints (at most 4096 bytes), between two"
    " daemons on one LAN: `GET /lan/hello?nonce=N` (discovery), `GET /lan/invite/nonce`,"
    " `POST /lan/invite`, `GET /lan/invite/{id}?since=S&wait=N` and"
    " `DELETE /lan/invite/{id}` (invites). Zeroconf only hints (TXT keys `name`, `fp`,"
    " `v`, not JSON); a peer is listed once its hello proves the key. A body the listener"
    " refuses is answered with a 4xx `error` body: 400 `invalid_json` (not JSON, too"
    " large, too deep), 422 `invalid_body` (not an object) or 422 `invalid_<member>` (a"
    " member missing or wrong). A daemon that cannot read an answer treats the other as"
    " unreachable or refusing, and logs `protocol_error`.",
    max_bytes=MAX_BYTES,
)


@CHANNEL.register
@dataclass(frozen=True)
class Hello(Frame):
    """The answer to `GET /lan/hello?nonce=N`: the daemon's name, key and the address it
    was reached at, signed with that key over the nonce, so a hello cannot be replayed,
    relayed or made without the key."""

    TYPE = "hello"
    name: Annotated[str, Text(255)]
    fingerprint: FINGERPRINT
    public_key: PUBLIC_KEY
    address: Annotated[str, Text(128)]
    signature: SIGNATURE
    version: str | None = text(16, default=None)


@CHANNEL.register
@dataclass(frozen=True)
class InviteNonce(Frame):
    """The answer to `GET /lan/invite/nonce`: a single-use nonce for one invite from the
    asking address, good for `expires_in` seconds."""

    TYPE = "invite-nonce"
    nonce: Annotated[str, Text(64, NONCE_RE)]
    expires_in: int


@CHANNEL.register
@dataclass(frozen=True)
class Invite(Frame):
    """`POST /lan/invite`: the inviter asks for a session. Signed by the inviter's key over
    every value and the invitee's own fingerprint; `session_id` becomes the session's
    token. `name` is 1 to 63 bytes of UTF-8, not blank; `ttl_minutes` 1 to 10000,
    `max_message_length` 200 to 16000."""

    TYPE = "invite"
    session_id: SESSION_ID
    name: Annotated[str, Text(NAME_MAX)]
    fingerprint: FINGERPRINT
    public_key: PUBLIC_KEY
    ttl_minutes: int
    max_message_length: int
    nonce: Annotated[str, Text(64, NONCE_RE)]
    signature: SIGNATURE


@CHANNEL.register
@dataclass(frozen=True)
class InviteReceived(Frame):
    """The 202 answer to an invite: the request waits for the invitee's user, at most
    `expires_in` seconds."""

    TYPE = "invite-received"
    request_id: SESSION_ID
    expires_in: int


@CHANNEL.register
@dataclass(frozen=True)
class InviteState(Frame):
    """The answer to `GET /lan/invite/{id}?since=S&wait=N` (a long poll while the state is
    still `S`): `pending`, `accepted` (with `remaining_seconds` of the session), `declined`,
    `withdrawn`, `expired` or `ended` (with the session's end `reason`)."""

    TYPE = "invite-state"
    state: Annotated[str, Text(16, CODE_RE)]
    remaining_seconds: int | None = None
    reason: str | None = text(64, pattern=CODE_RE, default=None)


@CHANNEL.register
@dataclass(frozen=True)
class Withdraw(Frame):
    """`DELETE /lan/invite/{id}`: the inviter withdraws its request, signed over the
    session id and the invitee's fingerprint."""

    TYPE = "withdraw"
    signature: SIGNATURE


@CHANNEL.register
@dataclass(frozen=True)
class Withdrawn(Frame):
    """The answer to a withdrawal the invitee took."""

    TYPE = "withdrawn"
    withdrawn: bool


@CHANNEL.register
@dataclass(frozen=True)
class Error(Frame):
    """Any 4xx or 5xx answer of the listener (the daemons' common refusal body): a stable
    `error` code and a sentence."""

    TYPE = "error"
    error: Annotated[str, Text(64, CODE_RE)]
    reason: Annotated[str, Text(500)]
