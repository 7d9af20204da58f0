"""Talking to the rendezvous: token issue, seats, end, reports, and the signaling socket."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import ssl
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from orbitcore.errors import Refusal
from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame, ProtocolError

log = logging.getLogger("orbitd.rendezvous")
TIMEOUT = aiohttp.ClientTimeout(total=10)


class RendezvousError(Refusal):
    """The rendezvous refused (its status and code), or could not be reached (503)."""


def _refusal(status: int, payload: object) -> RendezvousError:
    """The rendezvous's refusal as ours: a 4xx with its code and reason passes through;
    its own failure (5xx) or an answer without them is a 502 here, never our 500."""
    said = payload if isinstance(payload, dict) else {}
    code, reason = said.get("error"), said.get("reason")
    if status < 500 and isinstance(code, str) and code.isidentifier() and len(code) <= 64:
        return RendezvousError(status, code, reason if isinstance(reason, str) else "")
    return RendezvousError(
        502,
        "rendezvous_error",
        f"The rendezvous failed to answer (HTTP {status}); try again in a moment.",
    )


def trust(ca_file: str) -> ssl.SSLContext | bool:
    """What verifies the rendezvous's certificate: the system's CAs, plus `ca_file`'s
    (the `rendezvous_ca_file` setting) when set."""
    if not ca_file:
        return True  # aiohttp's default: the system's trust
    return ssl.create_default_context(cafile=ca_file)


def _untrusted(base_url: str, exc: aiohttp.ClientConnectorCertificateError) -> RendezvousError:
    """An https rendezvous whose certificate failed: what to do about it, not a traceback."""
    why = getattr(exc.certificate_error, "verify_message", "") or "its certificate failed"
    return RendezvousError(
        502,
        "rendezvous_untrusted",
        f"The rendezvous at {base_url} has a certificate this computer does not trust "
        f"({why}). If its operator uses a private certificate authority, set "
        "rendezvous_ca_file to that authority's PEM file.",
    )


class RendezvousClient:
    def __init__(self, base_url: str, ca_file: str = "") -> None:
        self.base_url = base_url.rstrip("/")
        self._http = aiohttp.ClientSession(
            timeout=TIMEOUT, connector=aiohttp.TCPConnector(ssl=trust(ca_file))
        )

    async def _call(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        try:
            async with self._http.request(method, self.base_url + path, json=body) as response:
                try:
                    payload = await response.json(content_type=None)
                except ValueError:
                    payload = None
                if response.status >= 400:
                    raise _refusal(response.status, payload)
                if not isinstance(payload, dict):
                    raise RendezvousError(
                        502, "rendezvous_error", "The rendezvous answered something not JSON."
                    )
                return payload
        except aiohttp.ClientConnectorCertificateError as exc:
            raise _untrusted(self.base_url, exc) from exc
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise RendezvousError(
                503,
                "rendezvous_unreachable",
                f"The rendezvous at {self.base_url} cannot be reached.",
            ) from exc

    async def issue(
        self, validity_option: str, ttl_minutes: int, max_message_length: int
    ) -> dict[str, Any]:
        body = {
            "validity_option": validity_option,
            "ttl_minutes": ttl_minutes,
            "max_message_length": max_message_length,
        }
        result: dict[str, Any] = await self._call("POST", "/api/tokens/issue", body)
        return result

    async def join(self, token: str, identity: str) -> dict[str, Any]:
        body = {"token": token, "client_identity": identity}
        result: dict[str, Any] = await self._call("POST", "/api/tokens/join", body)
        return result

    async def end(self, token: str, identity: str) -> None:
        await self._call("POST", f"/api/session/{token}/end", {"client_identity": identity})

    async def report(self, body: dict[str, Any]) -> dict[str, Any]:
        result: dict[str, Any] = await self._call("POST", "/api/reports", body)
        return result

    def signaling(
        self, token: str, identity: str, on_frame: Callable[[Frame], None]
    ) -> SignalingSocket:
        """The seat's socket: the seat's credential goes in a header, never in the URL
        (which proxies log)."""
        url = f"{self.base_url}/api/ws/{token}".replace("http", "ws", 1)
        return SignalingSocket(self._http, url, on_frame, {"Authorization": f"Bearer {identity}"})

    async def close(self) -> None:
        await self._http.close()


# Close codes after which reconnecting is pointless.
FINAL_CLOSE_CODES = {1000, 4001, 4002, 4003, 4004}
GOING_AWAY = 1001  # the rendezvous instance shuts down: another one takes the socket
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 30.0


def backoff(previous: float | None) -> float:
    """The wait before the next try: 1 s, doubling up to 30 s, each with up to +-25 %
    jitter (many daemons that lost one rendezvous do not all come back at once)."""
    base = BACKOFF_FIRST if previous is None else min(previous * 2, BACKOFF_MAX)
    return base * (0.75 + 0.5 * random.random())  # noqa: S311 (jitter, not a secret)


@dataclass
class Redial:
    """When to dial the signaling socket again (no I/O; `now` is monotonic seconds).

    A rendezvous instance that shuts down says so (close 1001) after handing its
    sockets over: the first try after that is at once (the load balancer sends it to
    another instance). Any other drop, or a 1001 again within BACKOFF_MAX of the last
    immediate try (an instance that keeps going away), waits `backoff`."""

    previous: float | None = None
    """The last backoff wait; None once a socket was up."""
    immediate_at: float | None = None

    def connected(self) -> None:
        self.previous = None

    def wait(self, close_code: int | None, now: float) -> float:
        if close_code == GOING_AWAY and (
            self.immediate_at is None or now - self.immediate_at >= BACKOFF_MAX
        ):
            self.immediate_at = now
            return 0.0
        self.previous = backoff(self.previous)
        return self.previous


class SignalingSocket:
    """The seat's WebSocket, kept open until closed or told the session is over: after a
    drop it is dialled again in the background (`Redial`: at once after a close 1001,
    else `backoff`, 1 s to 30 s with jitter), so a later reconnect of the peer
    connection can signal through it.

    Frames sent while it is down wait in a short queue and go out on reconnect. Frames
    received are read by the protocol's relay channel; one it refuses is logged as
    `protocol_error` and dropped.
    """

    def __init__(
        self,
        http: aiohttp.ClientSession,
        url: str,
        on_frame: Callable[[Frame], None],
        headers: dict[str, str] | None = None,
    ) -> None:
        self._http, self._url, self._on_frame = http, url, on_frame
        self._headers = headers or {}
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._outbox: list[str] = []
        self._task: asyncio.Task[None] | None = None
        self.connected = asyncio.Event()
        self.final_code: int | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        redial = Redial()
        loop = asyncio.get_running_loop()
        while self.final_code is None:
            code: int | None = None
            try:
                async with self._http.ws_connect(
                    self._url, heartbeat=20, headers=self._headers
                ) as ws:
                    self.connected.set()
                    redial.connected()
                    # What waited goes out first, in order: frames sent meanwhile join the
                    # queue (sealed boxes are numbered; the peer drops one that comes late).
                    while self._outbox:
                        await ws.send_str(self._outbox.pop(0))
                    self._ws = ws
                    code = await self._read(ws)
                    if code in FINAL_CLOSE_CODES:
                        self.final_code = code
            except (aiohttp.ClientError, TimeoutError, ConnectionError) as exc:
                log.info("signaling socket down", extra={"fields": {"error": type(exc).__name__}})
            finally:
                self._ws = None
                self.connected.clear()
            if self.final_code is None:
                wait = redial.wait(code, loop.time())
                log.info(
                    "signaling socket redial",
                    extra={"fields": {"close_code": code, "wait": round(wait, 2)}},
                )
                await asyncio.sleep(wait)

    async def _read(self, ws: aiohttp.ClientWebSocketResponse) -> int | None:
        """Deliver what comes until the socket closes: the close code the rendezvous sent.

        Not `ws.close_code` alone: when the other end's TCP connection is gone before our
        reply to its close frame is written (a proxy in between, closing as soon as the
        instance does), aiohttp reports 1006 even though the frame said 1001."""
        while True:
            msg = await ws.receive()
            if msg.type is aiohttp.WSMsgType.TEXT:
                self._deliver(msg.data)
            elif msg.type is aiohttp.WSMsgType.CLOSE:
                return int(msg.data)
            elif msg.type in (aiohttp.WSMsgType.CLOSING, aiohttp.WSMsgType.CLOSED):
                return ws.close_code
            # ERROR (the socket broke; CLOSED comes next), BINARY and the rest: nothing

    def _deliver(self, text: str) -> None:
        try:
            frame = relay.CHANNEL.parse(text)
        except ProtocolError as exc:
            log.warning(
                "protocol_error",
                extra={"fields": {"channel": "relay", "type": relay.CHANNEL.logged_type(exc)}},
            )
            return
        self._on_frame(frame)

    async def send(self, frame: Frame) -> None:
        text = frame.encode()
        ws = self._ws
        if ws is None or ws.closed:
            self._outbox.append(text)
            return
        try:
            await ws.send_str(text)
        except ConnectionError:
            self._outbox.append(text)

    async def close(self) -> None:
        self.final_code = self.final_code or 1000
        if self._ws is not None:
            await self._ws.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
