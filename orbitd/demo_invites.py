"""`make run`: Bob's ready join link as soon as Alice has an invite.

Logs in to Alice's daemon through its control socket, follows its event socket, and
for every new invite of hers prints a fresh login link of Bob's daemon that lands on
his join page with the invite filled in (`orbitd join`'s link): the demo works in two
browser windows without copying the invite by hand. Printed to the terminal only.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import aiohttp

from .control import ControlError, join_url, request_login_link, socket_path
from .settings import Config


def _socket(profile: str, data_dir: Path) -> Path:
    return socket_path(Config(profile=profile, data_dir=str(data_dir)))


async def _invite(http: aiohttp.ClientSession, base: str) -> str | None:
    async with http.get(f"{base}/api/invite") as response:
        if response.status != 200:
            return None
        invite = (await response.json()).get("invite")
        return invite if isinstance(invite, str) else None


async def print_join_links(host: tuple[str, Path], guest: tuple[str, Path]) -> None:
    """Runs until cancelled (or the host's daemon goes away)."""
    try:
        login = await request_login_link(_socket(*host), host[0])
    except ControlError as exc:
        print(f"make run: no join links for {guest[0]} ({exc})", flush=True)
        return
    base = login.fallback_url.split("/login", 1)[0]
    shown: str | None = None
    jar = aiohttp.CookieJar(unsafe=True)  # the cookie is for 127.0.0.1
    with contextlib.suppress(aiohttp.ClientError, ConnectionError):
        async with aiohttp.ClientSession(cookie_jar=jar) as http:
            async with http.get(login.fallback_url, allow_redirects=False):
                pass
            async with http.ws_connect(f"{base}/api/events", origin=base) as events:
                async for _ in events:  # each state change: has the host a new invite?
                    invite = await _invite(http, base)
                    if invite is None or invite == shown:
                        continue
                    shown = invite
                    try:
                        link = await request_login_link(_socket(*guest), guest[0])
                    except ControlError as exc:
                        print(f"make run: no join link for {guest[0]} ({exc})", flush=True)
                        continue
                    print(
                        f"\n{guest[0]:>6} joins {host[0]}'s invite (open once, within 5 minutes):"
                        f" {join_url(link.url, invite)}",
                        flush=True,
                    )
