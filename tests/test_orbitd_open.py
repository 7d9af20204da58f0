"""`orbitd open` / `orbitd login-link` over the daemon's control socket, the login gate's
session cookies (random per login, in memory, expiring) and the ready line under systemd."""

from __future__ import annotations

import asyncio
import os
import re
import stat
import sys
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import make_mocked_request

from orbitd.security import LINK_TTL, MAX_SESSIONS, SESSION_IDLE, LoginGate
from tests.test_orbitd_cli import READY, Daemon, daemon_env

LINK = re.compile(
    r"http://alice\.orbitd\.localhost:(?P<port>\d+)/login\?secret=(?P<secret>[A-Za-z0-9_-]{43,})"
)


@pytest.fixture
def runtime() -> Iterator[Path]:
    """A short $XDG_RUNTIME_DIR of our own (a socket path holds at most 107 bytes)."""
    with tempfile.TemporaryDirectory(prefix="n4b-run-") as path:
        os.chmod(path, 0o700)
        yield Path(path)


async def run_orbitd(env: dict[str, str], *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orbitd",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await asyncio.wait_for(proc.communicate(), 30)
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


@pytest.fixture
async def alice(tmp_path: Path, runtime: Path) -> AsyncIterator[tuple[Daemon, dict[str, str]]]:
    env = daemon_env(tmp_path, XDG_RUNTIME_DIR=str(runtime))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "orbitd", "--port", "0", "--profile", "alice"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert proc.stdout is not None
    match = READY.fullmatch((await asyncio.wait_for(proc.stdout.readline(), 20)).decode())
    assert match
    daemon = Daemon(proc, match["base"], match["secret"], int(match["port"]))
    yield daemon, env
    if proc.returncode is None:
        await daemon.stop()


async def login_status(base: str, secret: str) -> int:
    async with (
        aiohttp.ClientSession(cookie_jar=aiohttp.CookieJar(unsafe=True)) as http,
        http.get(f"{base}/login?secret={secret}", allow_redirects=False) as response,
    ):
        return response.status


async def test_login_link_gives_a_fresh_link_that_works_once(
    alice: tuple[Daemon, dict[str, str]], runtime: Path
) -> None:
    daemon, env = alice
    sock = runtime / "chatorbit" / "alice" / "orbitd.sock"
    info = sock.lstat()
    assert stat.S_ISSOCK(info.st_mode) and stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.getuid()
    assert stat.S_IMODE(sock.parent.stat().st_mode) == 0o700

    code, out, err = await run_orbitd(env, "login-link", "--profile", "alice")
    assert code == 0, err
    first_line, fallback_line = out.splitlines()
    link = LINK.fullmatch(first_line)
    assert link and int(link["port"]) == daemon.port
    assert f"{daemon.base}/login?secret={link['secret']}" in fallback_line
    assert link["secret"] != daemon.secret
    assert await login_status(daemon.base, link["secret"]) == 303
    assert await login_status(daemon.base, link["secret"]) == 403  # once
    code, out, _ = await run_orbitd(env, "login-link", "--profile", "alice")
    again = LINK.match(out)
    assert again and again["secret"] != link["secret"]  # each asking, a new one
    assert await login_status(daemon.base, daemon.secret) == 303  # the start link still works

    _, log_lines = await daemon.stop()
    assert link["secret"] not in "\n".join(log_lines)  # never in a log
    assert not sock.exists()  # removed on the way out


async def test_open_hands_the_link_to_the_browser(
    alice: tuple[Daemon, dict[str, str]], tmp_path: Path
) -> None:
    daemon, env = alice
    got = tmp_path / "browser-got"
    browser = tmp_path / "browser"
    browser.write_text(f'#!/bin/sh\nprintf "%s" "$1" > {got}\n')
    browser.chmod(0o700)
    code, out, err = await run_orbitd(env | {"BROWSER": str(browser)}, "open", "--profile", "alice")
    assert code == 0, err
    assert "opened" in out and "secret=" not in out
    link = LINK.fullmatch(got.read_text())
    assert link
    assert await login_status(daemon.base, link["secret"]) == 303


async def test_open_with_no_daemon_running_says_so(tmp_path: Path, runtime: Path) -> None:
    env = daemon_env(tmp_path, XDG_RUNTIME_DIR=str(runtime), BROWSER="false")
    for command in ("open", "login-link"):
        code, out, err = await run_orbitd(env, command, "--profile", "alice")
        assert code == 1 and out == ""
        assert "orbitd (profile alice) is not running" in err and "Traceback" not in err


async def test_a_stale_socket_is_replaced_and_a_live_one_kept(
    tmp_path: Path, runtime: Path, alice: tuple[Daemon, dict[str, str]]
) -> None:
    daemon, env = alice
    second = await asyncio.create_subprocess_exec(  # the same profile again: runs, no socket
        sys.executable,
        *("-m", "orbitd", "--port", "0", "--profile", "alice"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env | {"XDG_DATA_HOME": str(tmp_path / "data2")},
    )
    assert second.stdout is not None
    assert READY.fullmatch((await asyncio.wait_for(second.stdout.readline(), 20)).decode())
    code, out, _ = await run_orbitd(env, "login-link", "--profile", "alice")
    link = LINK.match(out)
    assert code == 0 and link and int(link["port"]) == daemon.port  # still the first one's
    second.terminate()
    await second.wait()
    code, out, _ = await run_orbitd(env, "login-link", "--profile", "alice")
    assert code == 0  # the second did not remove the first one's socket
    daemon.proc.kill()  # no clean-up: the socket file stays behind, stale
    await daemon.proc.wait()
    assert (runtime / "chatorbit" / "alice" / "orbitd.sock").exists()
    third = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "orbitd", "--port", "0", "--profile", "alice"),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    assert third.stdout is not None
    ready = READY.fullmatch((await asyncio.wait_for(third.stdout.readline(), 20)).decode())
    assert ready
    code, out, _ = await run_orbitd(env, "login-link", "--profile", "alice")
    link = LINK.match(out)
    assert code == 0 and link and int(link["port"]) == int(ready["port"])
    third.terminate()
    await third.wait()


async def test_under_systemd_the_ready_line_has_no_link(tmp_path: Path, runtime: Path) -> None:
    read_end, write_end = os.pipe()
    info = os.fstat(write_end)
    env = daemon_env(
        tmp_path, XDG_RUNTIME_DIR=str(runtime), JOURNAL_STREAM=f"{info.st_dev}:{info.st_ino}"
    )
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "orbitd", "--port", "0", "--profile", "alice"),
        stdout=write_end,
        stderr=asyncio.subprocess.DEVNULL,
        env=env,
    )
    os.close(write_end)
    with os.fdopen(read_end) as stdout:
        line = await asyncio.wait_for(asyncio.to_thread(stdout.readline), 20)
        assert re.fullmatch(
            r"orbitd alice ready: http://127\.0\.0\.1:\d+ \(run `orbitd open` to log in\)\n", line
        )
        code, out, _ = await run_orbitd(env, "login-link", "--profile", "alice")
        assert code == 0 and LINK.match(out)
        proc.terminate()
        await proc.wait()


