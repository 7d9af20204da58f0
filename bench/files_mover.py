"""The browser's part of a file transfer, in a process of its own (`bench files`).

`python -m bench.files_mover JOB` uploads a file to the host daemon in 1 MiB slices
(`PUT /api/files/{id}/data?offset=`, from the offset the daemon asks for) and reads the
guest's download (`GET /api/files/{id}/data`, counting bytes: the daemon checks the
SHA-256 itself and withholds the last bytes on a mismatch), both at once, then prints
one JSON line: {"uploaded", "downloaded", "started", "last"} (`time.perf_counter()`,
CLOCK_MONOTONIC: comparable with the parent's) or {"error"}. JOB is a JSON object:
{"host", "guest": {"base", "cookies"}, "file_id", "guest_id", "size", "timeout"}.

Moving a gigabyte keeps a Python process busy; in the benchmark's own process it would
delay the chat messages it times, so the bytes move here.
"""

from __future__ import annotations

import asyncio
import json
import os
import sys
import time
from typing import Any

import aiohttp

SLICE = 1024 * 1024
READ_BYTES = 256 * 1024
TIMEOUT = aiohttp.ClientTimeout(total=None, sock_connect=10, sock_read=60)


def slice_bytes(block: bytes, offset: int, length: int) -> bytes:
    """The file's bytes at `offset`: a random block, its first 8 bytes the slice's number
    (every slice differs, and making one costs a copy, not a random generator)."""
    return ((offset // SLICE).to_bytes(8, "big") + block[8:])[:length]


def client(side: dict[str, Any]) -> aiohttp.ClientSession:
    return aiohttp.ClientSession(
        headers={"Origin": side["base"]}, cookies=side["cookies"], timeout=TIMEOUT
    )


async def upload(http: aiohttp.ClientSession, base: str, file_id: str, size: int) -> int:
    """Every slice, from the offset the daemon asks for, until the file is all taken."""
    block, offset = os.urandom(SLICE), 0
    url = f"{base}/api/files/{file_id}/data"
    headers = {"Content-Type": "application/octet-stream"}
    while offset < size:
        data = slice_bytes(block, offset, min(SLICE, size - offset))
        async with http.put(url, params={"offset": str(offset)}, data=data, headers=headers) as r:
            answer = await r.json()
        if r.status == 409 and answer.get("error") == "wrong_offset":
            offset = int(answer["next_offset"])
            continue
        if r.status != 200:
            raise RuntimeError(f"upload at {offset}: {r.status} {answer}")
        offset = int(answer["next_offset"])
    return offset


async def download(http: aiohttp.ClientSession, base: str, file_id: str) -> tuple[int, float]:
    """(bytes read, perf_counter() when the last came)."""
    count, last = 0, time.perf_counter()
    async with http.get(f"{base}/api/files/{file_id}/data") as response:
        if response.status != 200:
            raise RuntimeError(f"download: {response.status} {await response.text()}")
        async for piece in response.content.iter_chunked(READ_BYTES):
            count += len(piece)
            last = time.perf_counter()
    return count, last


async def move(job: dict[str, Any]) -> dict[str, Any]:
    async with client(job["host"]) as host, client(job["guest"]) as guest:
        started = time.perf_counter()
        async with asyncio.timeout(float(job["timeout"])):
            uploaded, (downloaded, last) = await asyncio.gather(
                upload(host, job["host"]["base"], job["file_id"], int(job["size"])),
                download(guest, job["guest"]["base"], job["guest_id"]),
            )
    return {"uploaded": uploaded, "downloaded": downloaded, "started": started, "last": last}


def main() -> None:
    try:
        result = asyncio.run(move(json.loads(sys.argv[1])))
    except (aiohttp.ClientError, RuntimeError, TimeoutError, KeyError, ValueError) as exc:
        result = {"error": f"{type(exc).__name__}: {exc}"}
    print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
