"""Reporting abuse from the daemon: the reporter's own words reach the rendezvous admin."""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp

from rendezvous.passwords import hash_password
from tests.processes import start_daemon, start_rendezvous


async def test_a_report_carries_only_what_the_reporter_wrote(tmp_path: Path) -> None:
    process, url = await start_rendezvous(tmp_path, "--admin-password-hash", hash_password("pw"))
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
    )
    try:
        _, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
        await bob.call("POST", "/api/join", {"invite": created["invite"]})
        await asyncio.gather(alice.phase("ready"), bob.phase("ready"))
        await bob.call("POST", "/api/messages", {"text": "a private remark"})
        await alice.event("message")

        status, error = await alice.call("POST", "/api/report", {"details": "no reason given"})
        assert (status, error["error"]) == (422, "invalid_reason")
        status, filed = await alice.call(
            "POST",
            "/api/report",
            {"reason": "harassment", "details": "They threatened me.", "contact": "a@x.org"},
        )
        assert status == 201 and filed["id"] == 1

        async with aiohttp.ClientSession() as admin:
            async with admin.post(f"{url}/api/admin/login", json={"password": "pw"}) as response:
                bearer = {"Authorization": f"Bearer {(await response.json())['token']}"}
            async with admin.get(f"{url}/api/admin/reports", headers=bearer) as response:
                [report] = (await response.json())["reports"]
        assert (report["token"], report["reason"], report["details"], report["contact"]) == (
            created["token"],
            "harassment",
            "They threatened me.",
            "a@x.org",
        )
        assert "a private remark" not in str(report)
    finally:
        await asyncio.gather(alice.close(), bob.close())
        await process.stop()
