"""orbitd and an https:// rendezvous: `rendezvous_ca_file` adds a CA to the system's trust
for its HTTP and WebSocket connections; without it a private CA's certificate is a clear
`rendezvous_untrusted` refusal. And after a close 1001 (the instance going away) the
signaling socket is dialled again at once, not after the backoff."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame
from orbitd import rendezvous_client
from orbitd.rendezvous_client import Redial, RendezvousClient, RendezvousError
from orbitd.settings import SettingsError, load_config
from tests.tls import Pki, https_server, make_pki


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def fake_rendezvous(opened: asyncio.Queue[int]) -> web.Application:
    """Answers a token issue, and signaling sockets: the first is closed with 1001."""

    async def issue(request: web.Request) -> web.Response:
        return web.json_response({"token": "ABCD1234WXYZ"})

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        opened.put_nowait(opened.qsize())
        if opened.qsize() == 1:
            await ws.close(code=1001, message=b"Server shutting down")
            return ws
        await ws.send_str(relay.Pake("AAAA").encode())
        await ws.receive()  # until the client closes
        return ws

    app = web.Application()
    app.router.add_post("/api/tokens/issue", issue)
    app.router.add_get("/api/ws/{token}", socket)
    return app


async def test_a_private_ca_is_trusted_only_through_the_setting(pki: Pki) -> None:
    opened: asyncio.Queue[int] = asyncio.Queue()
    async with https_server(fake_rendezvous(opened), pki) as url:
        untrusting = RendezvousClient(url)
        with pytest.raises(RendezvousError) as refused:
            await untrusting.issue("immediate", 60, 2000)
        await untrusting.close()
        assert (refused.value.status, refused.value.code) == (502, "rendezvous_untrusted")
        assert "rendezvous_ca_file" in refused.value.reason
        assert "certificate" in refused.value.reason

        trusting = RendezvousClient(url, str(pki.ca_file))
        assert await trusting.issue("immediate", 60, 2000) == {"token": "ABCD1234WXYZ"}
        got: list[Frame] = []
        arrived = asyncio.Event()

        def on_frame(frame: Frame) -> None:
            got.append(frame)
            arrived.set()

        signaling = trusting.signaling("ABCD1234WXYZ", "someone", on_frame)
        signaling.start()
        async with asyncio.timeout(10):
            await arrived.wait()  # over wss://, trusting the same CA
        await signaling.close()
        await trusting.close()
    assert got == [relay.Pake("AAAA")]


async def test_after_a_close_1001_the_socket_is_dialled_again_at_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # A backoff would wait a minute: the second socket opening at all shows there was none.
    monkeypatch.setattr(rendezvous_client, "BACKOFF_FIRST", 60.0)
    opened: asyncio.Queue[int] = asyncio.Queue()
    async with TestServer(fake_rendezvous(opened), host="127.0.0.1") as server:
        client = RendezvousClient(str(server.make_url("")))
        arrived = asyncio.Event()
        signaling = client.signaling("ABCD1234WXYZ", "someone", lambda _f: arrived.set())
        signaling.start()
        async with asyncio.timeout(10):
            await arrived.wait()
        assert opened.qsize() == 2
        await signaling.close()
        await client.close()


def test_redial_is_immediate_once_after_going_away_else_backs_off() -> None:
    redial = Redial()
    waits = [
        redial.wait(1001, now=100.0),  # the instance went away: at once
        redial.wait(None, now=100.1),  # the next try failed too: backoff
        redial.wait(1001, now=101.0),  # going away again so soon: backoff, doubled
    ]
    redial.connected()
    waits.append(redial.wait(1006, now=200.0))  # a drop without a close: backoff from 1 s
    waits.append(redial.wait(1001, now=200.0))  # a later going away: at once again
    assert waits[0] == 0.0 and waits[4] == 0.0
    assert 0.75 <= waits[1] <= 1.25 and 1.5 * 0.75 <= waits[2] <= 2.5 * 1.25
    assert 0.75 <= waits[3] <= 1.25


def test_the_ca_file_setting_names_a_pem_file(tmp_path: Path, pki: Pki) -> None:
    config = load_config(environ={"ORBIT_RENDEZVOUS_CA_FILE": str(pki.ca_file)})
    assert config.rendezvous_ca_file == str(pki.ca_file)
    with pytest.raises(SettingsError, match=r"rendezvous_ca_file: .* does not exist"):
        load_config(overrides={"rendezvous_ca_file": str(tmp_path / "missing.pem")}, environ={})
    garbage = tmp_path / "garbage.pem"
    garbage.write_text("not a certificate\n")
    with pytest.raises(SettingsError, match=r"rendezvous_ca_file: .* not a PEM file"):
        load_config(overrides={"rendezvous_ca_file": str(garbage)}, environ={})
