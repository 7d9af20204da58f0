"""Sessions across two NATs and a public segment (tests/nat.py): what each user sees
through their daemon's API. Real orbitd, rendezvous and coturn, in namespaces the
tests build and tear down (root; `flock /tmp/netns.lock`; the Chromium test also
`flock /tmp/browser.lock`)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import pytest
from playwright.async_api import async_playwright, expect

from tests.browser import ARGS, CHROMIUM
from tests.nat import CONE, SYMMETRIC, NatNet, hand_ice_flags, nat_net_fixture
from tests.netns import NsDaemon
from tests.test_ui_call import playing
from tests.test_ui_nearby import chromium_in, open_home

__all__ = ["nat_net_fixture"]  # a fixture, used by name

CONNECT_WAIT = 30.0
# --- sessions ------------------------------------------------------------------------------


async def phase(daemon: NsDaemon, wanted: str, within: float = CONNECT_WAIT) -> dict[str, Any]:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200, state
    session: dict[str, Any] | None = state.get("session")
    if session is not None and session["phase"] == wanted:
        return session
    event = await daemon.until("session", lambda e: e["session"]["phase"] == wanted, within)
    found: dict[str, Any] = event["session"]
    return found


async def connect(alice: NsDaemon, bob: NsDaemon, within: float = CONNECT_WAIT) -> None:
    """Alice (home A) requests a token, Bob (home B) joins; both reach `ready`, same SAS."""
    status, created = await alice.call(
        "POST", "/api/tokens", {"validity_option": "day", "ttl_minutes": 60}
    )
    assert status == 201, created
    status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    assert status == 200, joined
    a, b = await asyncio.gather(phase(alice, "ready", within), phase(bob, "ready", within))
    assert a["sas"] and a["sas"] == b["sas"]


def with_text(text: str) -> Callable[[dict[str, Any]], bool]:
    return lambda event: bool(event["message"]["text"] == text)


async def chat_both_ways(alice: NsDaemon, bob: NsDaemon, tag: str) -> None:
    for sender, receiver in ((alice, bob), (bob, alice)):
        text = f"{tag} from {'alice' if sender is alice else 'bob'}"
        status, sent = await sender.call("POST", "/api/messages", {"text": text})
        assert status == 201, sent
        got = await receiver.until("message", with_text(text), 15)
        assert got["message"]["author"] == "peer"
        await sender.event(
            "message-status", message_id=sent["message"]["message_id"], status="delivered"
        )


async def path_of(daemon: NsDaemon) -> str | None:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200, state
    path: str | None = state["session"].get("path")
    return path


async def path_shown(daemon: NsDaemon, expected: str, within: float = 5.0) -> None:
    """The session shows `expected` as its path now, or in an update soon (the daemon
    looks at the connection once a second)."""
    if await path_of(daemon) == expected:
        return
    await daemon.until("session", lambda e: e["session"].get("path") == expected, within)


async def two_daemons(
    net: NatNet, alice_flags: list[str], bob_flags: list[str]
) -> tuple[NsDaemon, NsDaemon]:
    return await asyncio.gather(
        net.daemon("a", "alice", *alice_flags), net.daemon("b", "bob", *bob_flags)
    )


@pytest.mark.parametrize("nat_net", [(CONE, CONE)], indirect=True)
async def test_cone_to_cone_with_stun_is_internet_direct(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(), nat_net.start_coturn())
    stun = hand_ice_flags(nat_net, nat_net.stun_url)
    alice, bob = await two_daemons(nat_net, stun, stun)
    try:
        await connect(alice, bob)
        await chat_both_ways(alice, bob, "through two cone NATs")
        assert await path_of(alice) == await path_of(bob) == "internet-direct"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


@pytest.mark.parametrize("nat_net", [(SYMMETRIC, SYMMETRIC)], indirect=True)
async def test_symmetric_to_symmetric_is_relayed_with_credentials_from_the_rendezvous(
    nat_net: NatNet,
) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, [], [])  # no ICE server of their own
    try:
        await connect(alice, bob)
        await chat_both_ways(alice, bob, "through two symmetric NATs")
        assert await path_of(alice) == await path_of(bob) == "relayed"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
    for daemon in (alice, bob):  # the minted credential never reaches a log
        own_log = Path(daemon.ready["log"]).read_text()
        assert nat_net.turn_secret not in own_log


@pytest.mark.parametrize("nat_net", [(CONE, CONE)], indirect=True)
async def test_relay_only_where_direct_would_work_is_relayed(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, ["--ice-relay-only"], [])
    try:
        await connect(alice, bob)
        await chat_both_ways(alice, bob, "hidden address")
        assert await path_of(alice) == await path_of(bob) == "relayed"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


@pytest.mark.parametrize("nat_net", [(CONE, SYMMETRIC)], indirect=True)
async def test_udp_blocked_on_one_side_falls_back_to_turn_over_tcp(nat_net: NatNet) -> None:
    """Home A's router lets no UDP out: the first plan (STUN + TURN over UDP) gathers
    nothing there and cannot connect; the host moves to the next plan (TURN over TCP)
    before the connect timeout (orbitd.first_connect) and the chat runs relayed."""
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    nat_net.block_udp("a")
    quick = ["--connect-timeout-seconds", "5"]  # 10 s a plan at least
    alice, bob = await two_daemons(nat_net, quick, quick)
    try:
        await connect(alice, bob, within=40)
        await chat_both_ways(alice, bob, "over TCP")
        assert await path_of(alice) == await path_of(bob) == "relayed"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
    log = Path(alice.ready["log"]).read_text()
    assert "next ICE plan" in log and "turn-tcp" in log


# --- outages of one home's uplink (feature reconnect, and resume for the messages) ----------


async def peer_texts(daemon: NsDaemon) -> list[str]:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200, state
    return [m["text"] for m in state["session"]["messages"] if m["author"] == "peer"]


async def arrived(daemon: NsDaemon, texts: list[str], within: float) -> None:
    """Until every one of `texts` was shown to `daemon`'s user (a `message` event each)."""
    waiting = set(texts) - set(await peer_texts(daemon))
    async with asyncio.timeout(within):
        while waiting:
            event = await daemon.until("message", lambda e: True, within)
            waiting.discard(event["message"]["text"])


