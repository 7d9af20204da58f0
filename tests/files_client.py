"""A browser's side of the file API (docs/ui-api.md), for tests: offer a file, upload
deterministic bytes made on the fly in 1 MiB slices, download and hash on the fly (a
200 MiB file is never held in a test's memory)."""

from __future__ import annotations

import asyncio
import hashlib
import random
from typing import Any

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


async def put_slice(daemon: Daemon, file_id: str, offset: int, data: bytes) -> tuple[int, Any]:
    url = f"{daemon.base}/api/files/{file_id}/data?offset={offset}"
    headers = {"Content-Type": "application/octet-stream"}
    async with daemon.http.put(url, data=data, headers=headers) as response:
        return response.status, await response.json()


async def upload(daemon: Daemon, file_id: str, size: int, *, stop_at: int | None = None) -> int:
    """Upload the test file from offset 0 (or as far as `stop_at`); the offset reached.
    Stops early when the daemon says the file is no longer sending."""
    offset = 0
    while offset < size and (stop_at is None or offset < stop_at):
        status, body = await put_slice(
            daemon, file_id, offset, content(offset, min(SLICE, size - offset))
        )
        if status == 409 and body["error"] == "file_not_sending":
            return offset
        assert status == 200, body
        offset = body["next_offset"]
    return offset


async def download(daemon: Daemon, file_id: str) -> tuple[int, str, int]:
    """GET the file's data: the status, the SHA-256 of what came and how many bytes."""
    digest, count = hashlib.sha256(), 0
    async with daemon.http.get(f"{daemon.base}/api/files/{file_id}/data") as response:
        if response.status != 200:
            return response.status, "", 0
        try:
            async for piece in response.content.iter_chunked(256 * 1024):
                digest.update(piece)
                count += len(piece)
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
