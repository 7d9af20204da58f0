"""`orbitd join INVITE`: the browser on the join page with the invite filled in.

Finds the user's daemon by its control socket, or starts one (detached, its log in the
profile's data directory, its start link thrown away) and waits for the socket; then
asks for a fresh login link that lands on `/join#INVITE`. The invite stays after `#`:
the browser keeps it, no server and no log sees it.
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
from pathlib import Path

from orbitcore.protocol.control import LoginLink

from .control import ControlError, join_url, request_login_link, socket_path
from .crypto import InviteError, parse_invite
from .security import ui_host_name
from .settings import Config

START_TIMEOUT = 30.0
POLL = 0.1
LOG_NAME = "orbitd.log"


def start_daemon(config: Config, args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
    """`orbitd <args>` in the background, in its own session (it outlives this command)."""
    log_path = config.data_path() / LOG_NAME
    log_path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    with log_path.open("ab") as log:
        proc = subprocess.Popen(  # noqa: S603 (this Python, this package, the user's flags)
            [sys.executable, "-m", "orbitd", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,  # the ready line holds a login link: not for a file
            stderr=log,
            start_new_session=True,
        )
    return proc, log_path


async def find_or_start(config: Config, args: list[str]) -> LoginLink:
    path = socket_path(config)
    try:
        return await request_login_link(path, config.profile)
    except ControlError:
        pass
    proc, log_path = start_daemon(config, args)
    print(f"orbitd: started the daemon of profile {config.profile} (log: {log_path})")
    async with asyncio.timeout(START_TIMEOUT):
        while True:  # the daemon says nothing else once it listens: ask its socket
            if proc.poll() is not None:
                raise ControlError(
                    f"orbitd stopped at start (exit {proc.returncode}); see {log_path}"
                )
            try:
                return await request_login_link(path, config.profile)
            except ControlError:
                await asyncio.sleep(POLL)


def join(config: Config, text: str | None, args: list[str]) -> int:
    try:
        invite = str(parse_invite(text))
    except InviteError as exc:
        print(f"orbitd join: {exc.reason}", file=sys.stderr)
        return 2
    try:
        link = asyncio.run(find_or_start(config, args))
    except (ControlError, TimeoutError) as exc:
        reason = exc if isinstance(exc, ControlError) else "the daemon did not answer in 30 s"
        print(f"orbitd join: {reason}", file=sys.stderr)
        return 1
    from .cli import open_link

    url, fallback = join_url(link.url, invite), join_url(link.fallback_url, invite)
    if open_link(url):
        print(f"orbitd: opened the join page of profile {config.profile} in your browser")
        return 0
    print("orbitd: no browser found here; open this link once, within 5 minutes:")
    print(url)
    print(f"(or, where {ui_host_name(config.profile)} does not resolve: {fallback})")
    return 0
