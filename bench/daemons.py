"""orbitd daemons driven as their UI drives them: log in, hold the events socket, call the API.

Each daemon is a subprocess with its own XDG data and config directories. Its
events are stamped with `time.perf_counter()` the moment they arrive, so a
latency measured from them does not include how long the event sat queued here.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp

from .procs import BenchError, Server, python_module, running

READY = re.compile(r"orbitd \S+ ready: (http://127\.0\.0\.1:\d+/login\?secret=\S+)")
HTTP_TIMEOUT = aiohttp.ClientTimeout(total=30.0)


@dataclass(frozen=True)
class Event:
    at: float
    """`time.perf_counter()` when it arrived."""
    body: dict[str, Any]

    @property
    def kind(self) -> str:
        return str(self.body.get("type"))

    @property
    def session(self) -> dict[str, Any]:
        session = self.body.get("session")
        return session if isinstance(session, dict) else {}


class SessionFailed(Exception):
    """The daemon reported an error or an end while a phase was awaited."""


class Daemon:
    """A logged-in client of one daemon's local API, with its events socket open."""

    def __init__(self, name: str, server: Server) -> None:
        self.name, self.server = name, server
        self.login_link = server.url
        self.base = server.url.split("/login", 1)[0]
        self.http = aiohttp.ClientSession(
            headers={"Origin": self.base},
            cookie_jar=aiohttp.CookieJar(unsafe=True),
            timeout=HTTP_TIMEOUT,
        )
        self.events: asyncio.Queue[Event] = asyncio.Queue()
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._reader: asyncio.Task[None] | None = None

    async def login(self) -> None:
        async with self.http.get(self.login_link, allow_redirects=False) as response:
            if response.status != 303:
                raise BenchError(f"{self.name}: login answered {response.status}, not 303")

    async def listen(self) -> None:
        """Open `/api/events` and wait for its first event (the state)."""
        self._ws = await self.http.ws_connect(f"{self.base}/api/events")
        self._reader = asyncio.create_task(self._read(self._ws))
        await self.next(lambda e: e.kind == "state", 10.0)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> None:
        async for msg in ws:
            at = time.perf_counter()
            if msg.type is aiohttp.WSMsgType.TEXT:
                self.events.put_nowait(Event(at, msg.json()))

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body) as response:
            return response.status, await response.json(content_type=None)

    async def expect(self, status: int, method: str, path: str, body: Any = None) -> Any:
        got, answer = await self.call(method, path, body)
        if got != status:
            raise BenchError(f"{self.name}: {method} {path} answered {got}: {answer}")
        return answer

    def drain(self) -> list[Event]:
        """The events that arrived and were not read yet."""
        out = []
        while not self.events.empty():
            out.append(self.events.get_nowait())
        return out

    async def next(self, match: Callable[[Event], bool], seconds: float) -> Event:
        """The next event that `match`es; the ones before it are dropped."""
        async with asyncio.timeout(seconds):
            while True:
                event = await self.events.get()
                if match(event):
                    return event

    async def phases(self, token: str, until: str, seconds: float) -> dict[str, float]:
        """Arrival time of each phase of session `token`, up to `until`. SessionFailed if
        it is not reached in `seconds`, or (unless `until` is `ended`) an `error` or a
        `session-ended` event comes first."""
        seen: dict[str, float] = {}
        try:
            async with asyncio.timeout(seconds):
                while until not in seen:
                    event = await self.events.get()
                    if event.kind == "session" and event.session.get("token") == token:
                        seen.setdefault(str(event.session.get("phase")), event.at)
                    elif event.kind in {"error", "session-ended"} and until != "ended":
                        raise SessionFailed(f"{self.name}: {event.body}")
        except TimeoutError:
            raise SessionFailed(
                f"{self.name}: no {until!r} in {seconds:g} s, only {list(seen)}"
            ) from None
        return seen

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._reader
        if self._ws is not None:
            await self._ws.close()
        await self.http.close()


async def both_phases(
    host: Daemon, guest: Daemon, token: str, until: str, seconds: float
) -> tuple[dict[str, float], dict[str, float]]:
    """`phases` on both daemons at once; when one fails the other stops reading too
    (left running, it would take the next session's events)."""
    tasks = [asyncio.ensure_future(side.phases(token, until, seconds)) for side in (host, guest)]
    try:
        first, second = await asyncio.gather(*tasks)
    finally:
        for task in tasks:
            task.cancel()
    return first, second


@contextlib.asynccontextmanager
async def daemon(
    name: str, rendezvous: str, home: Path, log_path: Path, log_level: str, *flags: str
) -> AsyncIterator[Daemon]:
    """Start `orbitd --profile name` (plus `flags`) on a free port with 127.0.0.1 as its
    only ICE candidate, log in and open its events socket; stop it all after."""
    argv = python_module(
        "orbitd",
        *("--port", "0", "--profile", name, "--rendezvous", rendezvous),
        *("--ice-loopback", "--no-lan-enabled", "--log-level", log_level, *flags),
    )
    env = {"XDG_DATA_HOME": str(home / "data"), "XDG_CONFIG_HOME": str(home / "config")}
    async with running(name, argv, log_path, ready=READY, env=env) as server:
        client = Daemon(name, server)
        try:
            await client.login()
            await client.listen()
            yield client
        finally:
            await client.close()
