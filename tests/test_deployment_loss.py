"""Instance loss in the shipped deployment (tests/deployment.py, with the second instance
as nginx's backup so that every socket is known to be on the first): the first is killed
(SIGKILL) under running sessions. The daemons' signaling sockets come
back through nginx on the other instance; a session whose data channel is up notices
nothing (messages keep flowing both ways, its phase never leaves ready), and a session still
being set up (its guest joins after the kill) completes through the surviving instance.
Then the killed instance comes back and the other one stops gracefully (close 1001): the
sockets move again and the chat goes on."""

from __future__ import annotations

import asyncio
import json
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
import pytest_asyncio

from rendezvous.service import token_tag
from tests.deployment import INSTANCES, Topology, failover_deployment
from tests.processes import EVENT_WAIT, Daemon, start_daemon

__all__ = ["failover_deployment"]  # the fixture
pytestmark = pytest.mark.asyncio(loop_scope="module")


@dataclass
class PhaseWatch:
    """Every phase a daemon's session shows, from a UI socket of its own."""

    daemon: Daemon
    phases: list[str] = field(default_factory=list)
    task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        ws = await self.daemon.http.ws_connect(self.daemon.base + "/api/events")

        async def read() -> None:
            async with ws:
                async for msg in ws:
                    if msg.type is aiohttp.WSMsgType.TEXT:
                        event = msg.json()
                        if event.get("type") == "session" and event.get("session"):
                            self.phases.append(event["session"]["phase"])

        self.task = asyncio.create_task(read())

    def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()


async def start_trusting(topology: Topology, tmp_path: Path, name: str) -> Daemon:
    return await start_daemon(
        tmp_path, name, topology.url, "--rendezvous-ca-file", str(topology.pki.ca_file)
    )


async def exchange(alice: Daemon, bob: Daemon, text: str) -> None:
    """A message each way, each delivered."""
    for sender, receiver in ((alice, bob), (bob, alice)):
        status, sent = await sender.call("POST", "/api/messages", {"text": f"{text} {sender.name}"})
        assert status == 201, sent
        got = await receiver.event("message")
        assert got["message"]["text"] == f"{text} {sender.name}"
        await sender.event(
            "message-status", message_id=sent["message"]["message_id"], status="delivered"
        )


def sockets_open(topology: Topology, instance: str, token: str, since: int = 0) -> set[str]:
    """The roles whose socket for `token` opened on `instance` after its first `since` log
    lines."""
    tag = token_tag(token)
    return {
        line["role"]
        for line in topology.log(instance)[since:]
        if line.get("msg") == "socket open" and line.get("token") == tag
    }


async def until_sockets_open(
    topology: Topology, instance: str, token: str, roles: set[str], since: int = 0
) -> None:
    async with asyncio.timeout(EVENT_WAIT):
        while not roles <= sockets_open(topology, instance, token, since):  # noqa: ASYNC110
            await asyncio.sleep(0.05)  # the instance's log file: nothing to wait on


def redials(daemon: Daemon) -> list[dict[str, object]]:
    """Each time the daemon's signaling socket closed: the close code and the wait."""
    lines = daemon.process.log_path.read_text().splitlines()
    return [
        {"close_code": line["close_code"], "wait": line["wait"]}
        for line in map(json.loads, filter(lambda text: text.startswith("{"), lines))
        if line.get("msg") == "signaling socket redial"
    ]


@pytest_asyncio.fixture(loop_scope="module")
async def daemons(failover_deployment: Topology, tmp_path: Path) -> AsyncIterator[list[Daemon]]:
    names = ("alice", "bob", "carol", "dave")
    started = await asyncio.gather(
        *(start_trusting(failover_deployment, tmp_path, name) for name in names)
    )
    yield list(started)
    await asyncio.gather(*(daemon.close() for daemon in started))


async def test_an_instance_killed_under_running_sessions(
    failover_deployment: Topology, daemons: list[Daemon]
) -> None:
    deployment = failover_deployment
    alice, bob, carol, dave = daemons
    _, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
    await bob.call("POST", "/api/join", {"invite": created["invite"]})
    await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
    chat_token = created["invite"].split("-")[0]
    watches = [PhaseWatch(alice), PhaseWatch(bob)]
    for watch in watches:
        await watch.start()
    await exchange(alice, bob, "before")
    # Carol's session waits for its guest, its socket open.
    status, waiting = await carol.call("POST", "/api/tokens", {"ttl_minutes": 60})
    assert status == 201
    setup_token = waiting["invite"].split("-")[0]

    # Every socket is on the first instance (nginx's second is its backup): it dies.
    victim, survivor = INSTANCES
    await until_sockets_open(deployment, victim, chat_token, {"host", "guest"})
    await until_sockets_open(deployment, victim, setup_token, {"host"})
    mark = len(deployment.log(survivor))
    await deployment.instances[victim].stop(signal.SIGKILL)

    # The chat goes on over its data channel, and the sockets that were on the victim come
    # back on the survivor.
    await exchange(alice, bob, "during")
    await until_sockets_open(deployment, survivor, chat_token, {"host", "guest"}, mark)
    await until_sockets_open(deployment, survivor, setup_token, {"host"}, mark)
    await exchange(alice, bob, "after")

    # Dave joins Carol's session now: set up entirely through the survivor.
    status, joined = await dave.call("POST", "/api/join", {"invite": waiting["invite"]})
    assert status == 200, joined
    await asyncio.gather(carol.phase("ready"), dave.phase("ready"))
    await exchange(carol, dave, "new")

    # The killed instance comes back, the survivor stops gracefully: its sockets close with
    # 1001 and come back (at once) on the first, and the chat still notices nothing.
    await deployment.start_instance(victim)
    await deployment.until_nginx_uses(victim)
    mark = len(deployment.log(victim))
    assert await deployment.instances[survivor].stop(signal.SIGTERM) == 0
    for token in (chat_token, setup_token):
        await until_sockets_open(deployment, victim, token, {"host", "guest"}, mark)
    for daemon in daemons:  # each heard 1001 through nginx and dialled again at once
        assert {"close_code": 1001, "wait": 0.0} in redials(daemon), daemon.name
    await exchange(alice, bob, "moved again")

    for watch in watches:
        watch.stop()
        assert set(watch.phases) == {"ready"}, watch.phases
    await deployment.start_instance(survivor)  # as it was, for a test after this one
