"""Reconnects between two real daemons on 127.0.0.1 (feature `reconnect`): a link made
silent by stopping one daemon (SIGSTOP: the other hears nothing, as on a dead network,
until SIGCONT), a peer killed for good, the rendezvous restarted during an outage."""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.processes import Daemon, Process, start_daemon, start_rendezvous
from tests.test_orbitd_chat import connect


@pytest.fixture
async def rendezvous(tmp_path: Path) -> AsyncIterator[tuple[Process, str]]:
    process, url = await start_rendezvous(tmp_path)
    yield process, url
    await process.stop()


@pytest.fixture
async def pair(
    tmp_path: Path, rendezvous: tuple[Process, str]
) -> AsyncIterator[tuple[Daemon, Daemon]]:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous[1]), start_daemon(tmp_path, "bob", rendezvous[1])
    )
    yield alice, bob
    for daemon in (alice, bob):
        if daemon.process.proc.returncode is None:
            os.kill(daemon.process.proc.pid, signal.SIGCONT)
    await asyncio.gather(alice.close(), bob.close())


async def chat_both_ways(alice: Daemon, bob: Daemon, text: str) -> None:
    for sender, receiver in ((alice, bob), (bob, alice)):
        status, sent = await sender.call("POST", "/api/messages", {"text": f"{text} {sender.name}"})
        assert status == 201, sent
        got = await receiver.event("message")
        assert got["message"]["text"] == f"{text} {sender.name}"


async def reconnecting(daemon: Daemon, at_least: int = 0) -> dict[str, Any]:
    while True:
        session = await daemon.phase("reconnecting")
        if session["attempt"] >= at_least:
            return session


@pytest.mark.parametrize("silent", ["bob", "alice"])
async def test_a_silent_peer_is_noticed_and_the_host_rebuilds_with_the_same_code(
    pair: tuple[Daemon, Daemon], silent: str
) -> None:
    alice, bob = pair  # alice hosts
    await connect(alice, bob)
    ready = await alice.call("GET", "/api/state")
    sas = ready[1]["session"]["sas"]
    await chat_both_ways(alice, bob, "before")
    stopped, survivor = (bob, alice) if silent == "bob" else (alice, bob)
    os.kill(stopped.process.proc.pid, signal.SIGSTOP)
    # The survivor says so within about 5 s (phase waits at most 15 s); the host goes on
    # attempting while the guest is silent; the guest waits for the host's reoffer.
    told = await reconnecting(survivor, at_least=2 if survivor is alice else 0)
    assert told["sas"] == sas
    os.kill(stopped.process.proc.pid, signal.SIGCONT)
    a, b = await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
    assert a["sas"] == b["sas"] == sas  # nobody compares again
    assert a["attempt"] is None and b["attempt"] is None
    await chat_both_ways(alice, bob, "after")
    for daemon in (alice, bob):
        assert "Task exception was never retrieved" not in daemon.process.log_path.read_text()


async def test_messages_sent_during_an_outage_arrive_once_in_order_after_it(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    await connect(alice, bob)
    await chat_both_ways(alice, bob, "before")
    os.kill(bob.process.proc.pid, signal.SIGSTOP)
    sent = []
    for n in range(3):  # before the link is known dead: sent into the silence
        status, body = await alice.call("POST", "/api/messages", {"text": f"early {n}"})
        assert status == 201, body
        sent.append(body["message"])
    await reconnecting(alice, at_least=1)
    for n in range(3):  # while reconnecting: taken, shown as sending
        status, body = await alice.call("POST", "/api/messages", {"text": f"late {n}"})
        assert status == 201, body
        assert body["message"]["status"] == "sending"
        sent.append(body["message"])
    os.kill(bob.process.proc.pid, signal.SIGCONT)
    texts = [m["text"] for m in sent]
    got = [(await bob.event("message"))["message"]["text"] for _ in texts]
    assert got == texts
    for message in sent:
        await alice.event("message-status", message_id=message["message_id"], status="delivered")
    await chat_both_ways(alice, bob, "after")  # nothing else arrived in between
    status, state = await bob.call("GET", "/api/state")
    peer_texts = [m["text"] for m in state["session"]["messages"] if m["author"] == "peer"]
    assert peer_texts == ["before alice", *texts, "after alice"]


async def test_a_killed_peer_the_survivor_reconnects_then_ends_and_says_not_delivered(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    await connect(alice, bob)
    await chat_both_ways(alice, bob, "before")
    bob.process.proc.kill()
    await bob.process.proc.wait()
    told = await reconnecting(alice, at_least=1)
    assert told["ended"] is None
    status, body = await alice.call("POST", "/api/messages", {"text": "are you there?"})
    assert status == 201 and body["message"]["status"] == "sending", body
    status, ended = await alice.call("POST", "/api/session/end")
    assert status == 200, ended
    await alice.event(
        "message-status",
        message_id=body["message"]["message_id"],
        status="failed",
        code="not_delivered",
    )
    await alice.phase("ended")
    log = alice.process.log_path.read_text()
    assert "Task exception was never retrieved" not in log
    assert "are you there?" not in log


async def test_the_rendezvous_gone_changes_nothing_and_back_it_carries_the_reconnect(
    tmp_path: Path,
) -> None:
    database = str(tmp_path / "rendezvous.db")
    first, url = await start_rendezvous(tmp_path, "--database", database)
    port = url.rsplit(":", 1)[1].split("/")[0]
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
    )
    again: Process | None = None
    try:
        await connect(alice, bob)
        first.proc.kill()  # a crash: the sockets drop, the chat goes on
        await first.proc.wait()
        await chat_both_ways(alice, bob, "rendezvous down")
        _, state = await alice.call("GET", "/api/state")
        assert state["session"]["phase"] == "ready"
        os.kill(bob.process.proc.pid, signal.SIGSTOP)  # an outage, the rendezvous still down
        await reconnecting(alice, at_least=1)
        again, _ = await start_rendezvous(tmp_path, "--database", database, "--port", port)
        os.kill(bob.process.proc.pid, signal.SIGCONT)
        await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        await chat_both_ways(alice, bob, "after")
    finally:
        if bob.process.proc.returncode is None:
            os.kill(bob.process.proc.pid, signal.SIGCONT)
        await asyncio.gather(alice.close(), bob.close())
        if again is not None:
            await again.stop()