async def test_on_a_terminal_the_ready_line_links_the_ui_name(
    tmp_path: Path, runtime: Path
) -> None:
    leader, follower = os.openpty()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        *("-m", "orbitd", "--port", "0", "--profile", "alice"),
        stdout=follower,
        stderr=asyncio.subprocess.DEVNULL,
        env=daemon_env(tmp_path, XDG_RUNTIME_DIR=str(runtime)),
    )
    os.close(follower)
    try:
        with os.fdopen(leader, "rb", buffering=0) as terminal:
            first = await asyncio.wait_for(asyncio.to_thread(terminal.readline), 20)
            second = await asyncio.wait_for(asyncio.to_thread(terminal.readline), 20)
    finally:
        proc.terminate()
        await proc.wait()
    link = LINK.search(first.decode())
    assert first.startswith(b"orbitd alice ready: http://alice.orbitd.localhost:") and link
    fallback = f"http://127.0.0.1:{link['port']}/login?secret={link['secret']}"
    assert fallback in second.decode()


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_links_from_open_expire_and_work_once() -> None:
    clock = Clock()
    gate = LoginGate(profile="alice", clock=clock)
    path = gate.new_link()
    secret = path.removeprefix("/login?secret=")
    assert secret != gate.login_secret
    assert gate.redeem(secret) and not gate.redeem(secret)
    late = gate.new_link().removeprefix("/login?secret=")
    clock.now += LINK_TTL + 1
    assert not gate.redeem(late)
    assert not gate.used  # the start link is another one, still unspent


def test_each_login_gets_its_own_cookie_which_expires_when_idle() -> None:
    clock = Clock()
    gate = LoginGate(profile="alice", clock=clock)

    def login() -> str:
        response = web.Response()
        gate.start_session(response)
        return response.cookies["orbit_ui_alice"].value

    def with_cookie(value: str) -> bool:
        return gate.logged_in(
            make_mocked_request("GET", "/", {"Cookie": f"orbit_ui_alice={value}"})
        )

    first, second = login(), login()
    assert first != second and with_cookie(first) and with_cookie(second)
    assert not with_cookie("x" * 43)
    clock.now += SESSION_IDLE - 1
    assert with_cookie(first)  # used: its idle time starts again
    clock.now += 2
    assert with_cookie(first) and not with_cookie(second)
    assert not LoginGate(profile="alice", clock=clock).logged_in(  # another daemon process
        make_mocked_request("GET", "/", {"Cookie": f"orbit_ui_alice={first}"})
    )
    for _ in range(MAX_SESSIONS):
        login()
    assert not with_cookie(first)  # the table is bounded: the least recently used went
