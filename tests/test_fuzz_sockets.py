"""Fuzzing the sockets (issue #11): the rendezvous WebSocket, the daemon's UI event socket,
the LAN listener's HTTP bodies and its session socket get thousands of seeded hostile
inputs (tests/fuzz.py; `FUZZ_SEED` repeats a run). Each is answered with an `error` frame,
a 4xx JSON body or a documented close code, never a 5xx or a handler crash, and the
service keeps serving the well-behaved."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

import aiohttp
import pytest
from aiohttp import WSMsgType, web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orbitcore.protocol import lan, peer, relay
from orbitcore.protocol.frames import Frame, ProtocolError
from orbitd.identity import Identity
from orbitd.lan import hello as hello_module
from orbitd.lan import invitee as invitee_module
from orbitd.lan import listener, make_lan_app
from orbitd.lan.hello import HELLO_STATE, HelloState, serve_hello
from orbitd.lan.invitee import Invitee
from orbitd.lan.link import FRAMES_MAX, LanLink
from rendezvous.relay import ACCEPTED
from tests.conftest import MakeRendezvous, active_session
from tests.fuzz import Fuzz
from tests.processes import start_daemon, start_rendezvous

HOST, GUEST = "host-identity", "guest-identity"
RELAY_ERRORS = {
    "invalid_json",
    "invalid_message",
    "unknown_type",
    "rate_limited",
    "peer_queue_full",
    "ice_unavailable",
}
WS = aiohttp.ClientWebSocketResponse
ENDINGS: list[tuple[bytes, WSMsgType]] = [  # frames that end a socket, and their close codes
    (b"\x00\xff" * 10, WSMsgType.BINARY),  # 1003
    (Fuzz().huge(70_000).encode(), WSMsgType.TEXT),  # 1009, over ws_max_message_bytes
    ('"\ud800 \xff"'.encode("utf-8", "surrogatepass"), WSMsgType.TEXT),  # 1007, not UTF-8
]
CLOSES = {1003, 1007, 1009}
CRASHES = ("Traceback", "Task exception", "Error handling request", "Unhandled exception")


async def answers_until_pong(
    ws: WS, seed: int, sent: str
) -> tuple[list[dict[str, Any]], int | None]:
    """What the server sent before its `pong` (status pushes left out), or the close
    code when it closed the socket instead."""
    answers: list[dict[str, Any]] = []
    while True:
        msg = await asyncio.wait_for(ws.receive(), 5)
        if msg.type in (WSMsgType.CLOSE, WSMsgType.CLOSING, WSMsgType.CLOSED):
            return answers, ws.close_code
        assert msg.type is WSMsgType.TEXT, (seed, sent[:120], msg)
        frame = json.loads(msg.data)
        if frame["type"] == "pong":
            return answers, None
        if frame["type"] != "session-status":
            answers.append(frame)


def relayed(text: str) -> Frame | None:
    """The frame the rendezvous should take from `text` (None: it must refuse it)."""
    try:
        frame = relay.CHANNEL.parse(text)
    except ProtocolError:
        return None
    return frame if frame.TYPE in ACCEPTED else None


async def test_the_rendezvous_socket_answers_every_hostile_frame_and_keeps_relaying(
    make_rendezvous: MakeRendezvous, caplog: pytest.LogCaptureFixture
) -> None:
    rv = await make_rendezvous(
        ws_messages_per_second=100000.0, ws_message_burst=100000, held_messages_max=64
    )
    fuzz = Fuzz()
    token, other = await active_session(rv), await active_session(rv)
    host = await rv.ws_connect(f"/api/ws/{token}/{HOST}")
    guest = await rv.ws_connect(f"/api/ws/{token}/{GUEST}")
    other_host = await rv.ws_connect(f"/api/ws/{other}/{HOST}")
    other_guest = await rv.ws_connect(f"/api/ws/{other}/{GUEST}")
    got_by_guest: asyncio.Queue[str] = asyncio.Queue()

    async def drain() -> None:  # read all along, so that relaying never waits on us
        async for msg in guest:
            if msg.type is WSMsgType.TEXT and json.loads(msg.data)["type"] != "session-status":
                got_by_guest.put_nowait(msg.data)

    draining = asyncio.create_task(drain())
    forwarded: list[str] = []
    closes: dict[int, int] = {}
    inputs = 2500
    for i in range(inputs):
        if i % 250 == 249:  # frames that end the socket: binary, too big, not UTF-8
            ending = ENDINGS[(i // 250) % len(ENDINGS)]
            await host.send_frame(*ending)
            answers, code = await answers_until_pong(host, fuzz.seed, "end")
            assert code in CLOSES and answers == [], (fuzz.seed, i, code)
            closes[code] = closes.get(code, 0) + 1
            host = await rv.ws_connect(f"/api/ws/{token}/{HOST}")
            continue
        text = fuzz.text(relay.CHANNEL)
        await host.send_str(text)
        await host.send_str('{"type": "ping"}')
        answers, code = await answers_until_pong(host, fuzz.seed, text)
        assert code is None, (fuzz.seed, i, text[:120], code)
        frame = relayed(text)
        if frame is None:
            assert len(answers) == 1, (fuzz.seed, text[:120], answers)
            assert answers[0]["type"] == "error" and answers[0]["code"] in RELAY_ERRORS
        elif isinstance(frame, relay.IceRefresh):
            assert [a["type"] for a in answers] in (["ice-servers"], ["error"])
        elif isinstance(frame, relay.Ping):  # its pong came first; ours is next
            assert answers == [] and (await answers_until_pong(host, fuzz.seed, text)) == ([], None)
        else:
            assert answers == [], (fuzz.seed, text[:120], answers)
            forwarded.append(text)
    assert closes == {1003: 4, 1007: 3, 1009: 3}
    # The other socket of the session got every relayed frame, exactly as sent ...
    await guest.send_str('{"type": "ping"}')
    relayed_to_guest = []
    async with asyncio.timeout(5):
        while json.loads(text := await got_by_guest.get())["type"] != "pong":
            relayed_to_guest.append(text)
    assert relayed_to_guest == forwarded and len(forwarded) > 50
    # ... and the session and another one still relay.
    pake = relay.Pake("bWVzc2FnZQ==").encode()
    await host.send_str(pake)
    await other_host.send_str(pake)
    async with asyncio.timeout(5):
        assert await got_by_guest.get() == pake
        while (msg := await other_guest.receive()).type is WSMsgType.TEXT:
            if msg.data == pake:
                break
    draining.cancel()
    for ws in (host, guest, other_host, other_guest):
        await ws.close()
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_ui_event_socket_ignores_hostile_frames_and_stays_up(tmp_path: Path) -> None:
    rendezvous, url = await start_rendezvous(tmp_path)
    alice = await start_daemon(tmp_path, "alice", url)
    fuzz = Fuzz()
    try:
        ws = await alice.http.ws_connect(alice.base + "/api/events")
        inputs, reconnects = 0, 0
        while inputs < 1500:
            for _ in range(25):
                inputs += 1
                roll = fuzz.rng.random()
                if roll < 0.05:
                    await ws.send_bytes(fuzz.string().encode("utf-8", "surrogatepass"))
                elif roll < 0.1:
                    await ws.send_str(fuzz.rng.choice(("PING", "ping ", " ping", "pong", "")))
                else:
                    channel = fuzz.rng.choice((relay.CHANNEL, peer.CHANNEL, lan.CHANNEL))
                    await ws.send_str(fuzz.text(channel)[:1000])  # the cap comes below
            if inputs % 250 == 0:  # over the socket's 4096 bytes (1009), or not UTF-8 (1007)
                big = inputs % 500 == 0
                await ws.send_frame(*(("x" * 5000).encode(), WSMsgType.TEXT) if big else ENDINGS[2])
                async with asyncio.timeout(5):
                    while (await ws.receive()).type is WSMsgType.TEXT:
                        pass
                assert ws.close_code == (1009 if big else 1007)
                reconnects += 1
                ws = await alice.http.ws_connect(alice.base + "/api/events")
                continue
            await ws.send_str("ping")
            async with asyncio.timeout(5):
                while (msg := await ws.receive()).type is WSMsgType.TEXT:
                    if json.loads(msg.data) == {"type": "pong"}:
                        break
            assert msg.type is WSMsgType.TEXT, (fuzz.seed, inputs, msg)
        assert reconnects == 6
        status, state = await alice.call("GET", "/api/state")
        assert status == 200 and state["session"] is None
        await ws.close()
    finally:
        await alice.close()
        await rendezvous.stop()
    log = alice.process.log_path.read_text()
    assert not [c for c in CRASHES if c in log]


# --- the LAN listener, in process on 127.0.0.1 -------------------------------------------


def new_identity() -> Identity:
    return Identity.from_private_key(Ed25519PrivateKey.generate())


class NoManager:
    busy = False


LanClient = TestClient[web.Request, web.Application]


@pytest.fixture
async def lan_listener(
    aiohttp_client: Callable[..., Awaitable[LanClient]], monkeypatch: pytest.MonkeyPatch
) -> tuple[LanClient, Invitee]:
    for name in ("INVITES_PER_MINUTE", "NONCES_PER_MINUTE"):
        monkeypatch.setattr(invitee_module, name, 10**6)
    monkeypatch.setattr(hello_module, "HELLOS_PER_MINUTE", 10**6)
    invitee = Invitee(new_identity(), lambda: None, lambda: NoManager(), lambda event: None)  # type: ignore[arg-type, return-value]
    app = make_lan_app()
    app[HELLO_STATE] = HelloState(new_identity(), "fuzz")
    app.router.add_get("/lan/hello", serve_hello, allow_head=False)
    listener.add_routes(app, invitee)
    return await aiohttp_client(app), invitee


async def test_the_lan_listener_answers_hostile_bodies_with_4xx_json(
    lan_listener: tuple[LanClient, Invitee], caplog: pytest.LogCaptureFixture
) -> None:
    client, _ = lan_listener
    fuzz = Fuzz()
    statuses: dict[int, int] = {}
    for i in range(1750):
        roll = i % 7
        if roll == 6:  # the session socket of a request that is not there
            request_id = fuzz.rng.choice(("ABCDEFGHJKLM", fuzz.matching(None), "A" * 300))
            with pytest.raises(aiohttp.WSServerHandshakeError) as refused:
                await client.ws_connect(
                    "/lan/session/" + quote(request_id.encode("utf-8", "surrogatepass"), safe="")
                )
            assert refused.value.status == 404, (fuzz.seed, i, refused.value.status)
            continue
        if roll in (0, 1, 2):
            body = fuzz.text(lan.CHANNEL, [lan.CHANNEL.frames["invite"]])
            response = await client.post("/lan/invite", data=body.encode("utf-8", "surrogatepass"))
        elif roll == 3:
            body = fuzz.text(lan.CHANNEL, [lan.CHANNEL.frames["withdraw"]])
            path = "/lan/invite/" + fuzz.rng.choice(("ABCDEFGHJKLM", "x", "%00", "A" * 300))
            response = await client.delete(path, data=body.encode("utf-8", "surrogatepass"))
        elif roll == 4:
            params = {"since": fuzz.string(), "wait": str(fuzz.value())[:30]}
            path = "/lan/invite/" + fuzz.rng.choice(("ABCDEFGHJKLM", "nonce2", "..", "A" * 300))
            response = await client.get(path, params=params)
        else:
            nonce = fuzz.rng.choice((fuzz.string(), "n" * 16, "n" * 129))
            response = await client.get("/lan/hello", params={"nonce": nonce})
        async with response:
            assert response.status < 500, (fuzz.seed, i, response.status)
            answer = await response.json()
            if response.status >= 400:
                assert isinstance(answer["error"], str) and answer["reason"], answer
            statuses[response.status] = statuses.get(response.status, 0) + 1
    assert set(statuses) <= {200, 400, 403, 404, 409, 413, 422, 429}, statuses
    assert statuses.get(422, 0) > 100 and statuses.get(400, 0) > 50, statuses
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


async def test_the_lan_session_socket_drops_hostile_frames(
    lan_listener: tuple[LanClient, Invitee],
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An accepted request's socket (the link taken as the listener takes it) gets
    hostile frames: only handshake frames reach the session, the rest are dropped, and
    after `FRAMES_MAX` unpaced frames the socket is closed normally."""
    client, invitee = lan_listener
    taken: list[Frame] = []
    links: list[LanLink] = []

    def socket_link(request_id: str, address: str) -> LanLink:
        link = LanLink(request_id).signaling(request_id, "guest", taken.append)
        link.claim()
        links.append(link)
        return link

    monkeypatch.setattr(invitee, "socket_link", socket_link)
    fuzz = Fuzz()
    expected: list[Frame] = []
    for n in range(40):
        ws = await client.ws_connect("/lan/session/ABCDEFGHJKLM")
        await ws.send_bytes(b"\x00\xff")  # binary: ignored, not counted
        for _ in range(FRAMES_MAX):
            text = fuzz.text(relay.CHANNEL)
            await ws.send_str(text)
            try:
                frame = relay.CHANNEL.parse(text)
            except ProtocolError:
                continue
            if isinstance(frame, relay.HANDSHAKE):
                expected.append(frame)
        if n % 10 == 9:  # text that is not UTF-8 closes the socket (1007)
            await ws.send_frame(*ENDINGS[2])
            code = 1007
        else:  # beyond FRAMES_MAX: one frame is taken (paced), the next one at once closes
            await ws.send_str(relay.Pake("bWVzc2FnZQ==").encode())
            await ws.send_str(relay.Pake("bWVzc2FnZQ==").encode())
            expected.append(relay.Pake("bWVzc2FnZQ=="))
            code = 1000
        async with asyncio.timeout(5):
            assert (await ws.receive()).type is WSMsgType.CLOSE
        assert ws.close_code == code
    for link in links:
        await link.close()
    assert taken == expected and len(expected) > 40
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
