"""A file across two NATs (tests/nat.py, the topology of tests/test_nat_sessions.py) with
home A's uplink cut for 10 s in the middle: the transfer shows `paused`, resumes from
the last chunk the receiver has, and completes with the same SHA-256. Real orbitd,
rendezvous and coturn in namespaces (root; `flock /tmp/netns.lock`)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from tests.files_client import MiB, expected_sha256
from tests.nat import CONE, NatNet, nat_net_fixture
from tests.netns import NsDaemon
from tests.test_nat_sessions import connect, phase, two_daemons

__all__ = ["nat_net_fixture"]  # a fixture, used by name

SIZE = 200 * MiB
OUTAGE_SECONDS = 10.0
TRANSFER_WAIT = 240.0  # the whole file, on a loaded machine


def of_file(file_id: str, **wanted: Any) -> Any:
    def match(event: dict[str, Any]) -> bool:
        file = event["file"]
        return bool(file["id"] == file_id and all(file[k] == v for k, v in wanted.items()))

    return match


async def transferred_at_least(daemon: NsDaemon, file_id: str, count: int) -> None:
    def enough(event: dict[str, Any]) -> bool:
        file = event["file"]
        return bool(file["id"] == file_id and file["transferred"] >= count)

    await daemon.until("file", enough, TRANSFER_WAIT)


@pytest.mark.parametrize("nat_net", [(CONE, CONE)], indirect=True)
async def test_a_10_s_outage_mid_file_resumes_and_completes(nat_net: NatNet) -> None:
    await asyncio.gather(nat_net.start_rendezvous(ice=True), nat_net.start_coturn())
    alice, bob = await two_daemons(nat_net, [], [])
    try:
        await connect(alice, bob)
        status, body = await alice.call("POST", "/api/files", {"name": "big.bin", "size": SIZE})
        assert status == 201, body
        file_id = body["file"]["id"]
        await bob.until("file", of_file(file_id, state="offered"), 15)
        status, body = await bob.call("POST", f"/api/files/{file_id}/accept")
        assert status == 200, body
        uploading = asyncio.create_task(alice.files_job("upload", file_id, SIZE, TRANSFER_WAIT))
        downloading = asyncio.create_task(bob.files_job("download", file_id, SIZE, TRANSFER_WAIT))
        await transferred_at_least(bob, file_id, SIZE // 4)

        nat_net.cut_uplink("a")
        await bob.until("file", of_file(file_id, state="paused"), 15)
        _, state = await bob.call("GET", "/api/state")
        before = next(f for f in state["session"]["files"] if f["id"] == file_id)
        assert before["transferred"] < SIZE
        await asyncio.sleep(OUTAGE_SECONDS)  # the outage: a span of time, not an event
        nat_net.restore_uplink("a")
        await asyncio.gather(phase(alice, "ready", 60), phase(bob, "ready", 60))

        status, got = await downloading
        assert (status, got["bytes"], got["sha256"]) == (200, SIZE, expected_sha256(SIZE))
        assert (await uploading) == (200, {"offset": SIZE})
        await alice.until("file", of_file(file_id, state="complete"), 30)
        for daemon in (alice, bob):
            _, state = await daemon.call("GET", "/api/state")
            shown = next(f for f in state["session"]["files"] if f["id"] == file_id)
            assert (shown["state"], shown["held_bytes"]) == ("complete", 0)
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
