"""LAN sessions, the parts with no network: signed invites, codes and nonces, the listener's
refusals, the inviter's reading of answers, the LAN link, requests that go away, and the
identity keys bound into the LAN PAKE. The same sessions across network namespaces are in
tests/test_lan_session.py.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, cast

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from playwright.async_api import expect

from orbitcore.errors import Refusal
from orbitcore.protocol import relay
from orbitcore.protocol.frames import Frame
from orbitcore.ratelimit import RateLimiter
from orbitd.crypto import Invite, Seat
from orbitd.handshake import Failed, Handshake, MakeOffer, Output, SendRelay
from orbitd.lan import invitee as invitee_module
from orbitd.lan import link as link_module
from orbitd.lan import listener, make_lan_app
from orbitd.lan.discovery import LanPresence
from orbitd.lan.invitee import Invitee
from orbitd.lan.inviter import Inviter
from orbitd.lan.invites import (
    Nonces,
    new_code,
    new_session_id,
    parse_invite,
)
from orbitd.lan.link import LanLink, lan_status, relay_frame
from orbitd.lan.peers import VerifiedPeers
from orbitd.manager import SessionManager
from tests.lan_daemons import new_identity, signed
from tests.netns import netns_lan_fixture

__all__ = ["netns_lan_fixture"]  # the fixture, used by name
expect.set_options(timeout=15_000)


# --- the parts with no network ------------------------------------------------------------


def test_signed_invite_binds_every_field_and_the_recipient() -> None:
    alice, bob, carol = new_identity(), new_identity(), new_identity()
    good = signed(alice, to=bob.fingerprint, nonce="n" * 32)
    invite = parse_invite(good)
    assert invite.check(bob.fingerprint) is None
    refusal = invite.check(carol.fingerprint)  # relayed to another daemon
    assert refusal is not None and refusal.code == "bad_signature"
    for field, value in (("ttl_minutes", 61), ("name", "mallory"), ("nonce", "m" * 32)):
        tampered = parse_invite(good | {field: value})
        assert (tampered.check(bob.fingerprint) or Refusal(0, "", "")).code == "bad_signature"
    swapped = parse_invite(good | {"public_key": carol.public_key.hex()})
    assert (swapped.check(bob.fingerprint) or Refusal(0, "", "")).code == "fingerprint_mismatch"


@pytest.mark.parametrize(
    ("change", "code"),
    [
        ({"session_id": "abc"}, "invalid_session_id"),
        ({"name": ""}, "invalid_name"),
        ({"name": "x" * 64}, "invalid_name"),
        ({"fingerprint": "F" * 64}, "invalid_fingerprint"),
        ({"nonce": "short"}, "invalid_nonce"),
        ({"public_key": "00"}, "invalid_public_key"),
        ({"signature": "zz"}, "invalid_signature"),
        ({"ttl_minutes": 10001}, "invalid_ttl_minutes"),
        ({"ttl_minutes": True}, "invalid_ttl_minutes"),
        ({"max_message_length": 199}, "invalid_max_message_length"),
    ],
)
def test_malformed_invites_are_refused(change: dict[str, Any], code: str) -> None:
    body = signed(new_identity(), to="b" * 64, nonce="n" * 32) | change
    with pytest.raises(Refusal) as refused:
        parse_invite(body)
    assert (refused.value.status, refused.value.code) == (422, code)


def test_codes_session_ids_rate_limits_and_nonces() -> None:
    codes = {new_code() for _ in range(200)}
    assert all(re.fullmatch(r"[0-9]{6}", c) for c in codes) and len(codes) > 150
    assert re.fullmatch(r"[A-Z0-9]{12}", new_session_id())
    limiter = RateLimiter(60.0)
    assert [limiter.allow("10.0.0.3", 5, t) for t in range(6)] == [True] * 5 + [False]
    assert limiter.allow("10.0.0.4", 5, 6)  # per address
    assert limiter.allow("10.0.0.3", 5, 61)  # the window moved on
    nonces = Nonces(lifetime=60.0)
    one = nonces.issue("10.0.0.3")
    assert not nonces.take("10.0.0.4", one)  # another address
    assert nonces.take("10.0.0.3", one) and not nonces.take("10.0.0.3", one)  # once
    many = [nonces.issue("10.0.0.3") for _ in range(5)]
    assert not nonces.take("10.0.0.3", many[0])  # four outstanding per address at most
    assert nonces.take("10.0.0.3", many[-1])
    stale = Nonces(lifetime=0.0)
    assert not stale.take("10.0.0.3", stale.issue("10.0.0.3"))


def test_only_relay_frames_cross_the_link_and_the_status_is_local() -> None:
    assert relay_frame('{"type": "pake", "msg": "x"}') == relay.Pake("x")
    for text in (
        '{"type": "session-status", "status": {}}',  # only our own daemon makes these
        '{"type": "session-ended", "reason": "timer_expired", "ended_at": "now"}',
        '{"type": "pake", "msg": 5}',
        '{"type": "pake", "msg": "\\ud800"}',
        "[" * 20_000,
        "[1]",
        "not json",
        json.dumps({"type": "sealed", "box": "x" * 70000}),
    ):
        assert relay_frame(text) is None
    status = lan_status("ABCDEFGHJKLM", 5, 300, 299)
    assert status["state"] == "ACTIVE" and status["max_message_length"] == 300
    assert status["timer"]["ttl_minutes"] == 5 and status["timer"]["remaining_seconds"] == 299


async def test_the_listener_refuses_malformed_bodies_with_a_4xx_and_a_reason(
    aiohttp_client: Callable[..., Awaitable[TestClient[web.Request, web.Application]]],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(invitee_module, "INVITES_PER_MINUTE", 100)
    invitee = Invitee(new_identity(), lambda: None, _no_manager, lambda event: None)
    app = make_lan_app()
    listener.add_routes(app, invitee)
    client = await aiohttp_client(app)
    good = signed(new_identity(), to="b" * 64, nonce="n" * 32)
    refused = {
        "[" * 20_000: (400, "invalid_json"),  # nesting, well inside the size cap
        "{not json": (400, "invalid_json"),
        "x" * 5000: (400, "invalid_json"),  # over the channel's 4096 bytes
        "[1]": (422, "invalid_body"),
        json.dumps(good | {"type": "hello"}): (422, "invalid_body"),
        json.dumps(good | {"name": "\ud800"}): (422, "invalid_name"),  # a lone surrogate
        json.dumps(good | {"ttl_minutes": "60"}): (422, "invalid_ttl_minutes"),
        json.dumps({k: v for k, v in good.items() if k != "nonce"}): (422, "invalid_nonce"),
    }
    for body, expected in refused.items():
        response = await client.post("/lan/invite", data=body)
        answer = await response.json()
        assert (response.status, answer["error"]) == expected, body[:60]
        assert answer["reason"]
    response = await client.delete("/lan/invite/ABCDEFGHJKLM", json={"signature": 5})
    assert (response.status, (await response.json())["error"]) == (422, "invalid_signature")
    # A well-formed invite gets as far as the checks that need the network.
    response = await client.post("/lan/invite", json=good)
    assert (response.status, (await response.json())["error"]) == (403, "bad_nonce")


async def test_the_inviter_takes_an_unreadable_answer_for_none_and_maps_refusals() -> None:
    """The invitee's daemon answers garbage, a known refusal, or an error page: the
    inviter's user gets the matching refusal, never a crash."""
    answers: list[tuple[int, str]] = []

    async def scripted(request: web.Request) -> web.Response:
        status, text = answers.pop(0)
        return web.Response(status=status, text=text, content_type="application/json")

    app = web.Application()
    app.router.add_get("/lan/invite/nonce", scripted)
    app.router.add_post("/lan/invite", scripted)
    bob = new_identity()
    good_nonce = json.dumps({"nonce": "n" * 32, "expires_in": 60})
    cases = [
        ([(200, '{"nonce": 5, "expires_in": 60}')], (504, "peer_unreachable")),
        ([(200, "[" * 20_000)], (504, "peer_unreachable")),
        (
            [(200, good_nonce), (429, '{"error": "rate_limited", "reason": "wait"}')],
            (429, "rate_limited"),
        ),
        ([(200, good_nonce), (500, "<html>oops</html>")], (502, "peer_refused")),
        ([(200, good_nonce), (202, '{"request_id": 5}')], (504, "peer_unreachable")),
    ]
    async with TestServer(app, host="127.0.0.1") as server:

        class Presence:
            def find(self, fingerprint: str) -> dict[str, Any]:
                return {"address": "127.0.0.1", "port": server.port, "name": "bob"} | {
                    "fingerprint": fingerprint,
                    "verified_before": False,
                    "flagged": False,
                    "reason": None,
                }

        class Manager:
            busy = False

        inviter = Inviter(
            new_identity(),
            "alice",
            lambda: cast("LanPresence", Presence()),
            lambda: cast(SessionManager, Manager()),
            lambda event: None,
        )
        inviter.start()
        try:
            for script, expected in cases:
                answers[:] = script
                with pytest.raises(Refusal) as refused:
                    await inviter.invite({"fingerprint": bob.fingerprint})
                assert (refused.value.status, refused.value.code) == expected, script
                assert answers == []
        finally:
            await inviter.stop()


