"""Files between two real daemons (real aiortc, the real rendezvous on 127.0.0.1), through
the HTTP API a browser uses: they arrive with the same SHA-256; declined; cancelled by
either side mid-transfer, with both sides told and every buffer freed."""

from __future__ import annotations

import asyncio
import io
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from tests.files_client import (
    MiB,
    download,
    expected_sha256,
    file_event,
    listed,
    offer,
    upload,
)
from tests.processes import Daemon, start_daemon
from tests.test_orbitd_chat import connect

MARKER = "Zebra-Quokka-7731"


@pytest.fixture
async def pair(tmp_path: Path, rendezvous: str) -> AsyncIterator[tuple[Daemon, Daemon]]:
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous), start_daemon(tmp_path, "bob", rendezvous)
    )
    await connect(alice, bob)
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())


async def send_and_receive(alice: Daemon, bob: Daemon, name: str, size: int) -> None:
    sent = await offer(alice, name, size, "application/octet-stream")
    assert (sent["state"], sent["direction"], sent["upload_offset"]) == ("offered", "outgoing", 0)
    seen = await file_event(bob, sent["id"], "offered")
    assert (seen["name"], seen["size"], seen["direction"]) == (name, size, "incoming")
    uploading = asyncio.create_task(upload(alice, sent["id"], size))
    status, accepted = await bob.call("POST", f"/api/files/{sent['id']}/accept")
    assert status == 200 and accepted["file"]["state"] == "transferring"
    status, digest, count = await download(bob, sent["id"])
    assert (status, count, digest) == (200, size, expected_sha256(size))
    assert await uploading == size
    await file_event(alice, sent["id"], "complete")
    for side in (alice, bob):
        shown = await listed(side, sent["id"])
        assert shown["state"] == "complete" and shown["held_bytes"] == 0
        assert shown["transferred"] == size
    status, gone = await bob.call("GET", f"/api/files/{sent['id']}/data")
    assert (status, gone["error"]) == (410, "file_gone")


