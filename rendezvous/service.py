"""The rendezvous service: session rules applied to the store, the relay and the clock.

HTTP and WebSocket handlers stay thin and call in here. Everything that
happens when a session changes (status pushed to both sockets, the countdown
armed, sockets told and closed at the end) happens in this one place.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, timedelta

from orbitcore.protocol import relay as wire
from orbitcore.ratelimit import Verdict, address_key

from . import session as rules
from . import turn
from .clock import Clock
from .limits import Limits, MemoryLimits
from .metrics import Metrics
from .relay import SeatRelay
from .session import EndReason, Role, Session, SessionError
from .settings import Config
from .store import Store, TokenTaken

log = logging.getLogger("rendezvous")
RATE_WINDOW = timedelta(hours=1)
"""The window of the per-client HTTP rate limits (their settings are per hour)."""


def token_tag(token: str) -> str:
    """A token's stand-in for logs: enough to correlate lines, useless to join with."""
    return rules.public_id(token)[:8]


class Rendezvous:
    def __init__(
        self, config: Config, store: Store, clock: Clock, relay: SeatRelay, metrics: Metrics
    ) -> None:
        self.config = config
        self.store = store
        self.clock = clock
        self.relay = relay
        self.metrics = metrics
        self.limits: Limits = MemoryLimits(
            RATE_WINDOW.total_seconds(), keys_max=config.rate_limit_keys_max
        )
        self._timers: dict[str, asyncio.TimerHandle] = {}
        self._tasks: set[asyncio.Task[None]] = set()

    # -- rate limits -------------------------------------------------------
    def _limit(self, bucket: str) -> int:
        return {
            "token": self.config.token_rate_limit_per_hour,
            "join": self.config.join_rate_limit_per_hour,
            "report": self.config.report_rate_limit_per_hour,
            "admin_login": self.config.admin_login_rate_limit_per_hour,
        }[bucket]

    async def rate(self, bucket: str, client: str, *, record: bool = True) -> Verdict:
        """Count a request against `bucket` (or, with record=False, only look): an IPv6
        client counts by its network of `ipv6_prefix_length` bits. In `self.limits`:
        this instance's memory, or Redis shared by every instance (app.py's limits_ctx)."""
        limit, now = self._limit(bucket), self.clock.now().timestamp()
        key = address_key(client, self.config.ipv6_prefix_length)
        if record:
            verdict = await self.limits.hit(bucket, key, limit, now)
        else:
            verdict = await self.limits.peek(bucket, key, limit, now)
        if not verdict.allowed:
            self.metrics.rate_limited(bucket)
            log.warning("rate limited", extra={"fields": {"limit": bucket, "ip": client}})
        return verdict

    # -- tokens and seats --------------------------------------------------
    async def issue(self, body: object) -> Session:
        validity, ttl, limit = rules.validate_issue(body)
        while True:
            fresh = rules.issue(
                rules.new_token(),
                self.clock.now(),
                validity,
                ttl,
                limit,
                self.config.ttl_minute_seconds,
            )
            try:
                await self.store.insert_session(fresh)
            except TokenTaken:
                continue
            break
        self.metrics.token_issued()
        log.info("token issued", extra={"fields": {"token": token_tag(fresh.token), "ttl": ttl}})
        return fresh

    async def lookup(self, token: object) -> Session:
        if not rules.is_token(token):
            raise SessionError(404, "token_not_found", "No session exists for this token.")
        assert isinstance(token, str)
        found = await self.store.get_session(token)
        if found is None:
            raise SessionError(404, "token_not_found", "No session exists for this token.")
        if found.due_end(self.clock.now()) is not None:
            found = await self._end(token, None)
        return found

    async def join(self, token: object, identity: object) -> tuple[Session, Role]:
        try:
            await self.lookup(token)
            assert isinstance(token, str)
            who = rules.check_identity(identity)
            now = self.clock.now()
            updated = await self.store.update_session(token, lambda s: _seat(s, who, now))
        except SessionError as exc:
            self.metrics.join(exc.code)
            raise
        if updated is None:
            raise SessionError(404, "token_not_found", "No session exists for this token.")
        joined, (role, again) = updated
        self.metrics.join("reconnect" if again else role.value)
        log.info(
            "joined",
            extra={"fields": {"token": token_tag(token), "role": role.value, "again": again}},
        )
        if not again:
            await self.push_status(joined)
        return joined, role

    async def end(self, token: object, identity: object) -> Session:
        await self.lookup(token)
        assert isinstance(token, str)
        who = rules.check_identity(identity)
        now = self.clock.now()
        updated = await self.store.update_session(token, lambda s: (rules.end(s, who, now), None))
        if updated is None:
            raise SessionError(404, "token_not_found", "No session exists for this token.")
        ended = updated[0]
        await self._finish(ended)
        return ended

    async def _end(self, token: str, _reason: EndReason | None) -> Session:
        """Mark a session whose time is up as ended, and tell its sockets."""
        now = self.clock.now()
        updated = await self.store.update_session(
            token, lambda s: (rules.end_if_due(s, now), s.ended_at is None)
        )
        if updated is None:
            raise SessionError(404, "token_not_found", "No session exists for this token.")
        ended, was_open = updated
        if ended.ended_at is not None:
            # Another instance's countdown may have ended it first: its sockets are told
            # again (harmless), but the end is counted and logged once.
            await self._finish(ended, first=was_open)
        return ended

    async def _finish(self, ended: Session, *, first: bool = True) -> None:
        reason = ended.end_reason.value if ended.end_reason else EndReason.MANUALLY_ENDED.value
        if first:
            self.metrics.session_ended(reason)
            log.info(
                "session ended",
                extra={"fields": {"token": token_tag(ended.token), "reason": reason}},
            )
        self._disarm(ended.token)
        ended_at = rules.iso(ended.ended_at)
        assert ended_at is not None  # only an ended session is finished
        frame = wire.SessionEnded(reason=reason, ended_at=ended_at).encode()
        await self.relay.end(ended.token, frame)  # every instance holding a seat

    # -- the countdown -----------------------------------------------------
    def arm(self, session: Session) -> None:
        """Schedule the end of an active session that has sockets attached."""
        ends_at = session.ends_at
        if ends_at is None or session.token in self._timers:
            return
        delay = max(0.0, (ends_at - self.clock.now()).total_seconds())
        loop = asyncio.get_running_loop()
        self._timers[session.token] = loop.call_later(delay, self._expire_soon, session.token)

    def _disarm(self, token: str) -> None:
        handle = self._timers.pop(token, None)
        if handle is not None:
            handle.cancel()

    def _expire_soon(self, token: str) -> None:
        self._timers.pop(token, None)
        task = asyncio.ensure_future(self._expire(token))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _expire(self, token: str) -> None:
        try:
            ended = await self._end(token, EndReason.TIMER_EXPIRED)
        except SessionError:
            return
        if ended.ended_at is None:  # the clock disagrees with the timer: look again later
            self.arm(ended)

    # -- ICE servers -------------------------------------------------------
    def ice_servers(self) -> wire.IceServers | None:
        """Fresh ICE servers for a participant (new TURN credentials), or None when
        none are configured."""
        config = self.config
        ice = turn.mint(
            config.turn_shared_secret,
            config.turn_credential_ttl_seconds,
            self.clock.now(),
            turn_urls=config.turn_urls,
            stun_urls=config.stun_urls,
        )
        if ice is not None:
            self.metrics.ice_granted()
        return ice

    # -- status ------------------------------------------------------------
    async def status(self, session: Session) -> dict[str, object]:
        connected = await self.relay.connected_roles(session.token)
        return session.status(self.clock.now(), connected)

    async def push_status(self, session: Session) -> None:
        if (
            session.ended_at is None
            and session.activated_at is not None
            and self.relay.local_sockets(session.token)
        ):
            self.arm(session)  # each instance with a socket of the session keeps the time
        frame = wire.SessionStatus(status=await self.status(session)).encode()
        await self.relay.push(session.token, frame)

    # -- housekeeping ------------------------------------------------------
    async def sweep(self) -> dict[str, int]:
        """End sessions whose time is up, delete old ended ones, forget idle rate limits."""
        now = self.clock.now()
        ended = 0
        for due in await self.store.sessions_due(now):
            await self._end(due.token, None)
            ended += 1
        retention = timedelta(days=self.config.ended_retention_days)
        deleted = await self.store.delete_ended_before(now - retention)
        forgotten = self.limits.expire(now.timestamp())
        if ended or deleted:
            log.info("swept", extra={"fields": {"ended": ended, "deleted": deleted}})
        return {"ended": ended, "deleted": deleted, "rate_limit_entries_forgotten": forgotten}

    async def close(self) -> None:
        for token in list(self._timers):
            self._disarm(token)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def now(self) -> datetime:
        return self.clock.now()


def _seat(session: Session, identity: str, now: datetime) -> tuple[Session, tuple[Role, bool]]:
    joined, role, again = rules.join(session, identity, now)
    return joined, (role, again)
