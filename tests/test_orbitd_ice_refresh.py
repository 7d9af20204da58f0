"""Real daemons take the rendezvous's ICE servers (a real coturn's) from the join, and
ask for fresh TURN credentials on their socket before the old ones expire; the chat goes
on, and no log holds the secret or a credential."""

from __future__ import annotations

import asyncio
import json
import re
from pathlib import Path

import aiohttp

from tests.coturn import Coturn
from tests.processes import EVENT_WAIT, Daemon, start_daemon, start_rendezvous
from tests.test_orbitd_chat import connect

TTL_SECONDS = 2  # a refresh when a fifth is left: every 1.6 s
CREDENTIAL = re.compile(r"[A-Za-z0-9+/]{27}=")  # base64 of an HMAC-SHA1
USERNAME = re.compile(r"\b1[0-9]{9}:[A-Za-z0-9_-]{16}\b")  # <expiry>:<random id>


def count(path: Path, message: str) -> int:
    """Lines of a JSON log whose message is `message`."""
    found = 0
    for line in path.read_text().splitlines():
        try:
            found += json.loads(line).get("msg") == message
        except ValueError:
            continue
    return found


async def until_logged(path: Path, message: str, times: int) -> None:
    async with asyncio.timeout(EVENT_WAIT):
        while count(path, message) < times:  # noqa: ASYNC110 - a log file has no event
            await asyncio.sleep(0.1)


async def test_daemons_refresh_their_turn_credentials_before_they_expire(
    tmp_path: Path, coturn: Coturn
) -> None:
    rendezvous, url = await start_rendezvous(
        tmp_path,
        "--turn-urls",
        coturn.turn_url,
        "--turn-credential-ttl-seconds",
        str(TTL_SECONDS),
        "--log-level",
        "debug",
        f"--turn-shared-secret={coturn.secret}",  # `=`: a secret may start with "-"
    )
    daemons: list[Daemon] = []
    try:
        alice, bob = daemons[:] = await asyncio.gather(
            start_daemon(tmp_path, "alice", url), start_daemon(tmp_path, "bob", url)
        )
        await connect(alice, bob)
        for daemon in (alice, bob):
            await until_logged(daemon.process.log_path, "asking for fresh ICE servers", 2)
            await until_logged(daemon.process.log_path, "ICE servers refreshed", 2)
        async with aiohttp.ClientSession() as http, http.get(url + "/metrics") as response:
            metrics = await response.text()
        grants = re.search(r"^orbit_ice_grants_total (\S+)$", metrics, re.M)
        assert grants is not None and float(grants[1]) >= 2 + 2 * 2  # two joins, refreshes
        # The chat goes on.
        status, _ = await alice.call("POST", "/api/messages", {"text": "still here"})
        assert status == 201
        assert (await bob.event("message"))["message"]["text"] == "still here"
    finally:
        for daemon in daemons:
            await daemon.close()
        await rendezvous.stop()
    for log in (rendezvous.log_path, *(d.process.log_path for d in daemons)):
        text = log.read_text()
        assert text and coturn.secret not in text
        assert not CREDENTIAL.search(text), f"{log.name} holds something like a credential"
    # aioice's debug log shows the STUN messages with their USERNAME (an expiry and a random
    # id, no secret); the rendezvous logs no user name at all.
    assert not USERNAME.search(rendezvous.log_path.read_text())