async def test_files_of_every_size_arrive_with_the_same_sha256(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    for name, size in (
        ("empty.txt", 0),
        ("one.bin", 1),
        ("mebi.bin", MiB),
        ("odd.bin", 3 * MiB + 7),
    ):
        await send_and_receive(alice, bob, name, size)
    await send_and_receive(bob, alice, f"{MARKER} ž.bin", MiB + 1)  # the other way too
    for daemon in (alice, bob):  # a file's name is the chat's: in no log
        assert MARKER not in daemon.process.log_path.read_text()


async def test_a_declined_file_is_never_sent(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    sent = await offer(alice, "no.bin", 5 * MiB)
    await file_event(bob, sent["id"], "offered")
    status, declined = await bob.call("POST", f"/api/files/{sent['id']}/decline")
    assert status == 200 and declined["file"]["state"] == "declined"
    await file_event(alice, sent["id"], "declined")
    assert await upload(alice, sent["id"], 5 * MiB) == 0  # 409 file_not_sending at once
    status, refused = await bob.call("POST", f"/api/files/{sent['id']}/accept")
    assert (status, refused["error"]) == (409, "file_not_offered")
    status, refused = await alice.call("POST", f"/api/files/{sent['id']}/cancel")
    assert (status, refused["error"]) == (409, "file_finished")
    status, refused = await bob.call("GET", f"/api/files/{sent['id']}/data")
    assert (status, refused["error"]) == (409, "file_not_accepted")


@pytest.mark.parametrize("canceller", ["sender", "receiver"])
async def test_cancel_mid_transfer_by_either_side_frees_everything(
    pair: tuple[Daemon, Daemon], canceller: str
) -> None:
    alice, bob = pair
    size = 64 * MiB
    sent = await offer(alice, "big.bin", size)
    await file_event(bob, sent["id"], "offered")
    await bob.call("POST", f"/api/files/{sent['id']}/accept")
    # No download: the receiver holds what came, up to the window; the sender waits.
    uploading = asyncio.create_task(upload(alice, sent["id"], size))
    async with asyncio.timeout(20):
        while (await listed(bob, sent["id"]))["held_bytes"] < 8 * MiB:
            await bob.event("file")
    assert (await listed(alice, sent["id"]))["held_bytes"] > 0
    assert not uploading.done()  # the window is full: the upload waits
    side, other = (alice, bob) if canceller == "sender" else (bob, alice)
    status, cancelled = await side.call("POST", f"/api/files/{sent['id']}/cancel")
    assert status == 200
    assert (cancelled["file"]["state"], cancelled["file"]["cancelled_by"]) == ("cancelled", "me")
    seen = await file_event(other, sent["id"], "cancelled")
    assert seen["cancelled_by"] == "peer"
    assert await asyncio.wait_for(uploading, 10) < size  # the waiting upload was told
    for daemon in (alice, bob):
        shown = await listed(daemon, sent["id"])
        assert shown["state"] == "cancelled" and shown["held_bytes"] == 0
    status, refused = await bob.call("GET", f"/api/files/{sent['id']}/data")
    assert (status, refused["error"]) == (409, "file_not_accepted")
    # A next file still goes.
    await send_and_receive(alice, bob, "after.bin", MiB)


async def test_bad_requests_get_clear_errors(pair: tuple[Daemon, Daemon]) -> None:
    alice, _ = pair
    for body, code in (
        ({"name": "", "size": 1}, "invalid_file"),
        ({"name": "a/b", "size": 1}, "invalid_file"),
        ({"name": "x", "size": -1}, "invalid_file"),
        ({"name": "x", "size": "1"}, "invalid_file"),
        ({"name": "x", "size": 1, "type": 7}, "invalid_file"),
    ):
        status, refused = await alice.call("POST", "/api/files", body)
        assert (status, refused["error"]) == (422, code), body
    status, refused = await alice.call("POST", "/api/files/f-nonexistent1/accept")
    assert (status, refused["error"]) == (404, "file_not_found")
    sent = await offer(alice, "x.bin", 10)
    url = f"{alice.base}/api/files/{sent['id']}/data?offset=5"
    async with alice.http.put(url, data=b"12345") as response:
        assert response.status == 409
        assert await response.json() == {
            "error": "wrong_offset",
            "reason": "The daemon expects the file's bytes from another offset.",
            "next_offset": 0,
        }
    url = f"{alice.base}/api/files/{sent['id']}/data?offset=0"
    async with alice.http.put(url, data=io.BytesIO(b"\0" * (MiB + 1))) as response:
        assert (response.status, (await response.json())["error"]) == (413, "chunk_too_large")
    status, refused = await alice.call("POST", f"/api/files/{sent['id']}/accept")
    assert (status, refused["error"]) == (409, "file_not_offered")


async def test_200_mib_arrive_with_the_same_sha256(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    await send_and_receive(alice, bob, "large.bin", 200 * MiB)


async def test_the_end_of_the_session_fails_every_transfer_and_frees_it(
    pair: tuple[Daemon, Daemon],
) -> None:
    alice, bob = pair
    size = 64 * MiB
    sent = await offer(alice, "cut.bin", size)
    await file_event(bob, sent["id"], "offered")
    await bob.call("POST", f"/api/files/{sent['id']}/accept")
    uploading = asyncio.create_task(upload(alice, sent["id"], size))
    async with asyncio.timeout(20):
        while (await listed(bob, sent["id"]))["held_bytes"] < 4 * MiB:
            await bob.event("file")
    status, _ = await bob.call("POST", "/api/session/end")
    assert status == 200
    for daemon in (alice, bob):
        failed = await file_event(daemon, sent["id"], "failed")
        assert failed["error"]["code"] == "session_ended" and failed["held_bytes"] == 0
    assert await asyncio.wait_for(uploading, 10) < size  # the waiting upload was told
    status, refused = await alice.call("POST", "/api/files", {"name": "late", "size": 1})
    assert (status, refused["error"]) == (409, "session_ended")


async def test_several_files_at_once_both_ways(pair: tuple[Daemon, Daemon]) -> None:
    alice, bob = pair
    sizes = {"a1.bin": 5 * MiB + 1, "a2.bin": 3 * MiB, "a3.bin": 17}
    offers = [(alice, bob, await offer(alice, name, size)) for name, size in sizes.items()]
    offers.append((bob, alice, await offer(bob, "b1.bin", 4 * MiB + 9)))
    for _, receiver, sent in offers:
        await file_event(receiver, sent["id"], "offered")

    async def one(sender: Daemon, receiver: Daemon, sent: dict[str, Any]) -> None:
        uploading = asyncio.create_task(upload(sender, sent["id"], sent["size"]))
        status, _ = await receiver.call("POST", f"/api/files/{sent['id']}/accept")
        assert status == 200
        status, digest, count = await download(receiver, sent["id"])
        assert (status, count, digest) == (200, sent["size"], expected_sha256(sent["size"]))
        assert await uploading == sent["size"]

    await asyncio.gather(*(one(*o) for o in offers))
    for daemon in (alice, bob):  # a sender hears of the end with the last acknowledgement
        async with asyncio.timeout(15):
            while True:
                status, state = await daemon.call("GET", "/api/state")
                assert status == 200
                if [f["state"] for f in state["session"]["files"]] == ["complete"] * 4:
                    break
                await daemon.event("file")
