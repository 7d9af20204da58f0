"""The relay channel from a daemon's side: what it refuses, and that a refused frame from
the rendezvous is dropped without stopping the signaling socket."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer

from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame, ProtocolError
from orbitd.rendezvous_client import RendezvousClient

STATUS: dict[str, Any] = {
    "token": "ABCD1234WXYZ",
    "state": "ACTIVE",
    "valid_until": None,
    "max_message_length": 2000,
    "participants": {"host": {"id": "h", "joined_at": None, "connected": True}, "guest": None},
    "timer": {"started_at": None, "ttl_minutes": 60, "ends_at": None, "remaining_seconds": 59.5},
    "ended_at": None,
    "end_reason": None,
}


def test_a_status_round_trips_with_its_nulls() -> None:
    frame = relay.SessionStatus(STATUS)
    assert json.loads(frame.encode()) == {"type": "session-status", "status": STATUS}
    assert relay.CHANNEL.parse(frame.encode()) == frame


@pytest.mark.parametrize(
    "change",
    [
        {"state": 5},
        {"max_message_length": "2000"},
        {"max_message_length": True},
        {"participants": []},
        {"timer": "soon"},
        {"timer": {"remaining_seconds": "59"}},
        {"timer": {"ttl_minutes": 1.5}},
    ],
)
def test_a_status_with_a_mistyped_member_the_daemon_reads_is_refused(
    change: dict[str, Any],
) -> None:
    with pytest.raises(ProtocolError) as refused:
        relay.CHANNEL.parse({"type": "session-status", "status": STATUS | change})
    assert refused.value.frame_type == "session-status"


async def test_the_signaling_socket_drops_what_it_refuses_and_goes_on(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent = [
        "[" * 20_000,
        "not json",
        '{"type": "pake", "msg": "\\ud800"}',
        json.dumps({"type": "session-status", "status": STATUS | {"timer": "soon"}}),
        json.dumps({"type": "sealed", "box": 5}),
        json.dumps({"type": "no-such-frame"}),
        relay.Pake("AAAA").encode(),
    ]

    async def socket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        for text in sent:
            await ws.send_str(text)
        await ws.receive()  # until the client closes
        return ws

    app = web.Application()
    app.router.add_get("/api/ws/{token}", socket)
    got: list[Frame] = []
    arrived = asyncio.Event()

    def on_frame(frame: Frame) -> None:
        got.append(frame)
        arrived.set()

    async with TestServer(app, host="127.0.0.1") as server:
        client = RendezvousClient(str(server.make_url("")))
        signaling = client.signaling("ABCD1234WXYZ", "someone", on_frame)
        signaling.start()
        async with asyncio.timeout(5):
            await arrived.wait()
        await signaling.close()
        await client.close()
    assert got == [relay.Pake("AAAA")]
    refusals = [r for r in caplog.records if r.getMessage() == "protocol_error"]
    assert len(refusals) == len(sent) - 1
