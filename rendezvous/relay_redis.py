"""The relay across rendezvous instances that share one Redis (docs/scaling.md).

Each instance has an id (its name and a random suffix per start), a heartbeat key
that lives `HEARTBEAT_TTL` seconds (refreshed every `HEARTBEAT_EVERY`) and a pub/sub
channel of its own. A socket holding a seat is recorded as the seat's presence. A
message for a peer whose socket is on this instance goes straight to it; otherwise one
Lua call (`FORWARD`) publishes it to the instance holding the peer's seat, or holds it
in Redis within the same caps as one instance. Attaching takes the presence and the
held list in one step (`ATTACH`); what arrives for the seat meanwhile waits behind the
held messages, so order holds. A message that reaches an instance whose socket for the
seat has gone is forwarded again (re-routed or held), never dropped silently.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import secrets
import socket
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from redis.asyncio import Redis
from redis.exceptions import RedisError

from . import relay_scripts as lua
from .redis_link import CONNECT_TIMEOUT, RedisUnavailable
from .relay import CLOSE_REPLACED, REPLACED, RelayUnavailable, other, tell_and_close
from .session import Role

log = logging.getLogger("rendezvous.relay")

HEARTBEAT_TTL = 10.0  # seconds an instance counts as live after its last heartbeat
HEARTBEAT_EVERY = 3.0
PRESENCE_TTL = 3600  # seconds; refreshed every PRESENCE_EVERY while the socket stays
PRESENCE_EVERY = 900.0
REFRESH_BATCH = 500  # seats per pipeline, so a refresh never holds the event loop long
HELD_TTL = 86400  # seconds held messages wait after the last one was added
RETRY_AFTER = 0.5  # seconds before listening again after Redis dropped the subscription


def instance_id(name: str, port: int) -> str:
    """This run's id among the instances: its name (default: host name and port) and a
    random part, so a restarted instance never inherits the seats of its previous run."""
    name = name or f"{socket.gethostname()}:{port}"
    return f"{name.replace('|', '_')}/{secrets.token_hex(4)}"


@dataclass(slots=True)  # one or two per open socket
class Seat:
    """A seat held by a socket on this instance."""

    ws: web.WebSocketResponse
    generation: int
    ready: bool = False  # held messages delivered: relayed ones may go straight through
    waiting: list[str] = field(default_factory=list)


class RedisRelay:
    def __init__(
        self, *, instance: str, held_messages_max: int, held_bytes_max: int, prefix: str = "orbit"
    ) -> None:
        self.instance = instance.replace("|", "_")
        self.held_messages_max = held_messages_max
        self.held_bytes_max = held_bytes_max
        self.keys = lua.Keys(prefix)
        self.relayed = 0
        self._seats: dict[tuple[str, Role], Seat] = {}
        self._generations = itertools.count(1)
        self._redis: Redis | None = None
        self._scripts: dict[str, Any] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._subscribed = asyncio.Event()

    # -- lifecycle ---------------------------------------------------------
    async def start(self, redis: Redis) -> None:
        """Listen on this instance's channel, then announce it live."""
        self._redis = redis
        for name in ("FORWARD", "ATTACH", "DETACH", "REFRESH", "SEATS", "END"):
            self._scripts[name] = redis.register_script(getattr(lua, name))
        self._tasks.append(asyncio.create_task(self._listen()))
        try:
            await asyncio.wait_for(self._subscribed.wait(), CONNECT_TIMEOUT)
        except TimeoutError:
            await self.stop()
            raise RedisUnavailable("Redis answers but refuses this instance's channel") from None
        await self._heartbeat()
        self._tasks.append(asyncio.create_task(self._keep_alive()))
        log.info("relay on redis", extra={"fields": {"instance": self.instance}})

    async def stop(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        self._tasks.clear()
        if self._redis is not None:
            with contextlib.suppress(RedisError, OSError):
                await self._redis.delete(self.keys.alive(self.instance))
                await self._redis.zrem(self.keys.instances(), self.instance)

    @property
    def redis(self) -> Redis:
        assert self._redis is not None, "RedisRelay.start() first"
        return self._redis

    def _presence(self, seat: Seat) -> str:
        return f"{self.instance}|{seat.generation}"

    # -- the seat's socket -------------------------------------------------
    @property
    def open_sockets(self) -> int:
        return len(self._seats)

    def local_sockets(self, token: str) -> list[web.WebSocketResponse]:
        found = (self._seats.get((token, role)) for role in Role)
        return [seat.ws for seat in found if seat is not None]

    async def attach(self, token: str, role: Role, ws: web.WebSocketResponse) -> None:
        seat = Seat(ws, next(self._generations))
        previous = self._seats.get((token, role))
        self._seats[(token, role)] = seat
        if previous is not None and not previous.ws.closed:
            await previous.ws.close(code=CLOSE_REPLACED, message=REPLACED)
        try:
            held = await self._scripts["ATTACH"](
                keys=self._seat_keys(token, role),
                args=[self.keys.prefix, self._presence(seat), PRESENCE_TTL, f"r|{token}|{role}|"],
            )
        except (RedisError, OSError) as exc:
            if self._seats.get((token, role)) is seat:
                del self._seats[(token, role)]
            raise RelayUnavailable(str(exc)) from None
        seat.waiting[:0] = [text.decode() for text in held]

    async def deliver_held(self, token: str, role: Role, ws: web.WebSocketResponse) -> None:
        seat = self._seats.get((token, role))
        if seat is None or seat.ws is not ws:
            return
        while seat.waiting:
            text = seat.waiting.pop(0)
            try:
                await ws.send_str(text)
            except ConnectionError:
                await self._reroute(token, role, [text, *seat.waiting])
                seat.waiting.clear()
                return
        seat.ready = True

    async def detach(self, token: str, role: Role, ws: web.WebSocketResponse) -> bool:
        seat = self._seats.get((token, role))
        if seat is None or seat.ws is not ws:
            return False
        del self._seats[(token, role)]
        try:
            await self._scripts["DETACH"](
                keys=[self.keys.seat(token, role)], args=[self._presence(seat)]
            )
        except (RedisError, OSError):
            log.warning("relay: cannot free a seat in redis (its TTL will)")
        await self._reroute(token, role, seat.waiting)
        return True

    # -- messages ----------------------------------------------------------
    async def forward(self, token: str, sender: Role, text: str) -> str | None:
        target = other(sender)
        try:
            outcome = await self._route(token, target, text)
        except (RedisError, OSError):
            log.warning("relay: redis unavailable, a message was refused")
            return "relay_unavailable"
        if outcome < 0:
            return "peer_queue_full"
        self.relayed += 1
        return None

    async def _route(self, token: str, role: Role, text: str) -> int:
        """Give `text` to the seat's socket here, or publish it to the instance holding
        the seat, or hold it: 1 given or published, 0 held, -1 refused (caps)."""
        if await self._give_here(token, role, text):
            return 1
        outcome = await self._forward_in_redis(token, role, text, "ask")
        if outcome == 2:  # the seat is here: a socket attached meanwhile, or is leaving
            if await self._give_here(token, role, text):
                return 1
            outcome = await self._forward_in_redis(token, role, text, "hold")
        return outcome

    async def _give_here(self, token: str, role: Role, text: str) -> bool:
        seat = self._seats.get((token, role))
        if seat is None or seat.ws.closed:
            return False
        if not seat.ready:
            seat.waiting.append(text)
            return True
        try:
            await seat.ws.send_str(text)
        except ConnectionError:
            return False
        return True

    async def _forward_in_redis(self, token: str, target: Role, text: str, here: str) -> int:
        outcome: int = await self._scripts["FORWARD"](
            keys=self._seat_keys(token, target),
            args=[
                self.keys.prefix,
                self.instance,
                f"m|{token}|{target}|",
                text,
                self.held_messages_max,
                self.held_bytes_max,
                HELD_TTL,
                here,
            ],
        )
        return outcome

    async def _reroute(self, token: str, role: Role, texts: list[str]) -> None:
        """Messages for a seat whose socket here has gone: to wherever it is now, or held."""
        for text in texts:
            try:
                outcome = await self._route(token, role, text)
            except (RedisError, OSError):
                outcome = -2
            if outcome < 0:
                log.warning("relay: a message for a departed socket could not be kept")

    def _seat_keys(self, token: str, role: Role) -> list[str]:
        return [
            self.keys.seat(token, role),
            self.keys.held(token, role),
            self.keys.held_bytes(token, role),
        ]

    # -- the session -------------------------------------------------------
    async def _seat_instances(self, token: str) -> dict[Role, str]:
        found = await self._scripts["SEATS"](
            keys=[self.keys.seat(token, Role.HOST), self.keys.seat(token, Role.GUEST)],
            args=[self.keys.prefix],
        )
        return {
            role: instance.decode()
            for role, instance in zip((Role.HOST, Role.GUEST), found, strict=True)
            if instance
        }

    async def connected_roles(self, token: str) -> frozenset[Role]:
        local = frozenset(role for role in Role if (token, role) in self._seats)
        try:
            return local | frozenset(await self._seat_instances(token))
        except (RedisError, OSError):
            log.warning("relay: redis unavailable, status shows this instance's sockets only")
            return local

    async def push(self, token: str, frame: str) -> None:
        for ws in self.local_sockets(token):
            if not ws.closed:
                with contextlib.suppress(ConnectionError):
                    await ws.send_str(frame)
        try:
            where = await self._seat_instances(token)
            for role, instance in where.items():
                if instance != self.instance:
                    await self.redis.publish(
                        self.keys.channel(instance), f"p|{token}|{role}|{frame}"
                    )
        except (RedisError, OSError):
            log.warning("relay: redis unavailable, a status went to this instance's sockets only")

    async def end(self, token: str, frame: str) -> None:
        keys = [self.keys.seat(token, role) for role in Role]
        keys += [k for role in Role for k in self._seat_keys(token, role)[1:]]
        try:
            await self._scripts["END"](
                keys=keys, args=[self.keys.prefix, self.instance, f"e|{token}|{frame}"]
            )
        except (RedisError, OSError):
            log.warning("relay: redis unavailable, the end reached this instance's sockets only")
        await self._end_here(token, frame)

    async def _end_here(self, token: str, frame: str) -> None:
        for role in Role:
            seat = self._seats.pop((token, role), None)
            if seat is not None:
                await tell_and_close(seat.ws, frame)

    async def close_all(self, code: int, message: bytes) -> None:
        seats, self._seats = self._seats, {}
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for (token, role), seat in seats.items():
                    await self._scripts["DETACH"](
                        keys=[self.keys.seat(token, role)],
                        args=[self._presence(seat)],
                        client=pipe,
                    )
                await pipe.execute()
        except (RedisError, OSError):
            log.warning("relay: redis unavailable at shutdown; seats expire with their TTL")
        for (token, role), seat in seats.items():
            await self._reroute(token, role, seat.waiting)
            await seat.ws.close(code=code, message=message)

    # -- what other instances send here -------------------------------------
    async def _listen(self) -> None:
        channel = self.keys.channel(self.instance)
        while True:
            try:
                async with self.redis.pubsub(ignore_subscribe_messages=True) as pubsub:
                    await pubsub.subscribe(channel)
                    self._subscribed.set()
                    async for message in pubsub.listen():
                        if message["type"] == "message":
                            await self._receive_safely(message["data"])
            except (RedisError, OSError):
                log.warning("relay: lost the redis subscription; listening again")
                await asyncio.sleep(RETRY_AFTER)

    async def _receive_safely(self, data: bytes) -> None:
        try:
            await self._receive(data.decode())
        except Exception:  # one bad message must not deafen the instance
            log.exception("relay: a message from another instance could not be handled")

    async def _receive(self, data: str) -> None:
        kind, _, rest = data.partition("|")
        if kind == "e":
            token, _, frame = rest.partition("|")
            await self._end_here(token, frame)
            return
        token, role_name, body = rest.split("|", 2)
        role = Role(role_name)
        seat = self._seats.get((token, role))
        if kind == "m":
            await self._reroute(token, role, [body])  # given here if its socket still is
        elif kind == "p" and seat is not None and not seat.ws.closed:
            with contextlib.suppress(ConnectionError):
                await seat.ws.send_str(body)
        elif kind == "r" and seat is not None and str(seat.generation) == body:
            del self._seats[(token, role)]
            await seat.ws.close(code=CLOSE_REPLACED, message=REPLACED)

    # -- staying live ------------------------------------------------------
    async def _heartbeat(self) -> bool:
        """Say this instance lives; return whether Redis had forgotten it (restarted,
        or this instance hung past its heartbeat), so its seats must be put back."""
        key, ttl_ms = self.keys.alive(self.instance), int(HEARTBEAT_TTL * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.set(key, "1", px=ttl_ms, get=True)
            pipe.zadd(self.keys.instances(), {self.instance: int(time.time() * 1000)})
            before, _ = await pipe.execute()
        return before is None

    async def live_instances(self) -> int:
        """How many instances sent a heartbeat within `HEARTBEAT_TTL` (those that stopped
        longer ago are dropped from the set on the way)."""
        horizon = int((time.time() - HEARTBEAT_TTL) * 1000)
        async with self.redis.pipeline(transaction=False) as pipe:
            pipe.zremrangebyscore(self.keys.instances(), "-inf", f"({horizon}")
            pipe.zcard(self.keys.instances())
            _, count = await pipe.execute()
        return int(count)

    async def _keep_alive(self) -> None:
        loop = asyncio.get_running_loop()
        refreshed, failing = loop.time(), False
        while True:
            await asyncio.sleep(HEARTBEAT_EVERY)
            try:
                forgotten = await self._heartbeat()
                if forgotten or loop.time() - refreshed >= PRESENCE_EVERY:
                    await self._refresh_presence()
                    refreshed = loop.time()
                failing = False
            except (RedisError, OSError):
                if not failing:
                    log.warning("relay: redis unavailable for the heartbeat")
                failing = True

    async def _refresh_presence(self) -> None:
        """Keep this instance's seats in Redis (their TTL; or after Redis lost them). A
        seat another socket took while its `replaced` message was lost is let go (4002)."""
        seats = list(self._seats.items())
        for start in range(0, len(seats), REFRESH_BATCH):
            batch = seats[start : start + REFRESH_BATCH]
            async with self.redis.pipeline(transaction=False) as pipe:
                for (token, role), seat in batch:
                    await self._scripts["REFRESH"](
                        keys=[self.keys.seat(token, role)],
                        args=[self._presence(seat), PRESENCE_TTL],
                        client=pipe,
                    )
                kept = await pipe.execute()
            for ((token, role), seat), ours in zip(batch, kept, strict=True):
                if not ours and self._seats.get((token, role)) is seat:
                    del self._seats[(token, role)]
                    await seat.ws.close(code=CLOSE_REPLACED, message=REPLACED)
