"""Files and a peer that lies (tests/hostile_files.py: the real daemon with one lie in its
file sender), limits on both sides, and a peer without the feature: the receiving
daemon discards the file, says why, and goes on."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from orbitcore.protocol.version import FEATURES
from tests.files_client import MiB, download, expected_sha256, file_event, listed, offer, upload
from tests.processes import Daemon, start_daemon
from tests.test_orbitd_chat import connect
from tests.test_orbitd_hostile_peer import chat_still_works, daemon, meet

__all__ = ["daemon"]  # a fixture, used by name


async def two(
    tmp_path: Path, rendezvous: str, *, hostile: str | None = None, bob_flags: tuple[str, ...] = ()
) -> tuple[Daemon, Daemon]:
    """Alice (the sender; hostile when asked) and Bob, connected."""
    alice_env = {"HOSTILE_FILES": hostile} if hostile else None
    module = "tests.hostile_files" if hostile else "orbitd"
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous, environ=alice_env, module=module),
        start_daemon(tmp_path, "bob", rendezvous, *bob_flags),
    )
    await connect(alice, bob)
    return alice, bob


async def still_fine(alice: Daemon, bob: Daemon) -> None:
    """The session goes on: a chat message gets through."""
    status, _ = await alice.call("POST", "/api/messages", {"text": "still here"})
    assert status == 201
    assert (await bob.event("message"))["message"]["text"] == "still here"


@pytest.mark.parametrize(("lie", "code"), [("tag", "bad_chunk"), ("hash", "hash_mismatch")])
async def test_a_damaged_file_is_detected_and_discarded(
    tmp_path: Path, rendezvous: str, lie: str, code: str
) -> None:
    alice, bob = await two(tmp_path, rendezvous, hostile=lie)
    try:
        size = 2 * MiB
        sent = await offer(alice, "damaged.bin", size)
        await file_event(bob, sent["id"], "offered")
        uploading = asyncio.create_task(upload(alice, sent["id"], size))
        await bob.call("POST", f"/api/files/{sent['id']}/accept")
        status, digest, count = await download(bob, sent["id"])
        assert status != 200 and count < size  # the download failed: no corrupt file saved
        assert digest != expected_sha256(size)
        failed = await file_event(bob, sent["id"], "failed")
        assert failed["error"]["code"] == code and failed["error"]["reason"]
        assert (await listed(bob, sent["id"]))["held_bytes"] == 0
        seen = await file_event(alice, sent["id"], "failed")  # the sender was told
        assert seen["error"]["code"] == code
        await asyncio.wait_for(uploading, 10)
        await still_fine(alice, bob)
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_the_receivers_limit_holds_on_both_sides(tmp_path: Path, rendezvous: str) -> None:
    alice, bob = await two(tmp_path, rendezvous, bob_flags=("--file-size-max-bytes", "1000000"))
    try:
        await still_fine(bob, alice)  # Bob's `file-limits` went before, in the same stream
        status, refused = await alice.call("POST", "/api/files", {"name": "big", "size": 1000001})
        assert (status, refused["error"], refused["limit"]) == (422, "file_too_large", 1000000)
        assert "other person" in refused["reason"]
        status, refused = await bob.call("POST", "/api/files", {"name": "x", "size": 5 * 2**30})
        assert (status, refused["error"], refused["limit"]) == (422, "file_too_large", 1000000)
        assert "Your ChatOrbit" in refused["reason"]
        sent = await offer(alice, "fits.bin", 1000000)  # at the limit: fine
        assert sent["state"] == "offered"
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_a_sender_that_ignores_the_limit_is_refused_by_the_receiver(
    tmp_path: Path, rendezvous: str
) -> None:
    alice, bob = await two(
        tmp_path, rendezvous, hostile="limit", bob_flags=("--file-size-max-bytes", "1000000")
    )
    try:
        sent = await offer(alice, "big.bin", 3 * MiB)  # its own check skipped
        failed = await file_event(bob, sent["id"], "failed")
        assert failed["error"]["code"] == "too_large" and failed["held_bytes"] == 0
        assert (await file_event(alice, sent["id"], "failed"))["error"]["code"] == "too_large"
        status, refused = await bob.call("POST", f"/api/files/{sent['id']}/accept")
        assert (status, refused["error"]) == (409, "file_not_offered")
        await still_fine(alice, bob)
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_a_peer_without_files_is_never_offered_one(tmp_path: Path, rendezvous: str) -> None:
    without = ",".join(f for f in FEATURES if f != "files")
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", rendezvous),
        start_daemon(tmp_path, "bob", rendezvous, environ={"ORBITD_ANNOUNCE_FEATURES": without}),
    )
    try:
        await connect(alice, bob)
        for daemon in (alice, bob):
            status, refused = await daemon.call("POST", "/api/files", {"name": "a", "size": 1})
            assert (status, refused["error"]) == (409, "feature_unavailable")
            status, state = await daemon.call("GET", "/api/state")
            assert "files" not in state["session"]["protocol"]["features"]
            assert state["session"]["files"] == []
        await still_fine(alice, bob)
    finally:
        await asyncio.gather(alice.close(), bob.close())


async def test_a_file_frame_from_a_peer_without_files_is_refused(
    tmp_path: Path, daemon: tuple[Daemon, str]
) -> None:
    alice, url = daemon
    hostile = await meet(tmp_path, alice, url)  # it announces chat and calls only
    try:
        offer_frame = {
            "type": "file-offer",
            "file_id": "f-abcdefgh",
            "number": 1,
            "name": "x",
            "size": 1,
        }
        hostile.tell({"send": json.dumps(offer_frame)})
        while (answer := await hostile.received())["type"] != "error":
            pass
        assert (answer["code"], answer["in_reply_to"]) == ("feature_unavailable", "file-offer")
        status, state = await alice.call("GET", "/api/state")
        assert status == 200 and state["session"]["files"] == []
        await chat_still_works(alice, hostile)
    finally:
        await hostile.close()
