"""The session rules, as plain functions over a value object: no I/O, `now` passed in.

A session is born CREATED when a token is issued. The first identity to join
takes the host seat (HOST_RESERVED); the second takes the guest seat, which
starts the countdown (ACTIVE). The same identity joining again gets its seat
back; a third identity is refused. The session is ENDED by hand, when its
countdown runs out, or when nobody took the guest seat before the token's
validity window closed.
"""

from __future__ import annotations

import dataclasses
import enum
import hashlib
import hmac
import secrets
import string
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from orbitcore.errors import Refusal

TOKEN_ALPHABET = string.ascii_uppercase + string.digits
TOKEN_LENGTH = 12
VALIDITY = {
    "day": timedelta(days=1),
    "week": timedelta(days=7),
    "month": timedelta(days=30),
    "year": timedelta(days=365),
}
TTL_MINUTES = (1, 10000)
MESSAGE_LENGTH = (200, 16000)
IDENTITY_MAX = 128


class State(enum.StrEnum):
    CREATED = "CREATED"
    HOST_RESERVED = "HOST_RESERVED"
    ACTIVE = "ACTIVE"
    ENDED = "ENDED"


class EndReason(enum.StrEnum):
    MANUALLY_ENDED = "manually_ended"
    TIMER_EXPIRED = "timer_expired"
    TOKEN_EXPIRED = "token_expired"  # noqa: S105 (a reason, not a secret)


class Role(enum.StrEnum):
    HOST = "host"
    GUEST = "guest"


class SessionError(Refusal):
    """A request the session rules refuse: an HTTP status, a code and a sentence."""


def new_token() -> str:
    return "".join(secrets.choice(TOKEN_ALPHABET) for _ in range(TOKEN_LENGTH))


def is_token(value: object) -> bool:
    return (
        isinstance(value, str)
        and len(value) == TOKEN_LENGTH
        and all(c in TOKEN_ALPHABET for c in value)
    )


def check_identity(value: object) -> str:
    if not isinstance(value, str) or not value:
        raise SessionError(422, "invalid_identity", "client_identity must be a non-empty string.")
    if len(value) > IDENTITY_MAX or not value.isprintable() or "/" in value:
        raise SessionError(
            422,
            "invalid_identity",
            f"client_identity must be at most {IDENTITY_MAX} printable characters without '/'.",
        )
    return value


def public_id(identity: str) -> str:
    """What others see of an identity: the identity itself is the seat's credential."""
    return seat_digest(identity)[:16]


def seat_digest(identity: str) -> str:
    """What the store keeps of a seat's credential: its SHA-256 in hex, never the
    identity itself (its first 16 digits are the public id)."""
    return hashlib.sha256(identity.encode("utf-8", "surrogatepass")).hexdigest()


def iso(moment: datetime | None) -> str | None:
    if moment is None:
        return None
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Session:
    token: str
    created_at: datetime
    valid_until: datetime
    ttl_minutes: int
    max_message_length: int
    host_id: str | None = None
    """The host's `seat_digest` (never its client_identity), None while the seat is free."""
    guest_id: str | None = None
    """The guest's `seat_digest`, likewise."""
    host_joined_at: datetime | None = None
    guest_joined_at: datetime | None = None
    activated_at: datetime | None = None
    ended_at: datetime | None = None
    end_reason: EndReason | None = None
    minute_seconds: float = 60.0
    """How long one TTL minute lasts: 60, except where tests and demos shorten it."""

    @property
    def ttl_seconds(self) -> float:
        return self.ttl_minutes * self.minute_seconds

    @property
    def ends_at(self) -> datetime | None:
        if self.activated_at is None:
            return None
        return self.activated_at + timedelta(seconds=self.ttl_seconds)

    def state(self, now: datetime) -> State:
        if self.ended_at is not None or self.due_end(now) is not None:
            return State.ENDED
        if self.activated_at is not None:
            return State.ACTIVE
        if self.host_id is not None:
            return State.HOST_RESERVED
        return State.CREATED

    def due_end(self, now: datetime) -> EndReason | None:
        """Why this session should be ended at `now` though it is not yet marked so."""
        if self.ended_at is not None:
            return None
        ends_at = self.ends_at
        if ends_at is not None and now >= ends_at:
            return EndReason.TIMER_EXPIRED
        if self.activated_at is None and now >= self.valid_until:
            return EndReason.TOKEN_EXPIRED
        return None

    def role_of(self, identity: str) -> Role | None:
        """The seat `identity` (a client_identity) holds, compared in constant time."""
        digest = seat_digest(identity).encode()
        for role, held in ((Role.HOST, self.host_id), (Role.GUEST, self.guest_id)):
            if held is not None and hmac.compare_digest(digest, held.encode()):
                return role
        return None

    def remaining_seconds(self, now: datetime) -> int:
        if self.state(now) is State.ENDED:
            return 0
        ends_at = self.ends_at
        if ends_at is None:
            return int(self.ttl_seconds)
        return max(0, int((ends_at - now).total_seconds()))

    def status(self, now: datetime, connected: frozenset[Role] = frozenset()) -> dict[str, Any]:
        """The seed's session-status shape; participant ids are shown as public ids."""

        def seat(digest: str | None, joined: datetime | None, role: Role) -> dict[str, Any] | None:
            if digest is None:
                return None
            return {
                "id": digest[:16],
                "joined_at": iso(joined),
                "connected": role in connected,
            }

        return {
            "token": self.token,
            "state": self.state(now).value,
            "valid_until": iso(self.valid_until),
            "max_message_length": self.max_message_length,
            "participants": {
                "host": seat(self.host_id, self.host_joined_at, Role.HOST),
                "guest": seat(self.guest_id, self.guest_joined_at, Role.GUEST),
            },
            "timer": {
                "started_at": iso(self.activated_at),
                "ttl_minutes": self.ttl_minutes,
                "ends_at": iso(self.ends_at),
                "remaining_seconds": self.remaining_seconds(now),
            },
            "ended_at": iso(self.ended_at),
            "end_reason": self.end_reason.value if self.end_reason else None,
        }


