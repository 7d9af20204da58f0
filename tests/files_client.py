"""A browser's side of the file API (docs/ui-api.md), for tests: offer a file, upload
deterministic bytes made on the fly in 1 MiB slices, download and hash on the fly (a
200 MiB file is never held in a test's memory)."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

import aiohttp

from tests.processes import EVENT_WAIT, Daemon

SLICE = 1024 * 1024
MiB = 1024 * 1024


def content(offset: int, length: int) -> bytes:
    """The test file's bytes at `offset` (slices start at multiples of SLICE)."""
    assert offset % SLICE == 0
    return random.Random(offset // SLICE).randbytes(length)


def expected_sha256(size: int) -> str:
    digest = hashlib.sha256()
    for offset in range(0, size, SLICE):
        digest.update(content(offset, min(SLICE, size - offset)))
    return digest.hexdigest()


async def offer(daemon: Daemon, name: str, size: int, kind: str = "") -> dict[str, Any]:
    status, body = await daemon.call(
        "POST", "/api/files", {"name": name, "size": size, "type": kind}
    )
    assert status == 201, body
    file: dict[str, Any] = body["file"]
    return file


async def put_slice(
    http: aiohttp.ClientSession, base: str, file_id: str, offset: int, data: bytes
) -> tuple[int, Any]:
    url = f"{base}/api/files/{file_id}/data?offset={offset}"
    headers = {"Content-Type": "application/octet-stream"}
    async with http.put(url, data=data, headers=headers) as response:
        return response.status, await response.json()


async def upload(daemon: Daemon, file_id: str, size: int) -> int:
    return await upload_with(daemon.http, daemon.base, file_id, size)


async def upload_with(http: aiohttp.ClientSession, base: str, file_id: str, size: int) -> int:
    """Upload the test file from offset 0; the offset reached. Stops early when the
    daemon says the file is no longer sending."""
    offset = 0
    while offset < size:
        data = content(offset, min(SLICE, size - offset))
        status, body = await put_slice(http, base, file_id, offset, data)
        if status == 409 and body["error"] == "file_not_sending":
            return offset
        assert status == 200, body
        offset = body["next_offset"]
    return offset


async def download(daemon: Daemon, file_id: str, *, pause: float = 0.0) -> tuple[int, str, int]:
    return await download_with(daemon.http, daemon.base, file_id, pause=pause)


async def download_with(
    http: aiohttp.ClientSession, base: str, file_id: str, *, pause: float = 0.0
) -> tuple[int, str, int]:
    """GET the file's data: the status, the SHA-256 of what came and how many bytes.
    `pause`: seconds between reads of 256 KiB (a slow reader, at most 256 KiB / pause)."""
    digest, count = hashlib.sha256(), 0
    async with http.get(f"{base}/api/files/{file_id}/data") as response:
        if response.status != 200:
            return response.status, "", 0
        try:
            async for piece in response.content.iter_chunked(256 * 1024):
                digest.update(piece)
                count += len(piece)
                if pause:
                    await asyncio.sleep(pause)  # a pace, not a wait
        except Exception:  # an aborted response: what came is returned
            return -1, digest.hexdigest(), count
    return 200, digest.hexdigest(), count


async def file_event(daemon: Daemon, file_id: str, state: str) -> dict[str, Any]:
    """The next `file` event of this file in `state` (others are skipped)."""
    async with asyncio.timeout(EVENT_WAIT):
        while True:
            event = await daemon.event("file")
            file: dict[str, Any] = event["file"]
            if file["id"] == file_id and file["state"] == state:
                return file


async def listed(daemon: Daemon, file_id: str) -> dict[str, Any]:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200
    found: dict[str, Any] = next(f for f in state["session"]["files"] if f["id"] == file_id)
    return found
