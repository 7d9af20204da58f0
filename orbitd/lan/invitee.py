"""The invitee's side of LAN invites: requests from nearby daemons, accept or decline.

A request (`receive`) is shown to the user (`lan-request`). The inviter's daemon keeps
a long poll open (`poll`); a request whose inviter stops polling for `POLL_GRACE`
seconds is withdrawn, one unanswered for `REQUEST_SECONDS` expires. Accepting makes
the 6-digit code and opens the session at once (guest seat, signaling over a
`LanLink` that waits for the inviter's socket, countdown running); if that socket
does not come within `CODE_SECONDS`, or the inviter withdraws first, the session ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum
from typing import TYPE_CHECKING, Any

from orbitcore.errors import Refusal
from orbitcore.protocol import lan
from orbitcore.ratelimit import RateLimiter

from ..crypto import Invite, Seat
from ..identity import Identity, signature_valid
from .invites import (
    INVITES_PER_MINUTE,
    LIMITED_ADDRESSES_MAX,
    NONCES_PER_MINUTE,
    PENDING_MAX,
    Nonces,
    SignedInvite,
    new_code,
    parse_invite,
    withdraw_message,
)
from .link import LanLink, lan_status

if TYPE_CHECKING:
    from ..manager import SessionManager
    from .discovery import LanPresence

log = logging.getLogger("orbitd.lan.invitee")
Emit = Callable[[dict[str, Any]], None]

REQUEST_SECONDS = 120.0
POLL_GRACE = 20.0
POLL_WAIT_MAX = 10.0
CODE_SECONDS = 300.0
KEEP_CLOSED = 60.0
SPENT_MAX = 256


class State(StrEnum):
    PENDING = "pending"
    ACCEPTED = "accepted"
    DECLINED = "declined"
    WITHDRAWN = "withdrawn"
    EXPIRED = "expired"
    ENDED = "ended"  # accepted, and the session is over (or never came)


@dataclass
class Incoming:
    invite: SignedInvite
    address: str
    name: str  # as the Nearby list has it (proved by the hello)
    verified_before: bool
    flagged: bool
    reason: str | None
    received_at: float
    last_seen: float
    state: State = State.PENDING
    code: str | None = None
    link: LanLink | None = None
    accepted_at: float | None = None
    closed_at: float | None = None
    end_reason: str | None = None
    changed: asyncio.Event = field(default_factory=asyncio.Event)

    @property
    def id(self) -> str:
        return self.invite.session_id

    def public(self) -> dict[str, Any]:
        """The request as the UI shows it (the code only once accepted)."""
        shown: dict[str, Any] = {
            "id": self.id,
            "name": self.name,
            "fingerprint": self.invite.fingerprint,
            "verified_before": self.verified_before,
            "flagged": self.flagged,
            "reason": self.reason,
            "ttl_minutes": self.invite.ttl_minutes,
            "max_message_length": self.invite.max_message_length,
            "state": self.state.value,
        }
        if self.state is State.ACCEPTED and self.code is not None:
            shown["code"] = self.code
        return shown

    def remaining_seconds(self, now: float) -> int:
        started = self.accepted_at if self.accepted_at is not None else now
        return max(0, int(self.invite.ttl_minutes * 60 - (now - started)))

    def answer(self, now: float) -> lan.InviteState:
        """What the inviter's poll learns."""
        accepted = self.state is State.ACCEPTED
        return lan.InviteState(
            self.state.value, self.remaining_seconds(now) if accepted else None, self.end_reason
        )


