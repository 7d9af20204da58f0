"""A file through a reconnect on 127.0.0.1 (feature `reconnect`): the receiving daemon is
stopped (SIGSTOP: the sender hears nothing, as on a dead network) in the middle of the
transfer; the sender shows the file `paused`; once the link is rebuilt the transfer goes
on from what the receiver has and completes with the same SHA-256. (The same across
two NATs with a cut uplink: tests/test_files_outage.py.)"""

from __future__ import annotations

import asyncio
import os
import signal
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.files_client import MiB, download, expected_sha256, file_event, listed, offer, upload
from tests.processes import Daemon, start_daemon, start_rendezvous
from tests.test_orbitd_chat import connect


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    rendezvous, url = await start_rendezvous(tmp_path)
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
    )
    yield alice, bob
    for daemon in (alice, bob):
        if daemon.process.proc.returncode is None:
            os.kill(daemon.process.proc.pid, signal.SIGCONT)
    await asyncio.gather(alice.close(), bob.close())
    await rendezvous.stop()


@pytest.mark.parametrize("stopped", ["receiver", "sender"])
async def test_a_transfer_cut_by_a_reconnect_resumes_and_completes(
    pair: tuple[Daemon, Daemon], stopped: str
) -> None:
    alice, bob = pair
    await connect(alice, bob)
    size = 48 * MiB
    sent = await offer(alice, "resumed.bin", size)
    await file_event(bob, sent["id"], "offered")
    await bob.call("POST", f"/api/files/{sent['id']}/accept")
    # Cut while both go: chunks acknowledged, held, and in flight (lost with the old
    # connection: sent again from what the receiver says it has).
    uploading = asyncio.create_task(upload(alice, sent["id"], size))
    # A reader of at most ~12 MB/s: the transfer is still going when the link is cut.
    downloading = asyncio.create_task(download(bob, sent["id"], pause=0.02))
    async with asyncio.timeout(30):
        while (await listed(bob, sent["id"]))["transferred"] < 8 * MiB:
            await bob.event("file")
    silent, survivor = (bob, alice) if stopped == "receiver" else (alice, bob)
    os.kill(silent.process.proc.pid, signal.SIGSTOP)
    paused = await file_event(survivor, sent["id"], "paused")
    assert paused["transferred"] < size
    os.kill(silent.process.proc.pid, signal.SIGCONT)
    await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
    status, digest, count = await asyncio.wait_for(downloading, 60)
    assert (status, count, digest) == (200, size, expected_sha256(size))
    assert await asyncio.wait_for(uploading, 30) == size
    await file_event(alice, sent["id"], "complete")
    for daemon in (alice, bob):
        shown = await listed(daemon, sent["id"])
        assert (shown["state"], shown["held_bytes"]) == ("complete", 0)
        assert "Task exception was never retrieved" not in daemon.process.log_path.read_text()
