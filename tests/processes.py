"""Real processes for end-to-end tests: the rendezvous and orbitd daemons on 127.0.0.1.

Each process writes its logs to a file under the test's tmp_path, so a test can
read them (and scan them for secrets) afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp

PYTHON = sys.executable
EVENT_WAIT = 15.0  # seconds; generous for a loaded CI machine


@dataclass
class Process:
    proc: asyncio.subprocess.Process
    ready_line: str
    log_path: Path

    async def stop(self, sig: int = signal.SIGTERM) -> int:
        if self.proc.returncode is None:
            self.proc.send_signal(sig)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        assert self.proc.returncode is not None
        return self.proc.returncode


async def spawn(args: list[str], log_path: Path, env: dict[str, str] | None = None) -> Process:
    log_file = log_path.open("wb")
    proc = await asyncio.create_subprocess_exec(
        PYTHON, *args, stdout=asyncio.subprocess.PIPE, stderr=log_file, env=env
    )
    log_file.close()
    assert proc.stdout is not None
    try:
        line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode().strip()
    except TimeoutError:
        proc.kill()
        raise
    if not line:
        await proc.wait()
        raise RuntimeError(f"{args} exited early; its log is {log_path}")
    return Process(proc, line, log_path)


async def start_rendezvous(tmp_path: Path, *flags: str) -> tuple[Process, str]:
    process = await spawn(
        ["-m", "rendezvous", "--port", "0", "--database", ":memory:", *flags],
        tmp_path / "rendezvous.log",
    )
    return process, process.ready_line.split()[-1]


@dataclass
class Daemon:
    """An orbitd process and a logged-in client of its local API."""

    name: str
    process: Process
    base: str
    link: str
    """The one-time login link (already spent when the API client logged in with it)."""
    http: aiohttp.ClientSession
    events: asyncio.Queue[dict[str, Any]] = field(default_factory=asyncio.Queue)
    _reader: asyncio.Task[None] | None = None
    _ws: aiohttp.ClientWebSocketResponse | None = None

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        async with self.http.request(method, self.base + path, json=body) as response:
            return response.status, await response.json()

    async def listen(self) -> None:
        self._ws = await self.http.ws_connect(self.base + "/api/events")

        async def read() -> None:
            assert self._ws is not None
            async for msg in self._ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    self.events.put_nowait(msg.json())

        self._reader = asyncio.create_task(read())

    async def event(self, kind: str, **match: Any) -> dict[str, Any]:
        """The next event of `kind` whose fields include `match` (others are skipped)."""
        async with asyncio.timeout(EVENT_WAIT):
            while True:
                event = await self.events.get()
                if event.get("type") == kind and all(event.get(k) == v for k, v in match.items()):
                    return event

    async def phase(self, phase: str) -> dict[str, Any]:
        async with asyncio.timeout(EVENT_WAIT):
            while True:
                event = await self.event("session")
                session: dict[str, Any] = event["session"]
                if session["phase"] == phase:
                    return session

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
        if self._ws is not None:
            await self._ws.close()
        await self.http.close()
        await self.process.stop()


async def start_daemon(
    tmp_path: Path,
    name: str,
    rendezvous: str,
    *flags: str,
    api_login: bool = True,
    environ: dict[str, str] | None = None,
    module: str = "orbitd",
) -> Daemon:
    """Start orbitd (`environ` adds to its environment; `module` runs another entry point
    with orbitd's flags, a test's hostile daemon); with api_login the test's HTTP client
    spends the login link and listens to events, else the link is left for a browser."""
    home = tmp_path / name
    env = os.environ | {
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
        **(environ or {}),
    }
    process = await spawn(
        [
            "-m",
            module,
            "--port",
            "0",
            "--profile",
            name,
            "--rendezvous",
            rendezvous,
            "--ice-loopback",
            "--no-lan-enabled",  # tests keep their traffic on loopback (LAN tests use netns)
            "--log-level",
            "debug",
            *flags,
        ],
        tmp_path / f"{name}.log",
        env,
    )
    link = process.ready_line.split()[-1]
    base = link.split("/login")[0]
    http = aiohttp.ClientSession(
        headers={"Origin": base}, cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    daemon = Daemon(name, process, base, link, http)
    if api_login:
        async with http.get(link, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        await daemon.listen()
    return daemon
