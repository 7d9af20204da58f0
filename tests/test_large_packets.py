"""Feature `large-packets` between two real daemons on 127.0.0.1: both send SCTP packets
of 16 KiB once both announce it (and again on the connection a reconnect makes), none
when one does not announce it; files arrive whole either way."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path
from typing import Any

from orbitcore.protocol.version import FEATURES
from orbitd.adapters.sctp_packets import LOOPBACK_USER_DATA
from tests.files_client import MiB, download, expected_sha256, file_event, offer, upload
from tests.processes import Daemon, start_daemon
from tests.test_orbitd_chat import connect

WITHOUT = ",".join(f for f in FEATURES if f != "large-packets")


async def start_pair(
    tmp_path: Path, rendezvous: str, bob_environ: dict[str, str] | None = None
) -> tuple[Daemon, Daemon]:
    return await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous),
        start_daemon(tmp_path, "bob", rendezvous, environ=bob_environ),
    )


def large_packets_logged(daemon: Daemon) -> list[dict[str, Any]]:
    lines = (json.loads(x) for x in daemon.process.log_path.read_text().splitlines() if x)
    return [x for x in lines if x.get("msg") == "large packets"]


async def send_file(alice: Daemon, bob: Daemon, size: int) -> None:
    sent = await offer(alice, "packets.bin", size)
    await file_event(bob, sent["id"], "offered")
    uploading = asyncio.create_task(upload(alice, sent["id"], size))
    status, _ = await bob.call("POST", f"/api/files/{sent['id']}/accept")
    assert status == 200
    assert await download(bob, sent["id"]) == (200, expected_sha256(size), size)
    assert await uploading == size


async def test_both_announce_both_send_large_packets_also_after_a_reconnect(
    tmp_path: Path, rendezvous: str
) -> None:
    alice, bob = await start_pair(tmp_path, rendezvous)
    try:
        await connect(alice, bob)
        for daemon in (alice, bob):
            assert [(x["path"], x["bytes"]) for x in large_packets_logged(daemon)] == [
                ("loopback", LOOPBACK_USER_DATA)
            ]
        await send_file(alice, bob, 8 * MiB + 5)
        os.kill(bob.process.proc.pid, signal.SIGSTOP)  # a silent link: alice rebuilds it
        await alice.phase("reconnecting")
        os.kill(bob.process.proc.pid, signal.SIGCONT)
        await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        await send_file(alice, bob, 8 * MiB + 5)
        for daemon in (alice, bob):
            assert len(large_packets_logged(daemon)) == 2  # the new connection too
    finally:
        os.kill(bob.process.proc.pid, signal.SIGCONT)
        await asyncio.gather(alice.close(), bob.close())


async def test_a_peer_that_does_not_announce_it_gets_aiortcs_packets(
    tmp_path: Path, rendezvous: str
) -> None:
    alice, bob = await start_pair(tmp_path, rendezvous, {"ORBITD_ANNOUNCE_FEATURES": WITHOUT})
    try:
        await connect(alice, bob)
        state = (await alice.call("GET", "/api/state"))[1]
        assert "large-packets" not in state["session"]["protocol"]["features"]
        await send_file(alice, bob, 4 * MiB)
        assert large_packets_logged(alice) == large_packets_logged(bob) == []
    finally:
        await asyncio.gather(alice.close(), bob.close())
