"""The host's invite for the UI (`GET /api/invite`, `GET /api/invite.svg`): only the host's
daemon shows it, only while the session runs, never cached and never logged."""

from __future__ import annotations

import asyncio
from pathlib import Path

from orbitd.invite import join_link, qr_svg
from tests.processes import Daemon, start_daemon, start_rendezvous


async def fetch(daemon: Daemon, path: str) -> tuple[int, str, str, bytes]:
    async with daemon.http.get(daemon.base + path) as response:
        return (
            response.status,
            response.content_type,
            response.headers.get("Cache-Control", ""),
            await response.read(),
        )


async def test_the_invite_and_its_qr_code_are_for_the_host_while_the_session_runs(
    tmp_path: Path,
) -> None:
    process, url = await start_rendezvous(tmp_path)
    alice, bob = await asyncio.gather(
        start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
    )
    try:
        status, error = await alice.call("GET", "/api/invite")
        assert (status, error["error"]) == (404, "no_invite")
        status, kind, _cache, _body = await fetch(alice, "/api/invite.svg")
        assert (status, kind) == (404, "application/json")

        status, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
        assert status == 201
        invite = created["invite"]
        status, shown = await alice.call("GET", "/api/invite")
        assert status == 200
        assert shown == {"invite": invite, "link": f"{url}/join#{invite}"}
        status, kind, cache, body = await fetch(alice, "/api/invite.svg")
        assert (status, kind, cache) == (200, "image/svg+xml", "no-store")
        assert body.startswith(b"<svg") and body == qr_svg(join_link(url, invite))

        status, _ = await bob.call("POST", "/api/join", {"invite": invite})
        assert status == 200
        status, error = await bob.call("GET", "/api/invite")  # the guest has no invite to show
        assert (status, error["error"]) == (404, "no_invite")
        await asyncio.gather(alice.phase("ready"), bob.phase("ready"))

        status, _ = await alice.call("POST", "/api/session/end", {})
        assert status == 200
        status, _kind, _cache, _body = await fetch(alice, "/api/invite.svg")
        assert status == 404
    finally:
        await asyncio.gather(alice.close(), bob.close())
        await process.stop()
    secret = invite.split("-")[1]
    for log in tmp_path.glob("*.log"):
        assert secret not in log.read_text()