def validate_issue(body: Any) -> tuple[timedelta, int, int]:
    """(validity, ttl_minutes, max_message_length) from an issue request body."""
    if not isinstance(body, dict):
        raise SessionError(422, "invalid_body", "The request body must be a JSON object.")
    option = body.get("validity_option", "day")
    if not isinstance(option, str) or option not in VALIDITY:
        raise SessionError(
            422, "invalid_validity_option", "validity_option must be one of day, week, month, year."
        )
    ttl = body.get("ttl_minutes", 60)
    low, high = TTL_MINUTES
    if not isinstance(ttl, int) or isinstance(ttl, bool) or not low <= ttl <= high:
        raise SessionError(
            422, "invalid_ttl_minutes", f"ttl_minutes must be a whole number from {low} to {high}."
        )
    limit = body.get("max_message_length", 2000)
    low, high = MESSAGE_LENGTH
    if not isinstance(limit, int) or isinstance(limit, bool) or not low <= limit <= high:
        raise SessionError(
            422,
            "invalid_max_message_length",
            f"max_message_length must be a whole number from {low} to {high}.",
        )
    return VALIDITY[option], ttl, limit


def issue(
    token: str,
    now: datetime,
    validity: timedelta,
    ttl: int,
    limit: int,
    minute_seconds: float = 60.0,
) -> Session:
    return Session(
        token=token,
        created_at=now,
        valid_until=now + validity,
        ttl_minutes=ttl,
        max_message_length=limit,
        minute_seconds=minute_seconds,
    )


def end_if_due(session: Session, now: datetime) -> Session:
    reason = session.due_end(now)
    if reason is None:
        return session
    ended_at = session.ends_at if reason is EndReason.TIMER_EXPIRED else session.valid_until
    return dataclasses.replace(session, ended_at=min(ended_at or now, now), end_reason=reason)


def join(session: Session, identity: str, now: datetime) -> tuple[Session, Role, bool]:
    """Seat `identity`: (new session, role, whether it is a reconnect)."""
    session = end_if_due(session, now)
    if session.ended_at is not None:
        raise SessionError(410, "session_ended", "This session has ended.")
    role = session.role_of(identity)
    if role is not None:
        return session, role, True
    if session.host_id is None:
        seated = dataclasses.replace(session, host_id=seat_digest(identity), host_joined_at=now)
        return seated, Role.HOST, False
    if session.guest_id is None:
        joined = dataclasses.replace(
            session, guest_id=seat_digest(identity), guest_joined_at=now, activated_at=now
        )
        return joined, Role.GUEST, False
    raise SessionError(409, "session_full", "Both seats of this session are taken.")


def end(session: Session, identity: str, now: datetime) -> Session:
    session = end_if_due(session, now)
    if session.role_of(identity) is None:
        raise SessionError(403, "not_a_participant", "Only a participant may end the session.")
    if session.ended_at is not None:
        raise SessionError(410, "session_ended", "This session has already ended.")
    return dataclasses.replace(session, ended_at=now, end_reason=EndReason.MANUALLY_ENDED)
