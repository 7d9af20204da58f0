"""The signaling socket: close codes, status pushes, relay, held messages, bad frames."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from aiohttp import ClientWebSocketResponse, WSMsgType

from tests.conftest import (
    FakeClock,
    MakeRendezvous,
    RendezvousClient,
    active_session,
    issue,
    join,
    service,
)

HOST, GUEST = "host-identity", "guest-identity"


async def next_json(ws: ClientWebSocketResponse) -> dict[str, Any]:
    msg = await asyncio.wait_for(ws.receive(), 2.0)
    assert msg.type is WSMsgType.TEXT, (msg.type, msg.data, ws.close_code)
    data: dict[str, Any] = json.loads(msg.data)
    return data


async def next_of_type(ws: ClientWebSocketResponse, kind: str) -> dict[str, Any]:
    while True:
        frame = await next_json(ws)
        if frame["type"] == kind:
            return frame


@asynccontextmanager
async def seated(
    token: str, host_on: RendezvousClient, guest_on: RendezvousClient | None = None
) -> AsyncIterator[tuple[ClientWebSocketResponse, ClientWebSocketResponse]]:
    """Both seats' sockets, the host's on `host_on` and the guest's on `guest_on` (the same
    instance by default), each past its first status push."""
    async with (
        host_on.ws_connect(f"/api/ws/{token}/{HOST}") as host,
        (guest_on or host_on).ws_connect(f"/api/ws/{token}/{GUEST}") as guest,
    ):
        await next_of_type(host, "session-status")
        await next_of_type(guest, "session-status")
        yield host, guest


async def closed_with(ws: ClientWebSocketResponse) -> int | None:
    """The code of the close frame the server sent (skipping any frames before it)."""
    while True:
        msg = await asyncio.wait_for(ws.receive(), 2.0)
        if msg.type is WSMsgType.CLOSE:
            return int(msg.data)
        if msg.type in (WSMsgType.CLOSED, WSMsgType.CLOSING, WSMsgType.ERROR):
            return ws.close_code


async def test_refusals_have_their_close_codes(rv: RendezvousClient) -> None:
    async with rv.ws_connect("/api/ws/ZZZZZZZZZZZZ/someone") as ws:
        assert await closed_with(ws) == 4004
    token = await active_session(rv)
    async with rv.ws_connect(f"/api/ws/{token}/stranger") as ws:
        assert await closed_with(ws) == 4001
    await rv.post(f"/api/session/{token}/end", json={"client_identity": HOST})
    async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as ws:
        assert await closed_with(ws) == 4003


async def test_status_on_connect_and_pushed_to_both_on_every_change(rv: RendezvousClient) -> None:
    token = await issue(rv)
    await join(rv, token, HOST)
    async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        first = await next_json(host)
        assert first["type"] == "session-status"
        assert first["status"]["state"] == "HOST_RESERVED"
        assert first["status"]["participants"]["host"]["connected"] is True

        await join(rv, token, GUEST)
        pushed = await next_json(host)
        assert pushed["status"]["state"] == "ACTIVE"
        assert pushed["status"]["participants"]["guest"]["connected"] is False

        async with rv.ws_connect(f"/api/ws/{token}/{GUEST}") as guest:
            seen_by_guest = await next_json(guest)
            seen_by_host = await next_json(host)
            for frame in (seen_by_guest, seen_by_host):
                assert frame["status"]["participants"]["guest"]["connected"] is True
        gone = await next_json(host)
        assert gone["status"]["participants"]["guest"]["connected"] is False


async def test_relay_both_ways_forwards_the_exact_text(rv: RendezvousClient) -> None:
    token = await active_session(rv)
    async with seated(token, rv) as (host, guest):
        offer = (
            '{"type": "webrtc-offer",  "offer": {"type": "offer", "sdp": "v=0\\r\\n"}, "x": [1, 2]}'
        )
        await host.send_str(offer)
        received = await asyncio.wait_for(guest.receive(), 2)
        assert received.data == offer  # byte for byte, unparsed
        await guest.send_str(json.dumps({"type": "sealed", "box": "b64..."}))
        assert (await next_of_type(host, "sealed"))["box"] == "b64..."
        await host.send_str(json.dumps({"type": "ping"}))
        assert (await next_json(host)) == {"type": "pong"}


async def test_messages_for_an_absent_peer_are_held_until_it_connects(rv: RendezvousClient) -> None:
    token = await issue(rv)
    await join(rv, token, HOST)
    async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        await next_json(host)
        for n in range(3):  # the guest has not even joined yet
            await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "n": n}))
        await join(rv, token, GUEST)
        async with rv.ws_connect(f"/api/ws/{token}/{GUEST}") as guest:
            assert (await next_json(guest))["type"] == "session-status"
            held = [await next_json(guest) for _ in range(3)]
            assert [m["n"] for m in held] == [0, 1, 2]


async def test_held_messages_are_bounded(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(held_messages_max=2)
    token = await issue(rv)
    await join(rv, token, HOST)
    async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        await next_json(host)
        for n in range(3):
            await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "id": f"m{n}"}))
        error = await next_json(host)
        assert error["type"] == "error" and error["code"] == "peer_queue_full"
        assert error["in_reply_to"] == {"type": "pake", "id": "m2"}


async def test_bad_frames_get_errors_and_the_socket_stays_usable(rv: RendezvousClient) -> None:
    token = await active_session(rv)
    async with seated(token, rv) as (host, guest):
        await host.send_str("{not json")
        assert (await next_of_type(host, "error"))["code"] == "invalid_json"
        await host.send_str('["type", "pake"]')
        assert (await next_of_type(host, "error"))["code"] == "invalid_message"
        await host.send_str(json.dumps({"type": "message", "id": "7", "encrypted": "x"}))
        unknown = await next_of_type(host, "error")
        assert unknown["code"] == "unknown_type"
        assert unknown["in_reply_to"] == {"type": "message", "id": "7"}
        await host.send_str(json.dumps({"type": "pake", "msg": "AAAA", "ok": True}))
        assert (await next_of_type(guest, "pake"))["ok"] is True


async def test_malformed_frames_are_refused_with_errors_never_a_crash(
    rv: RendezvousClient,
) -> None:
    token = await active_session(rv)
    async with seated(token, rv) as (host, guest):
        refused = {
            "[" * 20_000: "invalid_json",  # deep nesting, well inside the size cap
            '{"type": "pake", "msg": ' + "[" * 20_000 + "]" * 20_000 + "}": "invalid_json",
            '{"type": "pake", "msg": "\\ud800"}': "invalid_message",  # a lone surrogate
            '{"type": "\\udc00", "id": "\\ud800"}': "unknown_type",
            json.dumps({"type": "pake", "msg": 5}): "invalid_message",
            json.dumps({"type": "pake"}): "invalid_message",
            json.dumps({"type": "sealed", "box": ["b"], "id": "s1"}): "invalid_message",
            json.dumps({"type": "webrtc-offer", "offer": "v=0"}): "invalid_message",
            json.dumps({"type": "session-ended", "reason": "x", "ended_at": "y"}): "unknown_type",
        }
        for text, code in refused.items():
            await host.send_str(text)
            error = await next_of_type(host, "error")
            assert error["code"] == code, text[:60]
        assert error["in_reply_to"] == {"type": "session-ended"}
        await host.send_str(json.dumps({"type": "sealed", "box": ["b"], "id": "s1"}))
        assert (await next_of_type(host, "error"))["in_reply_to"] == {"type": "sealed", "id": "s1"}
        await host.send_str('{"type": "\\udc00", "id": "\\ud800"}')
        assert (await next_of_type(host, "error"))["in_reply_to"] == {}  # no echo of bad text
        # None of it reached the peer; the socket still relays.
        await host.send_str(json.dumps({"type": "pake", "msg": "AAAA"}))
        assert await next_json(guest) == {"type": "pake", "msg": "AAAA"}


async def test_binary_frames_close_with_1003(rv: RendezvousClient) -> None:
    token = await active_session(rv)
    async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        await next_json(host)
        await host.send_bytes(b"\x00\x01")
        assert await closed_with(host) == 1003


async def test_oversize_messages_close_with_1009(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(ws_max_message_bytes=1024)
    token = await active_session(rv)
    async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as host:
        await next_json(host)
        await host.send_str(json.dumps({"type": "sealed", "pad": "x" * 2000}))
        assert await closed_with(host) == 1009


async def test_per_socket_rate_limit(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(ws_message_burst=3, ws_messages_per_second=0.01)
    token = await active_session(rv)
    async with (
        rv.ws_connect(f"/api/ws/{token}/{HOST}") as host,
        rv.ws_connect(f"/api/ws/{token}/{GUEST}") as guest,
    ):
        await next_of_type(host, "session-status")
        for n in range(4):
            candidate = {"type": "webrtc-ice-candidate", "candidate": {}, "id": n}
            await host.send_str(json.dumps(candidate))
        limited = await next_of_type(host, "error")
        assert limited["code"] == "rate_limited" and limited["in_reply_to"]["id"] == 3
        got = [(await next_of_type(guest, "webrtc-ice-candidate"))["id"] for _ in range(3)]
        assert got == [0, 1, 2]


async def test_a_second_socket_of_the_same_identity_replaces_the_first(
    rv: RendezvousClient,
) -> None:
    token = await active_session(rv)
    async with (
        rv.ws_connect(f"/api/ws/{token}/{HOST}") as old,
        rv.ws_connect(f"/api/ws/{token}/{GUEST}") as guest,
    ):
        await next_of_type(old, "session-status")
        async with rv.ws_connect(f"/api/ws/{token}/{HOST}") as new:
            assert await closed_with(old) == 4002
            await next_of_type(new, "session-status")
            await guest.send_str(json.dumps({"type": "pake", "msg": "AAAA", "to": "new"}))
            assert (await next_of_type(new, "pake"))["to"] == "new"
        assert service(rv).relay.open_sockets == 1


async def test_manual_end_tells_both_and_closes(rv: RendezvousClient) -> None:
    token = await active_session(rv)
    async with seated(token, rv) as (host, guest):
        response = await rv.post(f"/api/session/{token}/end", json={"client_identity": GUEST})
        assert response.status == 200
        for ws in (host, guest):
            ended = await next_of_type(ws, "session-ended")
            assert ended == {
                "type": "session-ended",
                "reason": "manually_ended",
                "ended_at": "2026-01-20T10:00:00Z",
            }
            assert await closed_with(ws) == 1000


async def test_sweep_ends_expired_sessions_and_tells_their_sockets(
    rv: RendezvousClient, clock: FakeClock
) -> None:
    token = await active_session(rv, ttl_minutes=5)
    async with seated(token, rv) as (host, guest):
        clock.advance(minutes=5)
        result = await service(rv).sweep()
        assert result["ended"] == 1
        for ws in (host, guest):
            ended = await next_of_type(ws, "session-ended")
            assert (ended["reason"], ended["ended_at"]) == ("timer_expired", "2026-01-20T10:05:00Z")
            assert await closed_with(ws) == 1000
    status = await (await rv.get(f"/api/session/{token}/status")).json()
    assert status["state"] == "ENDED"


async def test_the_countdown_timer_ends_a_connected_session(
    rv: RendezvousClient, clock: FakeClock
) -> None:
    token = await active_session(rv, ttl_minutes=1)
    clock.advance(seconds=59.8)  # 0.2 s of the TTL left when the sockets arrive
    async with (
        rv.ws_connect(f"/api/ws/{token}/{HOST}") as host,
        rv.ws_connect(f"/api/ws/{token}/{GUEST}") as guest,
    ):
        await next_of_type(host, "session-status")
        await next_of_type(guest, "session-status")  # both sockets are in
        clock.advance(seconds=0.3)
        # No sweep: the session's own timer must fire.
        for ws in (host, guest):
            assert (await next_of_type(ws, "session-ended"))["reason"] == "timer_expired"


async def test_old_ended_sessions_are_deleted_after_retention(
    rv: RendezvousClient, clock: FakeClock
) -> None:
    token = await active_session(rv)
    await rv.post(f"/api/session/{token}/end", json={"client_identity": HOST})
    clock.advance(days=6)
    assert (await service(rv).sweep())["deleted"] == 0
    clock.advance(days=1, seconds=1)
    assert (await service(rv).sweep())["deleted"] == 1
    assert (await rv.get(f"/api/session/{token}/status")).status == 404
