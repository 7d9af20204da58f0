"""`orbitd join INVITE`: finds or starts the user's daemon and opens the browser (a stub
`$BROWSER` recording the URL) on a login link that lands on `/join#INVITE`."""

from __future__ import annotations

import asyncio
import contextlib
import os
import pty
import re
import select
import signal
import socket
import stat
import struct
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from urllib.parse import urlsplit

import aiohttp
import pytest
from playwright.async_api import Browser, expect

from tests.test_orbitd_cli import daemon_env
from tests.test_orbitd_open import run_orbitd, runtime  # noqa: F401 (fixture)

INVITE = "ABCDEF234567-abcdefghijkmnpqr"
URL = re.compile(
    r"http://bob\.orbitd\.localhost:(?P<port>\d+)"
    r"(?P<login>/login\?secret=[A-Za-z0-9_-]{43,}&next=join)#(?P<invite>.+)"
)


def daemon_pid(sock_path: Path) -> int:
    """The pid of the daemon listening on its control socket (SO_PEERCRED)."""
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as sock:
        sock.connect(str(sock_path))
        creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[0])


@pytest.fixture
async def env(tmp_path: Path, runtime: Path) -> AsyncIterator[dict[str, str]]:  # noqa: F811
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\nprintf "%s\\n" "$1" >> {tmp_path / "opened"}\n')
    browser.chmod(browser.stat().st_mode | stat.S_IXUSR)
    yield daemon_env(tmp_path, XDG_RUNTIME_DIR=str(runtime), BROWSER=f"{browser} %s")
    sock_path = runtime / "chatorbit" / "bob" / "orbitd.sock"
    with contextlib.suppress(OSError):  # the daemon `orbitd join` started: ours to stop
        pid = daemon_pid(sock_path)
        gone = asyncio.Event()
        pidfd = os.pidfd_open(pid)  # readable when the process has exited
        loop = asyncio.get_running_loop()
        loop.add_reader(pidfd, gone.set)
        try:
            os.kill(pid, signal.SIGTERM)
            await asyncio.wait_for(gone.wait(), 20)
        finally:
            loop.remove_reader(pidfd)
            os.close(pidfd)


async def land(url: str) -> tuple[str, str]:
    """Follow the login link as a browser would: where it lands and the page's text."""
    found = URL.fullmatch(url)
    assert found, url
    base = f"http://127.0.0.1:{found['port']}"
    named = {"Host": f"bob.orbitd.localhost:{found['port']}"}
    async with aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http:
        async with http.get(base + found["login"], headers=named, allow_redirects=False) as r:
            assert r.status == 303
            target = r.headers["Location"]
        async with http.get(base + target, headers=named, allow_redirects=False) as r:
            assert r.status == 200
            return target, await r.text()


async def test_join_starts_the_daemon_and_opens_the_join_page_with_the_invite(
    env: dict[str, str], tmp_path: Path
) -> None:
    args = ("--profile", "bob", "--port", "0")
    code, out, err = await run_orbitd(env, *args, "join", f"http://x.example/join#{INVITE}")
    assert code == 0, err
    assert "started the daemon of profile bob" in out
    assert "opened the join page" in out
    opened = (tmp_path / "opened").read_text().splitlines()
    assert len(opened) == 1
    assert URL.fullmatch(opened[0])["invite"] == INVITE  # type: ignore[index]
    target, page = await land(opened[0])
    assert target == "/join"
    assert 'id="invite" name="invite"' in page  # the join form home.js fills from the hash
    log = (tmp_path / "data" / "chatorbit" / "bob" / "orbitd.log").read_text()
    assert "listening" in log and INVITE not in log and "secret=" not in log

    # A second join finds the running daemon: a new link, the same port, nothing started.
    code, out, err = await run_orbitd(env, *args, "join", INVITE)
    assert code == 0, err
    assert "started" not in out
    second = (tmp_path / "opened").read_text().splitlines()[1]
    assert URL.fullmatch(second)["port"] == URL.fullmatch(opened[0])["port"]  # type: ignore[index]
    assert second != opened[0]
    assert INVITE not in (tmp_path / "data" / "chatorbit" / "bob" / "orbitd.log").read_text()


async def test_join_refuses_what_is_not_an_invite_and_starts_nothing(
    env: dict[str, str],
    tmp_path: Path,
    runtime: Path,  # noqa: F811
) -> None:
    code, _, err = await run_orbitd(env, "--profile", "bob", "join", "hello")
    assert code == 2
    assert "token" in err
    assert not (tmp_path / "opened").exists()
    assert not (runtime / "chatorbit" / "bob").exists()
    code, _, err = await run_orbitd(env, "--profile", "bob", "open", INVITE)
    assert code == 2 and "orbitd join" in err


async def test_join_without_a_browser_prints_the_link(env: dict[str, str]) -> None:
    env = env | {"BROWSER": "/bin/false %s"}
    code, out, err = await run_orbitd(env, "--profile", "bob", "--port", "0", "join", INVITE)
    assert code == 0, err
    assert "no browser found" in out
    links = [line for line in out.splitlines() if line.startswith("http://bob.")]
    assert len(links) == 1 and URL.fullmatch(links[0])


def read_until(fd: int, needle: str, timeout: float = 30.0) -> str:
    """What a terminal (the pty's master side) shows, up to `needle`."""
    seen = ""
    while needle not in seen:
        ready, _, _ = select.select([fd], [], [], timeout)
        assert ready, f"no {needle!r} on the terminal; it showed {seen!r}"
        seen += os.read(fd, 4096).decode()
    return seen


async def start_at_a_terminal(env: dict[str, str], needle: str) -> str:
    master, slave = pty.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "orbitd", "--port", "0", "--profile", "bob"),
        stdout=slave,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    os.close(slave)
    try:
        return await asyncio.to_thread(read_until, master, needle)
    finally:
        proc.send_signal(signal.SIGTERM)
        await asyncio.wait_for(proc.wait(), 20)
        os.close(master)


async def test_the_first_start_at_a_terminal_opens_the_ui_in_the_browser(
    env: dict[str, str], tmp_path: Path
) -> None:
    shown = await start_at_a_terminal(env, "opened your UI in the browser")
    assert "orbitd bob ready: http://bob.orbitd.localhost:" in shown  # where the UI is
    (opened,) = (tmp_path / "opened").read_text().splitlines()
    assert re.fullmatch(r"http://bob\.orbitd\.localhost:\d+/login\?secret=[\w-]{43,}", opened)
    assert opened not in shown  # a link of its own: the printed one is still unspent
    # Later starts only print the link.
    shown = await start_at_a_terminal(env, "ready:")
    assert "opened" not in shown
    assert len((tmp_path / "opened").read_text().splitlines()) == 1


async def test_the_recorded_link_opens_the_join_form_with_the_invite_in_chromium(
    env: dict[str, str], tmp_path: Path, browser: Browser
) -> None:
    code, _, err = await run_orbitd(env, "--profile", "bob", "--port", "0", "join", INVITE)
    assert code == 0, err
    (opened,) = (tmp_path / "opened").read_text().splitlines()
    page = await browser.new_page()
    requested: list[str] = []
    page.on("request", lambda request: requested.append(request.url))
    await page.goto(opened)  # Chromium resolves bob.orbitd.localhost to loopback itself
    assert urlsplit(page.url).path == "/join"
    await expect(page.locator("#invite")).to_have_value(INVITE)
    assert not any(INVITE in url or INVITE.split("-")[1] in url for url in requested)
    await page.close()
