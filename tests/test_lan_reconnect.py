"""A LAN session rebuilds its connection through the LAN link (no server at all): one
daemon stopped for a while (SIGSTOP: the other hears nothing), then resumed. Namespaces
as in tests/test_lan_session.py; without root the test is skipped."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import pytest

from tests.lan_daemons import invite, pair, phase
from tests.netns import NetnsLan, netns_lan_fixture

__all__ = ["netns_lan_fixture"]  # the fixture, used by name


@pytest.mark.parametrize("netns_lan", [2], indirect=True)
async def test_a_lan_session_reconnects_through_its_link(
    netns_lan: NetnsLan, tmp_path: Path
) -> None:
    alice, bob, _, bob_fp = await pair(netns_lan, tmp_path)
    try:
        request = await invite(alice, bob, bob_fp, ttl_minutes=5)
        status, accepted = await bob.call("POST", f"/api/nearby/requests/{request['id']}/accept")
        assert status == 200, accepted
        await alice.event("lan-accepted", request_id=request["id"])
        status, _ = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": accepted["code"]}
        )
        assert status == 200
        both = await asyncio.gather(phase(alice, "ready"), phase(bob, "ready"))
        sas = both[0]["sas"]
        os.kill(bob.pid, signal.SIGSTOP)
        try:
            await phase(alice, "reconnecting")
            status, sent = await alice.call("POST", "/api/messages", {"text": "still there?"})
            assert status == 201, sent
        finally:
            os.kill(bob.pid, signal.SIGCONT)
        back_a, back_b = await asyncio.gather(phase(alice, "ready"), phase(bob, "ready"))
        assert back_a["sas"] == back_b["sas"] == sas
        assert back_a["path"] in (None, "lan-direct")
        got = await bob.event("message")
        assert got["message"]["text"] == "still there?"
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