def _no_manager() -> SessionManager:
    raise AssertionError("no session is opened here")


class Frames(list[Frame]):
    """What a link delivered, awaitable by count."""

    def __init__(self) -> None:
        super().__init__()
        self.grew = asyncio.Event()

    def add(self, frame: Frame) -> None:
        self.append(frame)
        self.grew.set()

    async def until(self, count: int) -> None:
        async with asyncio.timeout(5):
            while len(self) < count:
                self.grew.clear()
                await self.grew.wait()


async def test_the_link_carries_relay_frames_once_and_gives_up_on_silence(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Two links over loopback: the dialer's queued frames arrive, only relay frames pass,
    a second socket is refused (and ends the dialer's session), silence times out."""
    served = LanLink("ABCDEFGHJKLM")
    got_served = Frames()
    served.signaling("ABCDEFGHJKLM", "guest", got_served.add)

    async def session_socket(request: web.Request) -> web.StreamResponse:
        try:
            served.claim()
        except RuntimeError:
            return web.json_response({"error": "socket_taken"}, status=409)
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        await served.serve(ws)
        return ws

    app = web.Application()
    app.router.add_get("/lan/session/{id}", session_socket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    url = f"ws://127.0.0.1:{port}/lan/session/ABCDEFGHJKLM"
    async with aiohttp.ClientSession() as http:
        dialer = LanLink("ABCDEFGHJKLM", url=url, http=http)
        got_dialer = Frames()
        dialer.signaling("ABCDEFGHJKLM", "host", got_dialer.add)
        await dialer.send(relay.Pake("queued before the socket"))
        dialer.start()
        await served.send(relay.Pake("from the invitee"))
        await served.send(relay.SessionEnded("timer_expired", "2026-01-20T10:00:00Z"))  # dropped
        await served.send(relay.Sealed("b"))
        await got_served.until(1)
        await got_dialer.until(2)
        assert got_served == [relay.Pake("queued before the socket")]
        assert got_dialer == [relay.Pake("from the invitee"), relay.Sealed("b")]

        second = LanLink("ABCDEFGHJKLM", url=url, http=http)
        got_second = Frames()
        second.signaling("ABCDEFGHJKLM", "host", got_second.add)
        second.start()
        await got_second.until(1)
        assert [(type(f), getattr(f, "reason", None)) for f in got_second] == [
            (relay.SessionEnded, "peer_aborted")
        ]
        for link in (dialer, served, second):
            await link.close()

        monkeypatch.setattr(link_module, "FIRST_FRAME_SECONDS", 0.2)
        silent = LanLink("ABCDEFGHJKLM", url="ws://127.0.0.1:9/lan/session/X", http=http)
        got_silent = Frames()
        silent.signaling("ABCDEFGHJKLM", "host", got_silent.add)
        silent.start()
        await got_silent.until(1)
        assert [(type(f), getattr(f, "reason", None)) for f in got_silent] == [
            (relay.SessionEnded, "connect_timeout")
        ]
        await silent.close()
    await runner.cleanup()


class FakePresence:
    def __init__(self, peers: list[dict[str, Any]], store: VerifiedPeers | None = None) -> None:
        self._peers = peers
        self.store = store

    def peers(self) -> list[dict[str, Any]]:
        return self._peers


class FakeManager:
    busy = False
    session = None


async def test_unanswered_and_silent_requests_go_away() -> None:
    me, alice = new_identity(), new_identity()
    entry = {
        "name": "alice",
        "fingerprint": alice.fingerprint,
        "address": "10.0.0.2",
        "verified_before": False,
        "flagged": False,
        "reason": None,
    }
    events: list[dict[str, Any]] = []
    invitee = Invitee(
        me,
        lambda: FakePresence([entry]),  # type: ignore[arg-type,return-value]
        lambda: FakeManager(),  # type: ignore[arg-type,return-value]
        events.append,
    )

    def receive() -> str:
        nonce = invitee.nonce("10.0.0.2")
        return invitee.receive(signed(alice, to=me.fingerprint, nonce=nonce), "10.0.0.2").id

    first = receive()
    with pytest.raises(Refusal, match="still waiting"):  # one pending request per peer
        receive()
    now = time.monotonic()
    invitee.sweep(now + invitee_module.POLL_GRACE + 1)  # the inviter stopped polling
    assert events[-1] == {"type": "lan-request-withdrawn", "request_id": first, "reason": "gone"}
    second = receive()
    invitee.requests[second].last_seen = now + invitee_module.REQUEST_SECONDS
    invitee.sweep(now + invitee_module.REQUEST_SECONDS + 1)  # polled, never answered
    assert events[-1]["request_id"] == second and events[-1]["reason"] == "expired"
    invitee.sweep(now + invitee_module.REQUEST_SECONDS + invitee_module.KEEP_CLOSED + 2)
    assert invitee.requests == {}  # closed ones are dropped, their ids stay spent
    nonce = invitee.nonce("10.0.0.2")
    with pytest.raises(Refusal, match="used before"):
        invitee.receive(signed(alice, to=me.fingerprint, nonce=nonce, session_id=first), "10.0.0.2")


def _exchange(host: Handshake, guest: Handshake) -> tuple[list[Output], list[Output]]:
    """Both PAKE messages, then both sealed confirms, as they would cross the link."""

    def deliver(to: Handshake, outputs: list[Output]) -> list[Output]:
        got: list[Output] = []
        for out in outputs:
            if isinstance(out, SendRelay):
                got += to.handle(relay.CHANNEL.parse(out.frame.encode()))
        return got

    h1, g1 = deliver(host, guest.start()), deliver(guest, host.start())
    return h1 + deliver(host, g1), g1 + deliver(guest, h1)


def test_the_lan_pake_binds_both_identity_keys() -> None:
    """Same code, same pair of keys: the handshake goes on. Same code, but one side
    expects another key for its peer (an impostor's, or a key swapped on the way):
    both fail as with a wrong code, and an unbound run does not match a bound one."""
    alice, bob, eve = (new_identity().fingerprint for _ in range(3))
    code, session_id = new_code(), new_session_id()

    def pair(host_keys: tuple[str, str] | None, guest_keys: tuple[str, str] | None) -> Any:
        host = Handshake(Seat.HOST, Invite(session_id, code, host_keys))
        guest = Handshake(Seat.GUEST, Invite(session_id, code, guest_keys))
        return _exchange(host, guest)

    host_out, guest_out = pair((alice, bob), (alice, bob))
    assert any(isinstance(o, MakeOffer) for o in host_out)
    assert not any(isinstance(o, Failed) for o in host_out + guest_out)
    for host_keys, guest_keys in (
        ((alice, eve), (alice, bob)),  # alice's daemon reached eve's key, not bob's
        ((eve, bob), (alice, bob)),  # bob expects alice's key; eve holds another
        ((alice, bob), None),
    ):
        host_out, guest_out = pair(host_keys, guest_keys)
        failed = [o for o in host_out + guest_out if isinstance(o, Failed)]
        assert [f.code for f in failed] == ["invite_mismatch", "invite_mismatch"]


def test_an_invite_under_a_verified_name_with_another_key_is_refused(tmp_path: Path) -> None:
    me, alice, impostor = new_identity(), new_identity(), new_identity()
    store = VerifiedPeers(tmp_path)
    store.remember("Alice", alice.fingerprint)
    entry = {
        "name": "alice",
        "fingerprint": impostor.fingerprint,
        "address": "10.0.0.3",
        "verified_before": False,
        "flagged": True,
        "reason": "known_name_other_key",
    }
    events: list[dict[str, Any]] = []
    invitee = Invitee(
        me,
        lambda: FakePresence([entry], store),  # type: ignore[arg-type,return-value]
        lambda: FakeManager(),  # type: ignore[arg-type,return-value]
        events.append,
    )
    nonce = invitee.nonce("10.0.0.3")
    with pytest.raises(Refusal) as refused:
        invitee.receive(signed(impostor, to=me.fingerprint, nonce=nonce), "10.0.0.3")
    assert (refused.value.status, refused.value.code) == (403, "known_name_other_key")
    assert invitee.requests == {}
    assert events == [
        {"type": "lan-impostor", "name": "alice", "fingerprint": impostor.fingerprint}
    ]
    # the same key under another name, the name signed differently: refused the same way
    entry |= {"name": "mallory", "flagged": False, "reason": None}
    nonce = invitee.nonce("10.0.0.3")
    with pytest.raises(Refusal, match="another key"):
        invitee.receive(signed(impostor, to=me.fingerprint, nonce=nonce, name="ALICE"), "10.0.0.3")
    # and one the user did not verify under any name is still welcome
    nonce = invitee.nonce("10.0.0.3")
    received = invitee.receive(
        signed(impostor, to=me.fingerprint, nonce=nonce, name="mallory"), "10.0.0.3"
    )
    assert received.name == "mallory"
