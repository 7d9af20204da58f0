"""A daemon's memory stays bounded whatever the file's size (issue #14: at most 32 MiB per
transfer): two real daemons on 127.0.0.1 move 1 GiB through the API a browser uses
(made on the fly by the test and hashed as it goes up, hashed as it comes down: the
test never holds the file), while both daemons' resident memory is sampled.

The bound, per daemon: its RSS with the session up and no file (`idle`), plus
- 32 MiB for the transfer: the sender keeps at most 16 MiB not acknowledged
  (`transfer.WINDOW_BYTES`), the receiver at most 16 MiB not yet downloaded; one daemon
  is only one of the two, so 32 MiB covers either with room to spare;
- 16 MiB of slack for what sits outside those windows while bytes move: an upload
  slice (1 MiB, read whole by aiohttp, and its copy into the window), the files
  channel's buffered amount (`peer_files.HIGH_WATER_BYTES`, 256 KiB) and SCTP's
  congestion window in flight, the receiver's SCTP reassembly (1 MiB window), the
  download's write buffer, and freed memory the allocator has not returned yet.
Both the samples (psutil, every 50 ms) and the kernel's own peak (VmHWM, reset before
the transfer through /proc/PID/clear_refs where the kernel lets us) must stay under it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import psutil
import pytest

from tests.files_client import SLICE, MiB, content, file_event, offer, put_slice
from tests.processes import Daemon, Process, start_daemon, start_rendezvous
from tests.test_orbitd_chat import connect

SIZE = 1024 * MiB
TRANSFER_ALLOWANCE = 32 * MiB
SLACK = 16 * MiB
SAMPLE_SECONDS = 0.05
STREAM = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)


@pytest.fixture
async def pair(tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    rendezvous: Process
    rendezvous, url = await start_rendezvous(tmp_path)
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
    )
    await connect(alice, bob)
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())
    await rendezvous.stop()


def rss(daemon: Daemon) -> int:
    return int(psutil.Process(daemon.process.proc.pid).memory_info().rss)


def reset_peak(daemon: Daemon) -> bool:
    """Reset the kernel's peak RSS of the daemon (VmHWM); False where it is not allowed."""
    try:
        Path(f"/proc/{daemon.process.proc.pid}/clear_refs").write_text("5")
    except OSError:
        return False
    return True


def kernel_peak(daemon: Daemon) -> int:
    status = Path(f"/proc/{daemon.process.proc.pid}/status").read_text()
    found = re.search(r"^VmHWM:\s+(\d+) kB", status, re.MULTILINE)
    assert found is not None
    return int(found.group(1)) * 1024


class Sampler:
    """The largest RSS of each daemon, sampled until stopped."""

    def __init__(self, *daemons: Daemon) -> None:
        self.daemons = daemons
        self.peak = [0] * len(daemons)
        self.samples = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for n, daemon in enumerate(self.daemons):
                self.peak[n] = max(self.peak[n], rss(daemon))
            self.samples += 1
            await asyncio.sleep(SAMPLE_SECONDS)

    async def stop(self) -> list[int]:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return self.peak


async def upload_hashed(daemon: Daemon, file_id: str, size: int) -> str:
    """The test file up, slice by slice from the offset the daemon asks for; its SHA-256
    (of what was sent, in order)."""
    digest, offset = hashlib.sha256(), 0
    while offset < size:
        data = content(offset, min(SLICE, size - offset))
        status, body = await put_slice(daemon.http, daemon.base, file_id, offset, data)
        assert status == 200, body
        assert body["next_offset"] == offset + len(data)  # nothing refused, nothing skipped
        digest.update(data)
        offset += len(data)
    return digest.hexdigest()


async def download_hashed(daemon: Daemon, file_id: str) -> tuple[int, str]:
    digest, count = hashlib.sha256(), 0
    url = f"{daemon.base}/api/files/{file_id}/data"
    async with daemon.http.get(url, timeout=STREAM) as response:
        assert response.status == 200, await response.text()
        async for piece in response.content.iter_chunked(256 * 1024):
            digest.update(piece)
            count += len(piece)
    return count, digest.hexdigest()


async def test_both_daemons_stay_bounded_during_a_1_gib_transfer(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    idle = [rss(alice), rss(bob)]
    bounds = [x + TRANSFER_ALLOWANCE + SLACK for x in idle]
    peaks_reset = all([reset_peak(alice), reset_peak(bob)])
    sent = await offer(alice, "big.bin", SIZE, "application/octet-stream")
    await file_event(bob, sent["id"], "offered")
    status, accepted = await bob.call("POST", f"/api/files/{sent['id']}/accept")
    assert status == 200 and accepted["file"]["state"] == "transferring"
    sampler = Sampler(alice, bob)
    try:
        up, (count, down) = await asyncio.gather(
            upload_hashed(alice, sent["id"], SIZE), download_hashed(bob, sent["id"])
        )
    finally:
        sampled = await sampler.stop()
    assert count == SIZE and down == up
    await file_event(alice, sent["id"], "complete")
    assert sampler.samples > 10
    for name, peak, bound, before in zip(("alice", "bob"), sampled, bounds, idle, strict=True):
        assert peak <= bound, (
            f"{name}: RSS reached {peak / MiB:.1f} MiB, over {bound / MiB:.1f} MiB "
            f"(idle {before / MiB:.1f} MiB + 32 MiB + 16 MiB)"
        )
    if peaks_reset:
        for daemon, bound in zip((alice, bob), bounds, strict=True):
            peak = kernel_peak(daemon)
            assert peak <= bound, f"{daemon.name}: VmHWM {peak / MiB:.1f} MiB > {bound / MiB:.1f}"
