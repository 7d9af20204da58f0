"""One file from daemon to daemon through the API a browser uses, chat alongside, RSS sampled.

The host offers a file of `size` bytes (`POST /api/files`), the guest accepts it when
its `file` event says `offered`; then at once: a `bench.files_mover` process uploads
it to the host and downloads it from the guest (with this process's login cookies),
while this process sends paced chat messages host -> guest (the same direction as the
file: they wait behind it in the host's SCTP queue, the worst case) and samples both
daemons' resident memory.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from dataclasses import dataclass
from typing import Any

from yarl import URL

from .daemons import Daemon
from .orbitd_load import MessageResult, chat, connect, end
from .pacing import MessageParams
from .procs import MIB, REPO, BenchError, RssPair, python_module

RSS_EVERY_SECONDS = 0.1


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


def _side(daemon: Daemon) -> dict[str, Any]:
    """A daemon's address and this process's login cookies for it (for the mover)."""
    cookies = daemon.http.cookie_jar.filter_cookies(URL(daemon.base))
    return {"base": daemon.base, "cookies": {k: m.value for k, m in cookies.items()}}


async def move(
    host: Daemon, guest: Daemon, file_id: str, guest_id: str, params: FileParams
) -> dict[str, Any]:
    """Upload and download in a `bench.files_mover` process: its JSON answer."""
    job = {
        "host": _side(host),
        "guest": _side(guest),
        "file_id": file_id,
        "guest_id": guest_id,
        "size": params.size,
        "timeout": params.timeout,
    }
    argv = python_module("bench.files_mover", json.dumps(job))
    proc = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, cwd=REPO, stdin=asyncio.subprocess.DEVNULL
    )
    try:
        out, _ = await proc.communicate()
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
    try:
        answer: dict[str, Any] = json.loads(out.decode().strip().splitlines()[-1])
    except (ValueError, IndexError):
        raise BenchError(f"the mover said nothing usable (exit {proc.returncode})") from None
    if "error" in answer:
        raise BenchError(f"the mover failed: {answer['error']}")
    return answer


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
    try:
        moved, sent = await asyncio.gather(
            move(host, guest, file_id, guest_id, params), chat(host, guest, messages)
        )
    finally:
        peak = await sampler.stop()
    used = RssPair(host.server.cpu_seconds() - cpu[0], guest.server.cpu_seconds() - cpu[1])
    uploaded, downloaded = int(moved["uploaded"]), int(moved["downloaded"])
    if downloaded != params.size or uploaded != params.size:
        raise BenchError(f"uploaded {uploaded}, downloaded {downloaded} of {params.size}")
    after = RssPair.of(host.server, guest.server)
    await end(host, guest, token)
    seconds = float(moved["last"]) - float(moved["started"])
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
