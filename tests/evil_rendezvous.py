"""A malicious rendezvous for tests: a proxy in front of the real one that tampers
with the signaling it relays. The daemons must notice and refuse."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Callable
from typing import Any

import aiohttp
from aiohttp import web
from spake2 import SPAKE2_A, SPAKE2_B

Tamper = Callable[[str, str, dict[str, Any]], dict[str, Any] | None]
"""(token, sender seat, frame) -> the frame to pass on, or None to drop it."""


def flip_sealed(token: str, seat: str, frame: dict[str, Any]) -> dict[str, Any] | None:
    """Change the sealed SDP on its way (as a relay swapping fingerprints would have to)."""
    if frame.get("type") != "sealed":
        return frame
    raw = bytearray(base64.b64decode(frame["box"]))
    raw[-20] ^= 0x01
    return frame | {"box": base64.b64encode(bytes(raw)).decode()}


class OwnPake:
    """Run a PAKE of our own with each side, guessing the secret."""

    def __init__(self, guess: str = "guessguessguess2") -> None:
        self.guess = guess.encode()

    def __call__(self, token: str, seat: str, frame: dict[str, Any]) -> dict[str, Any] | None:
        if frame.get("type") != "pake":
            return frame
        ids = {
            "idA": f"chatorbit/host/{token}".encode(),
            "idB": f"chatorbit/guest/{token}".encode(),
        }
        # To the guest we pretend to be the host, and the other way round.
        ours = SPAKE2_A(self.guess, **ids) if seat == "host" else SPAKE2_B(self.guess, **ids)
        return {"type": "pake", "msg": base64.b64encode(ours.start()).decode()}


def drop_relayed(token: str, seat: str, frame: dict[str, Any]) -> dict[str, Any] | None:
    """Pass on nothing one daemon sends for the other (its own pings still go through):
    the rendezvous sees both seats taken, neither daemon ever hears from the other."""
    return None if frame.get("type") in ("pake", "sealed", "abort") else frame


class Recorder:
    """Passes every frame on, keeping what each seat sent (`sent`) and what the rendezvous
    sent it (`heard`, as text); `inject` puts a frame of the relay's making into a seat's
    socket, after everything passed on before."""

    def __init__(self) -> None:
        self.sent: dict[str, list[dict[str, Any]]] = {"host": [], "guest": []}
        self.heard: dict[str, list[str]] = {"host": [], "guest": []}
        self.sockets: dict[str, web.WebSocketResponse] = {}

    def __call__(self, token: str, seat: str, frame: dict[str, Any]) -> dict[str, Any] | None:
        self.sent[seat].append(frame)
        return frame

    async def inject(self, seat: str, frame: dict[str, Any] | str) -> None:
        text = frame if isinstance(frame, str) else json.dumps(frame)
        await self.sockets[seat].send_str(text)


def evil_app(upstream: str, tamper: Tamper) -> web.Application:
    app = web.Application()
    recorder = tamper if isinstance(tamper, Recorder) else None
    seats: dict[str, str] = {}  # client identity -> seat, learned from join answers

    async def http(request: web.Request) -> web.StreamResponse:
        if request.path.startswith("/api/ws/"):
            return await socket(request)
        async with (
            aiohttp.ClientSession() as client,
            client.request(
                request.method,
                upstream + request.path_qs,
                data=await request.read(),
                headers={"Content-Type": request.headers.get("Content-Type", "application/json")},
            ) as answer,
        ):
            body = await answer.read()
            if request.path == "/api/tokens/join" and answer.status == 200:
                sent = json.loads(await request.read())
                seats[sent["client_identity"]] = json.loads(body)["role"]
            return web.Response(body=body, status=answer.status, content_type="application/json")

    async def socket(request: web.Request) -> web.WebSocketResponse:
        # /api/ws/{token} with the credential in Authorization (or the seed's path form).
        token, _, in_path = request.path.removeprefix("/api/ws/").partition("/")
        credential = request.headers.get("Authorization", "")
        identity = in_path or credential.removeprefix("Bearer ")
        seat = seats.get(identity, "host")
        downstream = web.WebSocketResponse()
        await downstream.prepare(request)
        if recorder is not None:
            recorder.sockets[seat] = downstream
        headers = {"Authorization": credential} if credential else {}
        async with (
            aiohttp.ClientSession() as client,
            client.ws_connect(
                upstream.replace("http", "ws", 1) + request.path, headers=headers
            ) as up,
        ):

            async def to_upstream() -> None:
                async for msg in downstream:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        changed = tamper(token, seat, json.loads(msg.data))
                        if changed is not None:
                            await up.send_str(json.dumps(changed))

            async def to_downstream() -> None:
                async for msg in up:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        if recorder is not None:
                            recorder.heard[seat].append(msg.data)
                        await downstream.send_str(msg.data)
                await downstream.close()

            tasks = [asyncio.create_task(to_upstream()), asyncio.create_task(to_downstream())]
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            for task in tasks:
                task.cancel()
        return downstream

    app.router.add_route("*", "/{tail:.*}", http)
    return app
