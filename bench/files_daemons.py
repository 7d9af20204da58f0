"""One file from daemon to daemon through the API a browser uses, chat alongside, RSS sampled.

The host offers a file of `size` bytes (`POST /api/files`), the guest accepts it when
its `file` event says `offered`; then at once: this process uploads it in 1 MiB slices
(`PUT /api/files/{id}/data?offset=`, from the offset the daemon asks for), reads the
guest's download (`GET /api/files/{id}/data`, counting bytes: the daemon checks the
SHA-256 itself and withholds the last bytes on a mismatch), sends paced chat messages
host -> guest (the same direction as the file: they wait behind it in the host's SCTP
queue, the worst case), and samples both daemons' resident memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import time
from dataclasses import dataclass

import aiohttp

from .daemons import Daemon
from .orbitd_load import MessageResult, chat, connect, end
from .pacing import MessageParams
from .procs import MIB, BenchError, RssPair

SLICE = 1024 * 1024
READ_BYTES = 256 * 1024
RSS_EVERY_SECONDS = 0.1
STREAM_TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)


@dataclass(frozen=True)
class FileParams:
    size: int
    timeout: float
    """Seconds the transfer may take, from the offer to the last byte downloaded."""
    session_timeout: float


@dataclass(frozen=True)
class DaemonFileResult:
    size: int
    downloaded: int
    seconds: float
    """From the first slice uploaded to the last byte downloaded."""
    mb_per_s: float
    messages: MessageResult
    rss_before: RssPair
    """Both daemons with the session up, before the offer."""
    rss_peak_during: RssPair
    """The most each had in the samples taken every RSS_EVERY_SECONDS during the transfer."""
    rss_after: RssPair
    rss_samples: int
    cpu_seconds: RssPair
    """CPU time of each daemon during the transfer (the fields hold seconds, not MiB)."""


def slice_bytes(block: bytes, offset: int, length: int) -> bytes:
    """The file's bytes at `offset`: a random block, its first 8 bytes the slice's number
    (every slice differs, and making one costs a copy, not a random generator)."""
    return ((offset // SLICE).to_bytes(8, "big") + block[8:])[:length]


async def upload(host: Daemon, file_id: str, size: int) -> int:
    """Every slice, from the offset the daemon asks for, until the file is all taken."""
    block, offset = os.urandom(SLICE), 0
    url = f"{host.base}/api/files/{file_id}/data"
    headers = {"Content-Type": "application/octet-stream"}
    while offset < size:
        data = slice_bytes(block, offset, min(SLICE, size - offset))
        async with host.http.put(
            url, params={"offset": str(offset)}, data=data, headers=headers, timeout=STREAM_TIMEOUT
        ) as response:
            answer = await response.json()
        if response.status == 409 and answer.get("error") == "wrong_offset":
            offset = int(answer["next_offset"])
            continue
        if response.status != 200:
            raise BenchError(f"upload at {offset}: {response.status} {answer}")
        offset = int(answer["next_offset"])
    return offset


async def download(guest: Daemon, file_id: str) -> tuple[int, float]:
    """(bytes read, perf_counter() when the last came)."""
    count, last = 0, time.perf_counter()
    url = f"{guest.base}/api/files/{file_id}/data"
    async with guest.http.get(url, timeout=STREAM_TIMEOUT) as response:
        if response.status != 200:
            raise BenchError(f"download: {response.status} {await response.text()}")
        async for piece in response.content.iter_chunked(READ_BYTES):
            count += len(piece)
            last = time.perf_counter()
    return count, last


async def _offered(guest: Daemon, seconds: float) -> str:
    event = await guest.next(
        lambda e: e.kind == "file" and e.body["file"].get("state") == "offered", seconds
    )
    return str(event.body["file"]["id"])


class RssSampler:
    """The most resident memory of each daemon, sampled until stopped."""

    def __init__(self, host: Daemon, guest: Daemon) -> None:
        self.host, self.guest = host, guest
        self.peak = [0, 0]
        self.samples = 0
        self._task = asyncio.create_task(self._run())

    async def _run(self) -> None:
        while True:
            for n, side in enumerate((self.host, self.guest)):
                self.peak[n] = max(self.peak[n], side.server.rss_bytes())
            self.samples += 1
            await asyncio.sleep(RSS_EVERY_SECONDS)

    async def stop(self) -> RssPair:
        self._task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._task
        return RssPair(self.peak[0] / MIB, self.peak[1] / MIB)


async def measure_file(
    host: Daemon, guest: Daemon, params: FileParams, messages: MessageParams
) -> DaemonFileResult:
    token, _timing, _sas = await connect(host, guest, 0, params.session_timeout)
    before = RssPair.of(host.server, guest.server)
    body = {"name": "bench.bin", "size": params.size, "type": "application/octet-stream"}
    offered = await host.expect(201, "POST", "/api/files", body)
    file_id = str(offered["file"]["id"])
    guest_id = await _offered(guest, params.session_timeout)
    await guest.expect(200, "POST", f"/api/files/{guest_id}/accept")
    sampler = RssSampler(host, guest)
    cpu = (host.server.cpu_seconds(), guest.server.cpu_seconds())
    started = time.perf_counter()
    try:
        async with asyncio.timeout(params.timeout):
            uploaded, (downloaded, last), sent = await asyncio.gather(
                upload(host, file_id, params.size),
                download(guest, guest_id),
                chat(host, guest, messages),
            )
    finally:
        peak = await sampler.stop()
    used = RssPair(host.server.cpu_seconds() - cpu[0], guest.server.cpu_seconds() - cpu[1])
    if downloaded != params.size or uploaded != params.size:
        raise BenchError(f"uploaded {uploaded}, downloaded {downloaded} of {params.size}")
    after = RssPair.of(host.server, guest.server)
    await end(host, guest, token)
    seconds = last - started
    return DaemonFileResult(
        size=params.size,
        downloaded=downloaded,
        seconds=seconds,
        mb_per_s=downloaded / seconds / 1e6,
        messages=sent,
        rss_before=before,
        rss_peak_during=peak,
        rss_after=after,
        rss_samples=sampler.samples,
        cpu_seconds=used,
    )
