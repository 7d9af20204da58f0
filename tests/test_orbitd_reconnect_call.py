"""A call active during an outage (SIGSTOP of the guest's daemon): after the host's
daemon rebuilt the connection, video flows again to the guest's browser stand-in."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orbitd.ice import use_loopback_only
from tests.processes import Daemon, start_daemon, start_rendezvous
from tests.test_orbitd_call import browser_link, call_state, frames_arrive
from tests.test_orbitd_reconnect import reconnecting


@pytest.fixture
async def pair(
    tmp_path: Path, request: pytest.FixtureRequest
) -> AsyncIterator[tuple[Daemon, Daemon]]:
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
    if bob.process.proc.returncode is None:
        os.kill(bob.process.proc.pid, signal.SIGCONT)
    await asyncio.gather(alice.close(), bob.close())
    await process.stop()


async def test_a_call_comes_back_on_the_new_connection(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    await alice.call("POST", "/api/call")
    await bob.event("call-incoming")
    await bob.call("POST", "/api/call/accept")
    await call_state(bob, "active")
    pc, counters = await browser_link(bob)
    try:
        await frames_arrive(counters)
        os.kill(bob.process.proc.pid, signal.SIGSTOP)
        await reconnecting(alice, at_least=1)
        before = len(counters)
        os.kill(bob.process.proc.pid, signal.SIGCONT)
        await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        await frames_arrive(counters, before + 20)  # the picture moves again
        assert counters[-1] > counters[before]
        _, state = await bob.call("GET", "/api/state")
        assert state["session"]["call"]["state"] == "active"
    finally:
        await pc.close()