class Invitee:
    def __init__(
        self,
        identity: Identity,
        presence: Callable[[], LanPresence | None],
        manager: Callable[[], SessionManager],
        emit: Emit,
    ) -> None:
        self.identity = identity
        self._presence = presence
        self._manager = manager
        self._emit = emit
        self.requests: dict[str, Incoming] = {}
        self._spent: dict[str, float] = {}  # session ids seen before: never reused
        self.invite_limit = RateLimiter(60.0, keys_max=LIMITED_ADDRESSES_MAX)
        self.nonce_limit = RateLimiter(60.0, keys_max=LIMITED_ADDRESSES_MAX)
        self.nonces = Nonces()
        self._sweeper: asyncio.Task[None] | None = None

    # -- lifetime --------------------------------------------------------------------
    def start(self) -> None:
        self._sweeper = asyncio.create_task(self._sweep_forever())

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None

    # -- what the inviter's daemon asks ----------------------------------------------
    def nonce(self, address: str) -> str:
        if not self.nonce_limit.allow(address, NONCES_PER_MINUTE, time.monotonic()):
            raise Refusal(429, "rate_limited", "Too many requests from your address.")
        return self.nonces.issue(address)

    def receive(self, body: str | bytes | dict[str, Any], address: str) -> Incoming:
        """A new request, checked; 4xx refusals say why."""
        if not self.invite_limit.allow(address, INVITES_PER_MINUTE, time.monotonic()):
            raise Refusal(429, "rate_limited", "Too many invites from your address: wait a minute.")
        invite = parse_invite(body)
        if not self.nonces.take(address, invite.nonce):
            raise Refusal(403, "bad_nonce", "The nonce is unknown, spent or expired.")
        refusal = invite.check(self.identity.fingerprint)
        if refusal is not None:
            raise refusal
        entry = self._nearby(invite.fingerprint, address)
        self._not_an_impostor(str(entry["name"]), invite)
        if invite.session_id in self.requests or invite.session_id in self._spent:
            raise Refusal(409, "duplicate_session_id", "This session id was used before.")
        if any(
            r.invite.fingerprint == invite.fingerprint and r.state is State.PENDING
            for r in self.requests.values()
        ):
            raise Refusal(409, "request_pending", "Your earlier request is still waiting.")
        if self._manager().busy:
            raise Refusal(409, "busy", "They are in a session already.")
        if sum(r.state is State.PENDING for r in self.requests.values()) >= PENDING_MAX:
            raise Refusal(429, "too_many_requests", "Too many requests are waiting here.")
        now = time.monotonic()
        request = Incoming(
            invite,
            address,
            str(entry["name"]),
            bool(entry["verified_before"]),
            bool(entry["flagged"]),
            entry["reason"],
            now,
            now,
        )
        self.requests[request.id] = request
        self._spent[request.id] = now
        log.info(
            "LAN: invite received",
            extra={"fields": {"name": request.name, "fingerprint": invite.fingerprint}},
        )
        self._emit({"type": "lan-request", "request": request.public()})
        return request

    def _nearby(self, fingerprint: str, address: str) -> dict[str, Any]:
        """The Nearby entry that proved `fingerprint` from `address` (else 403)."""
        presence = self._presence()
        if presence is None:
            raise Refusal(503, "lan_off", "Nearby discovery is off here.")
        proved = [
            p
            for p in presence.peers()
            if p["fingerprint"] == fingerprint and p["reason"] != "key_mismatch"
        ]
        if not proved:
            raise Refusal(403, "not_nearby", "No nearby device has proved this key.")
        for entry in proved:
            if entry["address"] == address:
                return entry
        raise Refusal(
            403, "not_nearby", "The request did not come from the address this key announced."
        )

    def _not_an_impostor(self, name: str, invite: SignedInvite) -> None:
        """403 if the user verified this name (announced or signed) with another key:
        "verified before" is a check, not a hint (the PAKE binds the key as well)."""
        presence = self._presence()
        store = presence.store if presence is not None else None
        if store is None:
            return
        for claimed in {name, invite.name}:
            if store.status(claimed, invite.fingerprint) == "mismatch":
                log.warning(
                    "LAN: an invite under a verified name with another key, refused",
                    extra={"fields": {"name": claimed, "fingerprint": invite.fingerprint}},
                )
                self._emit(
                    {"type": "lan-impostor", "name": claimed, "fingerprint": invite.fingerprint}
                )
                raise Refusal(
                    403,
                    "known_name_other_key",
                    "This device verified someone of that name before, with another key.",
                )

    def _request(self, request_id: str, address: str | None = None) -> Incoming:
        request = self.requests.get(request_id)
        if request is None or (address is not None and request.address != address):
            raise Refusal(404, "request_not_found", "No such request.")
        return request

    async def poll(self, request_id: str, address: str, since: str, wait: float) -> lan.InviteState:
        """The request's state; waits up to `wait` s while it is still `since`."""
        request = self._request(request_id, address)
        request.last_seen = time.monotonic()
        if request.state.value == since and wait > 0:
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(min(wait, POLL_WAIT_MAX)):
                    await request.changed.wait()
            request.last_seen = time.monotonic()
        return request.answer(time.monotonic())

    def withdraw(self, request_id: str, address: str, withdraw: lan.Withdraw) -> None:
        request = self._request(request_id, address)
        message = withdraw_message(request_id, self.identity.fingerprint)
        signature = bytes.fromhex(withdraw.signature)
        if not signature_valid(request.invite.public_key, signature, message):
            raise Refusal(403, "bad_signature", "The signature does not match.")
        self._give_up(request, "withdrawn")

    def socket_link(self, request_id: str, address: str) -> LanLink:
        """The link that takes the inviter's signaling socket: claimed here, once."""
        request = self._request(request_id, address)
        link = request.link
        if request.state is not State.ACCEPTED or link is None or link.closed:
            raise Refusal(409, "not_accepted", "This request is not waiting for a session.")
        try:
            link.claim()
        except RuntimeError:
            raise Refusal(409, "socket_taken", "This session has its socket already.") from None
        return link

    # -- what the user decides -------------------------------------------------------
    def pending(self) -> list[dict[str, Any]]:
        return [
            r.public() for r in self.requests.values() if r.state in (State.PENDING, State.ACCEPTED)
        ]

    def _open_request(self, request_id: str) -> Incoming:
        request = self._request(request_id)
        if request.state is not State.PENDING:
            raise Refusal(409, "request_closed", f"This request is {request.state.value}.")
        return request

    async def accept(self, request_id: str) -> dict[str, Any]:
        request = self._open_request(request_id)
        self._not_an_impostor(request.name, request.invite)  # verified since it came?
        invite, code = request.invite, new_code()
        link = LanLink(invite.session_id, on_end=self._link_ended)
        ttl, length = invite.ttl_minutes, invite.max_message_length
        status = lan_status(invite.session_id, ttl, length, ttl * 60)
        peer = {"name": request.name, "fingerprint": invite.fingerprint}
        session = await self._manager().open_lan(
            Invite(invite.session_id, code, (invite.fingerprint, self.identity.fingerprint)),
            Seat.GUEST,
            status,
            link,
            peer,
        )
        request.code, request.link, request.accepted_at = code, link, time.monotonic()
        self._set_state(request, State.ACCEPTED)
        log.info("LAN: invite accepted", extra={"fields": {"name": request.name}})
        self._emit({"type": "lan-accepted", "request_id": request.id, "direction": "incoming"})
        return {"code": code, "session": session.snapshot()}

    def decline(self, request_id: str) -> None:
        request = self._open_request(request_id)
        self._set_state(request, State.DECLINED)
        self._emit(
            {
                "type": "lan-declined",
                "request_id": request.id,
                "direction": "incoming",
                "reason": "declined",
            }
        )

    # -- endings ---------------------------------------------------------------------
    def _set_state(self, request: Incoming, state: State) -> None:
        request.state = state
        if state not in (State.PENDING, State.ACCEPTED):
            request.closed_at = time.monotonic()
        request.changed.set()
        request.changed = asyncio.Event()

    def _give_up(self, request: Incoming, why: str) -> None:
        """The inviter withdrew or went silent, or time ran out (`why`)."""
        if request.state is State.PENDING:
            state = State.EXPIRED if why == "expired" else State.WITHDRAWN
            self._set_state(request, state)
            self._emit({"type": "lan-request-withdrawn", "request_id": request.id, "reason": why})
        elif request.state is State.ACCEPTED and request.link and not request.link.attached:
            reason = "connect_timeout" if why == "expired" else "peer_aborted"
            request.link.ended(reason)

    def _link_ended(self, link: LanLink) -> None:
        request = self.requests.get(link.session_id)
        if request is None or request.state is not State.ACCEPTED:
            return
        session = self._manager().session
        if session is not None and session.token == request.id and session.ended:
            request.end_reason = str(session.ended.get("reason"))
        self._set_state(request, State.ENDED)

    def sweep(self, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        for request in list(self.requests.values()):
            if request.state is State.PENDING:
                if now - request.received_at > REQUEST_SECONDS:
                    self._give_up(request, "expired")
                elif now - request.last_seen > POLL_GRACE:
                    self._give_up(request, "gone")
            elif request.state is State.ACCEPTED and request.accepted_at is not None:
                if now - request.accepted_at > CODE_SECONDS:
                    self._give_up(request, "expired")
                elif now - request.last_seen > POLL_GRACE:
                    self._give_up(request, "gone")
            elif request.closed_at is not None and now - request.closed_at > KEEP_CLOSED:
                del self.requests[request.id]
        for old in list(self._spent)[: max(0, len(self._spent) - SPENT_MAX)]:
            if old not in self.requests:
                del self._spent[old]

    async def _sweep_forever(self) -> None:
        while True:
            await asyncio.sleep(1.0)
            try:
                self.sweep()
            except Exception:
                log.exception("LAN: sweeping invites failed")