async def outage_mid_chat(
    net: NatNet,
    alice: NsDaemon,
    bob: NsDaemon,
    seconds: float,
    *,
    new_public: str | None = None,
    on_cut: Callable[[], Awaitable[None]] | None = None,
    before_restore: Callable[[], Awaitable[None]] | None = None,
    recovery: float = 45.0,
) -> None:
    """Home A's uplink cut for `seconds` mid-chat, both users writing every 2 s meanwhile:
    afterwards both are `ready` with the same code and each has every message of the
    other exactly once, in the order it was written."""
    await chat_both_ways(alice, bob, "before")
    _, state = await alice.call("GET", "/api/state")
    sas = state["session"]["sas"]
    sent: dict[str, list[str]] = {"alice": [], "bob": []}
    loop = asyncio.get_running_loop()
    net.cut_uplink("a")
    cut_at, n = loop.time(), 0
    if on_cut is not None:
        await on_cut()
    while loop.time() - cut_at < seconds:
        for name, daemon in (("alice", alice), ("bob", bob)):
            text = f"{name} during {n}"
            status, body = await daemon.call("POST", "/api/messages", {"text": text})
            assert status == 201, body  # taken (sent into the silence, or queued as sending)
            sent[name].append(text)
        n += 1
        # The outage is a span of wall time and the users type through it: a pace, not a wait.
        await asyncio.sleep(min(2.0, max(0.0, seconds - (loop.time() - cut_at))))
    if before_restore is not None:
        await before_restore()
    net.restore_uplink("a", new_public)
    a, b = await asyncio.gather(
        phase(alice, "ready", recovery + 15), phase(bob, "ready", recovery + 15)
    )
    assert a["sas"] == b["sas"] == sas  # nobody is asked to compare again
    await asyncio.gather(
        arrived(bob, sent["alice"], recovery), arrived(alice, sent["bob"], recovery)
    )
    assert await peer_texts(bob) == ["before from alice", *sent["alice"]]
    assert await peer_texts(alice) == ["before from bob", *sent["bob"]]
    await chat_both_ways(alice, bob, "after")
    for daemon in (alice, bob):
        log = Path(daemon.ready["log"]).read_text()
        assert "Task exception was never retrieved" not in log
        assert "alice during 0" not in log  # the chat's text is in no log


