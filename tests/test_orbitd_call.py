"""Calls between two real daemons: call, accept, media through both daemons as encoded
packets, mute, hang up and call again, decline, both calling at once. The media
comes from a daemon's headless test pattern; a stand-in for the other user's browser
(an aiortc peer in this process) receives it on its media link and decodes it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiortc import RTCConfiguration, RTCPeerConnection, RTCSessionDescription

from orbitd.ice import use_loopback_only
from orbitd.media.sources import read_stamp
from tests.processes import Daemon, start_daemon, start_rendezvous


@pytest.fixture
async def pair(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    # This process's browser stand-in stays on 127.0.0.1 too, until the test is over.
    request.addfinalizer(use_loopback_only())
    process, url = await start_rendezvous(tmp_path)
    alice, bob = await asyncio.gather(
        start_daemon(
            tmp_path, "alice", url, "--video-source", "testpattern", "--audio-source", "tone"
        ),
        start_daemon(tmp_path, "bob", url),
    )
    _, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
    await bob.call("POST", "/api/join", {"invite": created["invite"]})
    await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())
    await process.stop()


async def call_state(daemon: Daemon, state: str) -> dict[str, object]:
    while True:
        event = await daemon.event("call")
        call: dict[str, object] = event["call"]
        if call["state"] == state:
            return call


async def browser_link(daemon: Daemon) -> tuple[RTCPeerConnection, list[int]]:
    """Connect a receive-only 'browser' to the daemon's media link; collect stamp counters."""
    pc = RTCPeerConnection(RTCConfiguration(iceServers=[]))
    pc.addTransceiver("audio", direction="recvonly")
    pc.addTransceiver("video", direction="recvonly")
    counters: list[int] = []

    async def read_video(track: object) -> None:
        from aiortc import MediaStreamTrack
        from aiortc.mediastreams import MediaStreamError

        assert isinstance(track, MediaStreamTrack)
        while True:
            try:
                frame = await track.recv()
            except MediaStreamError:
                return
            stamp = read_stamp(frame)  # type: ignore[arg-type]
            if stamp is not None:
                counters.append(stamp.counter)

    tasks: list[asyncio.Task[None]] = []
    pc.on(
        "track",
        lambda track: (
            tasks.append(asyncio.ensure_future(read_video(track)))
            if track.kind == "video"
            else None
        ),
    )
    await pc.setLocalDescription(await pc.createOffer())
    status, answer = await daemon.call(
        "POST", "/api/media/offer", {"sdp": pc.localDescription.sdp, "type": "offer"}
    )
    assert status == 200, answer
    await pc.setRemoteDescription(RTCSessionDescription(sdp=answer["sdp"], type="answer"))
    return pc, counters


async def frames_arrive(counters: list[int], at_least: int = 20) -> None:
    async with asyncio.timeout(15):
        while len(counters) < at_least:  # noqa: ASYNC110 - the reader task appends; poll it
            await asyncio.sleep(0.1)


async def frames_stop(counters: list[int], quiet: float = 0.3) -> None:
    """Until no frame has come for `quiet` seconds (the frames in flight are in)."""
    async with asyncio.timeout(15):
        while True:
            before = len(counters)
            await asyncio.sleep(quiet)  # the reader task appends; see if it still does
            if len(counters) == before:
                return


async def test_call_accept_media_flows_then_hang_up_and_call_again(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    status, body = await alice.call("POST", "/api/call")
    assert status == 200 and body["call"]["state"] == "outgoing"
    incoming = await bob.event("call-incoming")
    assert incoming["call_id"] == body["call"]["call_id"]
    status, body = await bob.call("POST", "/api/call/accept")
    assert status == 200
    active = await call_state(bob, "active")
    assert active["encrypted"] is True and active["path"] == "loopback"

    pc, counters = await browser_link(bob)
    await frames_arrive(counters)
    assert counters == sorted(counters) and counters[-1] > counters[0]  # a moving picture

    await alice.call("POST", "/api/call/mute", {"kind": "video", "muted": True})
    muted = await bob.event("call-peer-muted")
    assert (muted["kind"], muted["muted"]) == ("video", True)
    status, state = await bob.call("GET", "/api/state")
    assert state["session"]["call"]["peer_muted"] == {"audio": False, "video": True}
    await frames_stop(counters)  # muted: the picture stops...
    before = len(counters)
    await asyncio.sleep(0.5)  # ...and stays stopped: an absence is only seen over a while
    assert len(counters) - before <= 2
    await alice.call("POST", "/api/call/mute", {"kind": "video", "muted": False})
    await frames_arrive(counters, before + 20)  # and comes back

    status, _ = await bob.call("POST", "/api/call/hangup")
    assert status == 200
    ended = await alice.event("call-ended")
    assert ended["reason"] == "peer_hung_up"
    await pc.close()

    # And again: a second call on the same session works.
    await alice.call("POST", "/api/call")
    await bob.event("call-incoming")
    await bob.call("POST", "/api/call/accept")
    await call_state(alice, "active")
    pc, counters = await browser_link(bob)
    await frames_arrive(counters)
    await pc.close()


async def test_decline_and_bad_requests(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    status, error = await bob.call("POST", "/api/call/accept")
    assert (status, error["error"]) == (409, "no_incoming_call")
    status, error = await bob.call("POST", "/api/media/offer", {"sdp": "v=0\r\nm=video"})
    assert (status, error["error"]) == (409, "no_call")
    await alice.call("POST", "/api/call")
    await bob.event("call-incoming")
    status, error = await alice.call("POST", "/api/call/mute", {"kind": "smell", "muted": True})
    assert (status, error["error"]) == (422, "invalid_kind")
    status, _ = await bob.call("POST", "/api/call/decline")
    assert status == 200
    assert (await alice.event("call-ended"))["reason"] == "peer_declined"
    status, state = await alice.call("GET", "/api/state")
    assert state["session"]["call"]["state"] == "idle"


async def test_both_call_at_once_makes_one_call(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    results = await asyncio.gather(alice.call("POST", "/api/call"), bob.call("POST", "/api/call"))
    assert [status for status, _ in results] == [200, 200]
    a, b = await asyncio.gather(call_state(alice, "active"), call_state(bob, "active"))
    assert a["call_id"] == b["call_id"]


async def test_both_daemons_stop_cleanly_in_the_middle_of_a_call(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    await alice.call("POST", "/api/call")
    await bob.event("call-incoming")
    await bob.call("POST", "/api/call/accept")
    await asyncio.gather(call_state(alice, "active"), call_state(bob, "active"))
    # Both stop at once: each also hears the other end the session while shutting down.
    codes = await asyncio.wait_for(
        asyncio.gather(alice.process.stop(), bob.process.stop()), timeout=8
    )
    assert list(codes) == [0, 0]
