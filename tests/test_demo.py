"""`make run`'s launcher: a rendezvous and two daemons, both login links printed, one Ctrl-C."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp

JOIN_LINK = (
    r"bob joins alice's invite .*: http://bob\.orbitd\.localhost:(?P<port>\d+)"
    r"(?P<login>/login\?secret=\S+&next=join)#(?P<invite>\S+)"
)
NAMED_LINK = r"\s*(alice|bob): http://(\1)\.orbitd\.localhost:(\d+)(/login\?secret=\S+)"


async def test_demo_starts_everything_and_stops_on_sigterm(tmp_path: Path) -> None:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orbitd.demo",
        "--run-dir",
        str(tmp_path),
        "--rendezvous-port",
        "0",
        "--alice-port",
        "0",
        "--bob-port",
        "0",
        "--no-lan",
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    links: dict[str, str] = {}
    async with asyncio.timeout(30):
        while len(links) < 2:
            line = (await proc.stdout.readline()).decode()
            assert line, "the launcher exited early"
            found = re.match(NAMED_LINK, line)
            if found:
                links[found.group(1)] = found.group(3) + found.group(4)
    for profile, port_and_path in links.items():
        # The browser resolves <profile>.orbitd.localhost to loopback; aiohttp here does not.
        named = {"Host": f"{profile}.orbitd.localhost:{port_and_path.split('/')[0]}"}
        base = f"http://127.0.0.1:{port_and_path.split('/')[0]}"
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            login = base + "/" + port_and_path.split("/", 1)[1]
            async with http.get(login, headers=named, allow_redirects=False) as response:
                assert response.status == 303
            async with http.get(base + "/api/state", headers=named) as response:
                assert response.status == 200
                assert (await response.json())["session"] is None
            if profile == "alice":  # she makes an invite: the launcher prints Bob's link
                origin = {"Origin": "http://" + named["Host"]}
                async with http.post(
                    base + "/api/tokens", json={"validity_option": "day"}, headers=named | origin
                ) as response:
                    assert response.status == 201, await response.text()
                async with http.get(base + "/api/invite", headers=named) as response:
                    invite = (await response.json())["invite"]
    async with asyncio.timeout(30):
        while True:
            line = (await proc.stdout.readline()).decode()
            assert line, "the launcher exited early"
            found = re.search(JOIN_LINK, line)
            if found:
                break
    assert found["invite"] == invite
    bob = f"http://127.0.0.1:{found['port']}"
    bob_named = {"Host": f"bob.orbitd.localhost:{found['port']}"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(bob + found["login"], headers=bob_named, allow_redirects=False) as r:
            assert r.status == 303 and r.headers["Location"] == "/join"
        async with http.get(bob + "/join", headers=bob_named) as response:
            assert response.status == 200
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert {p.name for p in tmp_path.glob("*.log")} == {"rendezvous.log", "alice.log", "bob.log"}