@pytest.mark.parametrize("nat_net", [(CONE, SYMMETRIC)], indirect=True)
async def test_a_10_s_outage_mid_chat_loses_nothing(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, [], [])
    try:
        await connect(alice, bob)
        await outage_mid_chat(nat_net, alice, bob, 10)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


@pytest.mark.parametrize("nat_net", [(SYMMETRIC, SYMMETRIC)], indirect=True)
async def test_a_60_s_outage_on_the_relayed_path_loses_nothing(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, [], [])
    try:
        await connect(alice, bob)
        assert await path_of(alice) == "relayed"
        await outage_mid_chat(nat_net, alice, bob, 60)
        await asyncio.gather(path_shown(alice, "relayed"), path_shown(bob, "relayed"))
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


@pytest.mark.parametrize("nat_net", [(CONE, CONE)], indirect=True)
async def test_a_new_public_address_after_the_outage(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, [], [])
    try:
        await connect(alice, bob)
        assert await path_of(alice) == "internet-direct"
        await outage_mid_chat(nat_net, alice, bob, 10, new_public=nat_net.spare_public("a"))
        await asyncio.gather(
            path_shown(alice, "internet-direct"), path_shown(bob, "internet-direct")
        )
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


@pytest.mark.parametrize("nat_net", [(CONE, SYMMETRIC)], indirect=True)
async def test_the_rendezvous_killed_during_the_outage_and_started_again(
    nat_net: NatNet,
) -> None:
    database = ("--database", str(nat_net.run_dir / "rendezvous.db"))
    rendezvous, _ = await asyncio.gather(
        nat_net.start_rendezvous(*database, ice=True), nat_net.start_coturn()
    )
    alice, bob = await two_daemons(nat_net, [], [])

    async def kill() -> None:
        await rendezvous.kill9()

    async def start_again() -> None:
        await nat_net.start_rendezvous(*database, ice=True)

    try:
        await connect(alice, bob)
        await outage_mid_chat(nat_net, alice, bob, 10, on_cut=kill, before_restore=start_again)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())


# --- a call in Chromium, inside a home, through an outage --------------------------------------


@pytest.mark.parametrize("nat_net", [(CONE, SYMMETRIC)], indirect=True)
async def test_chromium_without_loopback_flags_calls_and_the_video_comes_back_after_an_outage(
    nat_net: NatNet,
) -> None:
    """Bob's unflagged Chromium runs in his home's namespace: it reaches his daemon on the
    home's own interface (no loopback candidate without the flag). Alice's daemon sends
    a test pattern. The call is active, home A's uplink goes down for 10 s, and the
    video plays again on Bob's page once the sessions are back."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"Chromium not found at {CHROMIUM}")
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    media = ["--video-source", "testpattern", "--audio-source", "tone"]
    alice, bob = await two_daemons(nat_net, media, [])
    try:
        await connect(alice, bob)
        async with async_playwright() as playwright:
            browser = await playwright.chromium.launch(
                executable_path=str(chromium_in(nat_net.homes["b"].host, nat_net.run_dir)),
                headless=True,
                args=ARGS,
            )
            try:
                page = await open_home(browser, bob, nat_net.run_dir, "bob")
                await page.goto(bob.ready["base"] + "/session")
                await expect(page.locator("#phase")).to_have_text("Connected")
                await page.get_by_role("button", name="Start a video call").click()
                await alice.event("call-incoming")
                status, body = await alice.call("POST", "/api/call/accept")
                assert status == 200, body
                await expect(page.locator("#call-panel")).to_have_attribute("data-state", "active")
                await playing(page)

                nat_net.cut_uplink("a")
                await phase(bob, "reconnecting")
                await expect(page.locator("#phase")).not_to_have_text("Connected")
                await asyncio.sleep(10)  # the outage: a span of time, not an event to wait on
                nat_net.restore_uplink("a")
                await asyncio.gather(phase(alice, "ready", 45), phase(bob, "ready", 45))
                await expect(page.locator("#phase")).to_have_text("Connected")
                await expect(page.locator("#call-panel")).to_have_attribute("data-state", "active")
                await playing(page)  # the picture moves again
                assert getattr(page, "problems") == []  # noqa: B009
            finally:
                await browser.close()
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
