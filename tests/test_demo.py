"""`make run`'s launcher: a rendezvous and two daemons, both login links printed, one Ctrl-C."""

from __future__ import annotations

import asyncio
import re
import signal
import sys
from pathlib import Path

import aiohttp


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
            found = re.match(r"\s*(alice|bob): (http://127\.0\.0\.1:\d+/login\?secret=\S+)", line)
            if found:
                links[found.group(1)] = found.group(2)
    for link in links.values():
        async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
            async with http.get(link, allow_redirects=False) as response:
                assert response.status == 303
            async with http.get(link.split("/login")[0] + "/api/state") as response:
                assert response.status == 200
                assert (await response.json())["session"] is None
    proc.send_signal(signal.SIGTERM)
    assert await asyncio.wait_for(proc.wait(), 20) == 0
    assert {p.name for p in tmp_path.glob("*.log")} == {"rendezvous.log", "alice.log", "bob.log"}
