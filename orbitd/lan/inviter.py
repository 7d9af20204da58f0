"""The inviter's side of LAN invites: ask a nearby daemon, wait, then type the code.

`invite` fetches a nonce from the invitee's LAN listener and posts the signed request;
a long poll (`GET /lan/invite/{id}?since=STATE&wait=10`) then follows it: `lan-accepted`
or `lan-declined` for the UI. The poll goes on after acceptance (the invitee takes a
silent inviter for gone). `code` spends the request whatever the code: it opens the
session (host seat, the offerer) with signaling over a `LanLink` that dials the
invitee's `GET /lan/session/{id}`; a wrong code fails the PAKE on both sides.

Only one outgoing request at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any, TypeVar

import aiohttp

from orbitcore.errors import Refusal
from orbitcore.protocol import lan
from orbitcore.protocol.frames import Frame, ProtocolError

from ..crypto import Invite, Seat
from ..identity import Identity
from .invitee import POLL_WAIT_MAX, REQUEST_SECONDS
from .invites import CODE, SignedInvite, new_session_id, session_limits, withdraw_message
from .link import LanLink, lan_status
from .peers import FINGERPRINT

if TYPE_CHECKING:
    from ..manager import SessionManager
    from .discovery import LanPresence

log = logging.getLogger("orbitd.lan.inviter")
Emit = Callable[[dict[str, Any]], None]

ASK_TIMEOUT = aiohttp.ClientTimeout(total=5.0)
POLL_TIMEOUT = aiohttp.ClientTimeout(total=POLL_WAIT_MAX + 5.0)
POLL_FAILURES = 4  # in a row, a second apart: the invitee is gone
GIVE_UP_SECONDS = REQUEST_SECONDS + 15.0
BODY_MAX = 4096
# What a refusal of the invitee's daemon becomes for our UI: (status, code, reason).
PEER_REFUSALS = {
    "busy": (409, "peer_busy", "They are in a session already."),
    "request_pending": (409, "invite_pending", "Your earlier invite to them is still waiting."),
    "rate_limited": (429, "rate_limited", "Too many invites: wait a minute and try again."),
    "too_many_requests": (429, "rate_limited", "Too many invites wait there: try again later."),
    "known_name_other_key": (
        409,
        "peer_knows_name_with_other_key",
        "Their device verified someone of your name before, with another key: they must "
        "check your fingerprint and verify you again first.",
    ),
    "not_nearby": (
        409,
        "not_nearby_there",
        "Their device does not see yours yet: try again in a moment.",
    ),
}


class State(StrEnum):
    WAITING = "waiting"
    ACCEPTED = "accepted"
    USED = "used"
    CLOSED = "closed"


@dataclass
class Outgoing:
    id: str
    peer: dict[str, Any]  # the Nearby entry
    ttl_minutes: int
    max_message_length: int
    sent_at: float
    state: State = State.WAITING
    ends_at: float | None = None  # monotonic, once accepted
    task: asyncio.Task[None] | None = None

    @property
    def base(self) -> str:
        return f"http://{self.peer['address']}:{self.peer['port']}"

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "name": self.peer["name"],
            "fingerprint": self.peer["fingerprint"],
            "verified_before": self.peer["verified_before"],
            "flagged": self.peer["flagged"],
            "reason": self.peer["reason"],
            "ttl_minutes": self.ttl_minutes,
            "max_message_length": self.max_message_length,
            "state": self.state.value,
        }


F = TypeVar("F", bound=Frame)


async def _body(response: aiohttp.ClientResponse) -> bytes:
    body = await response.content.read(BODY_MAX + 1)
    if len(body) > BODY_MAX:
        raise ValueError("answer too large")
    return body


def _answer(cls: type[F], body: bytes) -> F:
    """The invitee's answer as the frame its endpoint gives; one that is not is logged
    as `protocol_error` and taken for no answer (ValueError)."""
    try:
        return lan.CHANNEL.parse_as(cls, body)
    except ProtocolError:
        log.warning("protocol_error", extra={"fields": {"channel": "lan", "type": cls.TYPE}})
        raise ValueError("an answer that is not a frame") from None


class Inviter:
    def __init__(
        self,
        identity: Identity,
        name: str,
        presence: Callable[[], LanPresence | None],
        manager: Callable[[], SessionManager],
        emit: Emit,
    ) -> None:
        self.identity = identity
        self.name = name
        self._presence = presence
        self._manager = manager
        self._emit = emit
        self.outgoing: Outgoing | None = None
        self._lock = asyncio.Lock()
        self._http: aiohttp.ClientSession | None = None

    # -- lifetime --------------------------------------------------------------------
    def start(self) -> None:
        self._http = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(force_close=True, limit=8),
            headers={"User-Agent": "orbitd-lan/1"},
        )

    async def stop(self) -> None:
        out = self.outgoing
        if out is not None and out.state in (State.WAITING, State.ACCEPTED):
            await self.cancel(out.id, wait=1.0)
        if self._http is not None:
            await self._http.close()
            self._http = None

    def http(self) -> aiohttp.ClientSession:
        if self._http is None:
            raise Refusal(409, "lan_off", "Nearby discovery is off.")
        return self._http

    # -- the user's actions ------------------------------------------------------------
    async def invite(self, body: dict[str, Any]) -> Outgoing:
        fingerprint = body.get("fingerprint")
        if not isinstance(fingerprint, str) or not FINGERPRINT.fullmatch(fingerprint):
            raise Refusal(422, "invalid_fingerprint", "fingerprint: 64 lowercase hex digits.")
        ttl, length = session_limits(body)
        async with self._lock:
            if self._manager().busy:
                raise Refusal(409, "session_in_progress", "A session is already running.")
            if self.outgoing is not None and self.outgoing.state in (
                State.WAITING,
                State.ACCEPTED,
            ):
                raise Refusal(409, "invite_pending", "Your invite is still open: cancel it first.")
            presence = self._presence()
            if presence is None:
                raise Refusal(409, "lan_off", "Nearby discovery is off.")
            peer = presence.find(fingerprint)
            if peer is None:
                raise Refusal(404, "not_nearby", "No nearby device has proved that key.")
            if peer["reason"] == "known_name_other_key":
                raise Refusal(
                    409,
                    "name_verified_with_other_key",
                    f"You verified {peer['name']!r} before with another key: this may be "
                    "someone else. Check the fingerprint with the person, then verify again.",
                )
            out = Outgoing(new_session_id(), peer, ttl, length, time.monotonic())
            await self._ask(out)
            self.outgoing = out
            out.task = asyncio.create_task(self._follow(out))
            log.info("LAN: invite sent", extra={"fields": {"name": peer["name"]}})
            return out

    async def _ask(self, out: Outgoing) -> None:
        http = self.http()
        try:
            async with http.get(
                f"{out.base}/lan/invite/nonce", timeout=ASK_TIMEOUT, allow_redirects=False
            ) as response:
                body = await _body(response)
                if response.status != 200:
                    raise self._refused(response.status, body)
                given = _answer(lan.InviteNonce, body)
            signed = SignedInvite.make(
                self.identity,
                name=self.name,
                to=out.peer["fingerprint"],
                nonce=given.nonce,
                session_id=out.id,
                ttl_minutes=out.ttl_minutes,
                max_message_length=out.max_message_length,
            )
            async with http.post(
                f"{out.base}/lan/invite",
                json=signed.frame().to_dict(),
                timeout=ASK_TIMEOUT,
                allow_redirects=False,
            ) as response:
                body = await _body(response)
                if response.status != 202:
                    raise self._refused(response.status, body)
                _answer(lan.InviteReceived, body)
        except (aiohttp.ClientError, TimeoutError, OSError, ValueError) as exc:
            log.info("LAN: invite not delivered", extra={"fields": {"error": type(exc).__name__}})
            raise Refusal(
                504, "peer_unreachable", "Their device does not answer: it may have left."
            ) from None

    @staticmethod
    def _refused(status: int, body: bytes) -> Refusal:
        try:
            said = lan.CHANNEL.parse_as(lan.Error, body)
        except ProtocolError:
            said = lan.Error("unreadable", "(an answer that is not an error body)")
        if said.error in PEER_REFUSALS:
            return Refusal(*PEER_REFUSALS[said.error])
        return Refusal(
            502,
            "peer_refused",
            f"Their device refused the invite ({status} {said.error}): {said.reason[:200]}",
        )

    async def code(self, body: dict[str, Any]) -> dict[str, Any]:
        """The code the invitee read out: one try, then the request is spent."""
        request_id, code = body.get("request_id"), body.get("code")
        if not isinstance(code, str) or not CODE.fullmatch(code.strip()):
            raise Refusal(422, "invalid_code", "The code is 6 digits.")
        out = self.outgoing
        if out is None or out.id != request_id:
            raise Refusal(404, "request_not_found", "No such invite.")
        if out.state is State.WAITING:
            raise Refusal(409, "not_accepted", "They have not accepted yet.")
        if out.state is not State.ACCEPTED or out.ends_at is None:
            raise Refusal(409, "request_closed", "This invite is over: invite again.")
        if self._manager().busy:
            raise Refusal(409, "session_in_progress", "A session is already running.")
        out.state = State.USED
        if out.task is not None:
            out.task.cancel()
        remaining = int(out.ends_at - time.monotonic())
        url = f"ws://{out.peer['address']}:{out.peer['port']}/lan/session/{out.id}"
        link = LanLink(out.id, url=url, http=self.http())
        status = lan_status(out.id, out.ttl_minutes, out.max_message_length, max(0, remaining))
        peer = {"name": str(out.peer["name"]), "fingerprint": str(out.peer["fingerprint"])}
        session = await self._manager().open_lan(
            Invite(out.id, code.strip(), (self.identity.fingerprint, peer["fingerprint"])),
            Seat.HOST,
            status,
            link,
            peer,
        )
        return {"role": "host", "session": session.snapshot()}

    async def cancel(self, request_id: str, wait: float = 5.0) -> None:
        out = self.outgoing
        if out is None or out.id != request_id:
            raise Refusal(404, "request_not_found", "No such invite.")
        if out.state not in (State.WAITING, State.ACCEPTED):
            raise Refusal(409, "request_closed", "This invite is over already.")
        self._close(out, None)
        signature = self.identity.sign(withdraw_message(out.id, out.peer["fingerprint"]))
        with contextlib.suppress(aiohttp.ClientError, TimeoutError, OSError):
            async with self.http().delete(
                f"{out.base}/lan/invite/{out.id}",
                json=lan.Withdraw(signature.hex()).to_dict(),
                timeout=aiohttp.ClientTimeout(total=wait),
                allow_redirects=False,
            ) as response:
                await response.read()

    # -- following the request ---------------------------------------------------------
    def _close(self, out: Outgoing, reason: str | None) -> None:
        """The request is over; `reason` (declined, expired, cancelled, unreachable) goes
        to the UI as `lan-declined` (None: our user cancelled)."""
        out.state = State.CLOSED
        if out.task is not None and out.task is not asyncio.current_task():
            out.task.cancel()
        if reason is not None:
            log.info("LAN: invite closed", extra={"fields": {"reason": reason}})
            self._emit(
                {
                    "type": "lan-declined",
                    "request_id": out.id,
                    "direction": "outgoing",
                    "reason": reason,
                }
            )

    async def _follow(self, out: Outgoing) -> None:
        failures = 0
        while out.state in (State.WAITING, State.ACCEPTED):
            if out.state is State.WAITING and time.monotonic() - out.sent_at > GIVE_UP_SECONDS:
                self._close(out, "expired")
                return
            try:
                answer = await self._poll(out)
            except (aiohttp.ClientError, TimeoutError, OSError, ValueError):
                failures += 1
                if failures >= POLL_FAILURES:
                    self._close(out, "unreachable")
                    return
                await asyncio.sleep(1.0)
                continue
            failures = 0
            self._answered(out, answer)

    async def _poll(self, out: Outgoing) -> lan.InviteState:
        params = {"since": out.state.value.replace("waiting", "pending"), "wait": "10"}
        async with self.http().get(
            f"{out.base}/lan/invite/{out.id}",
            params=params,
            timeout=POLL_TIMEOUT,
            allow_redirects=False,
        ) as response:
            if response.status == 404:
                return lan.InviteState("expired")
            body = await _body(response)
            if response.status != 200:
                raise ValueError(f"poll answered {response.status}")
            return _answer(lan.InviteState, body)

    def _answered(self, out: Outgoing, answer: lan.InviteState) -> None:
        if out.state not in (State.WAITING, State.ACCEPTED):
            return  # used or cancelled while the poll was out
        state = answer.state
        if state == "pending":
            return
        if state == "accepted":
            remaining = answer.remaining_seconds
            if out.state is State.WAITING and remaining is not None and remaining > 0:
                out.state, out.ends_at = State.ACCEPTED, time.monotonic() + remaining
                log.info("LAN: invite accepted", extra={"fields": {"name": out.peer["name"]}})
                self._emit(
                    {
                        "type": "lan-accepted",
                        "request_id": out.id,
                        "direction": "outgoing",
                        "name": out.peer["name"],
                    }
                )
            return
        if state == "declined":
            self._close(out, "declined")
        elif state == "ended" and answer.reason != "connect_timeout":
            self._close(out, "cancelled")
        else:  # expired, withdrawn, ended by its deadline, or nonsense
            self._close(out, "expired")
