"""The `orbitd` process itself: ready line, login over real HTTP, JSON logs, signals, lightness."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest

READY = re.compile(
    r"orbitd (?P<profile>[a-z0-9_-]+) ready: "
    r"(?P<base>http://127\.0\.0\.1:(?P<port>\d+))/login\?secret=(?P<secret>[A-Za-z0-9_-]{43,})\n"
)
HEAVY_MODULES = ("aiortc", "av", "pylibsrtp")


@dataclass
class Daemon:
    proc: asyncio.subprocess.Process
    base: str
    secret: str
    port: int

    @property
    def login_url(self) -> str:
        return f"{self.base}/login?secret={self.secret}"

    async def stop(self, sig: signal.Signals = signal.SIGTERM) -> tuple[int, list[str]]:
        """Send `sig`; the exit status and stderr's lines."""
        self.proc.send_signal(sig)
        code = await asyncio.wait_for(self.proc.wait(), 15)
        assert self.proc.stderr is not None
        return code, (await self.proc.stderr.read()).decode().splitlines()


def daemon_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("ORBIT_")}
    env |= {
        "HOME": str(tmp_path / "home"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / "config"),
        "ORBIT_LAN_ENABLED": "false",  # no announcements from tests (LAN tests use netns)
    }
    return env | extra


async def start(tmp_path: Path, *args: str) -> Daemon:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orbitd",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=daemon_env(tmp_path),
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 20)).decode()
    match = READY.fullmatch(line)
    assert match, line
    return Daemon(proc, match["base"], match["secret"], int(match["port"]))


@pytest.fixture
async def daemons() -> AsyncIterator[list[Daemon]]:
    started: list[Daemon] = []
    yield started
    for daemon in started:
        if daemon.proc.returncode is None:
            daemon.proc.kill()
            await daemon.proc.wait()


def proc_file(pid: int, name: str) -> str:
    path = Path(f"/proc/{pid}/{name}")
    if not path.exists():
        pytest.skip("needs /proc")
    return path.read_text()


def fingerprint_from(log_lines: list[str]) -> str:
    entries = [json.loads(line) for line in log_lines]
    (ready,) = [e for e in entries if e["msg"] == "identity ready"]
    fingerprint = ready["fingerprint"]
    assert isinstance(fingerprint, str)
    return fingerprint


async def test_serves_logs_in_and_stops_on_sigterm(tmp_path: Path, daemons: list[Daemon]) -> None:
    daemon = await start(tmp_path, "--profile", "alice")
    daemons.append(daemon)
    jar = aiohttp.CookieJar(unsafe=True)  # cookies from an IP address host
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(f"{daemon.base}/api/state") as response:
            assert response.status == 401
        async with http.get(daemon.login_url, allow_redirects=False) as response:
            assert response.status == 303
            assert "HttpOnly" in response.headers["Set-Cookie"]
        async with http.get(f"{daemon.base}/api/state") as response:
            assert response.status == 200
        async with http.get(f"{daemon.base}/") as response:
            text = await response.text()
            assert 'data-page="home"' in text and "alice" in text
    async with (
        aiohttp.ClientSession() as other_browser,
        other_browser.get(daemon.login_url, allow_redirects=False) as response,
    ):
        assert response.status == 403  # the link was spent

    code, log_lines = await daemon.stop(signal.SIGTERM)
    assert code == 0
    entries = [json.loads(line) for line in log_lines]  # every line is JSON
    assert {"listening", "browser logged in", "shutting down"} <= {e["msg"] for e in entries}
    assert daemon.secret not in "\n".join(log_lines)
    data = tmp_path / "data" / "chatorbit" / "alice"
    assert sorted(p.name for p in data.iterdir()) == ["identity.key"]  # the socket is gone


async def test_an_idle_daemon_has_not_loaded_the_media_stack(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    daemon = await start(tmp_path)
    daemons.append(daemon)
    loaded, status = proc_file(daemon.proc.pid, "maps"), proc_file(daemon.proc.pid, "status")
    for name in ("/aiortc/", "/av/", "/av.libs/", "/pylibsrtp/", "libavcodec"):
        assert name not in loaded, name
    rss = re.search(r"VmRSS:\s+(\d+) kB", status)
    assert rss is not None
    assert int(rss[1]) < 70 * 1024, f"idle orbitd uses {rss[1]} KiB"  # aiortc alone: 73 MB
    code, _ = await daemon.stop(signal.SIGINT)
    assert code == 0


def test_importing_the_daemon_does_not_import_the_media_stack() -> None:
    check = (
        "import sys, orbitd.cli, orbitd.app, orbitd.api; "
        f"heavy = [m for m in sys.modules if m.split('.')[0] in {HEAVY_MODULES!r}]; "
        "assert not heavy, heavy"
    )
    done = subprocess.run(
        [sys.executable, "-c", check], capture_output=True, text=True, timeout=60, check=False
    )
    assert done.returncode == 0, done.stderr


async def test_profiles_keep_their_identity_across_restarts(
    tmp_path: Path, daemons: list[Daemon]
) -> None:
    fingerprints = []
    for profile in ("alice", "alice", "bob"):
        daemon = await start(tmp_path, "--profile", profile)
        daemons.append(daemon)
        code, log_lines = await daemon.stop()
        assert code == 0
        fingerprints.append(fingerprint_from(log_lines))
    assert fingerprints[0] == fingerprints[1]
    assert fingerprints[2] != fingerprints[0]


async def test_a_login_ends_with_the_daemon(tmp_path: Path, daemons: list[Daemon]) -> None:
    """The cookie is a session of that daemon process, not a lasting credential."""
    first = await start(tmp_path, "--profile", "alice")
    daemons.append(first)
    jar = aiohttp.CookieJar(unsafe=True)
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        async with http.get(first.login_url, allow_redirects=False) as response:
            assert response.status == 303
        await first.stop()
        second = await start(tmp_path, "--profile", "alice", "--port", str(first.port))
        daemons.append(second)
        assert second.secret != first.secret  # a fresh one-time link each start
        async with http.get(f"{second.base}/api/state") as response:
            assert response.status == 401
    await second.stop()


async def test_two_daemons_side_by_side(tmp_path: Path, daemons: list[Daemon]) -> None:
    alice = await start(tmp_path, "--profile", "alice")
    daemons.append(alice)
    bob = await start(tmp_path, "--profile", "bob")
    daemons.append(bob)
    assert alice.port != bob.port
    jar = aiohttp.CookieJar(unsafe=True)  # one browser, both UIs
    async with aiohttp.ClientSession(cookie_jar=jar) as http:
        for daemon in (alice, bob):
            async with http.get(daemon.login_url) as response:
                assert response.status == 200
        for daemon in (alice, bob):
            async with http.get(f"{daemon.base}/api/state") as response:
                assert response.status == 200  # bob's login did not log alice out
    taken = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "orbitd",
        "--profile",
        "carol",
        "--port",
        str(alice.port),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=daemon_env(tmp_path),
    )
    out, err = await asyncio.wait_for(taken.communicate(), 20)
    assert taken.returncode == 1
    assert out == b"" and b"cannot listen" in err


def test_the_profile_config_file_is_read(tmp_path: Path) -> None:
    custom = tmp_path / "custom-data"
    config = tmp_path / "config" / "chatorbit" / "alice" / "orbitd.toml"
    config.parent.mkdir(parents=True)
    config.write_text(f'[orbitd]\ndata_dir = "{custom}"\nhost = "0.0.0.0"\n')
    refused = run_cli(tmp_path, "--profile", "alice")
    assert refused.returncode == 2
    assert "local-only" in refused.stderr
    assert not custom.exists()
    explicit = tmp_path / "other.toml"
    explicit.write_text('log_level = "shout"\n')
    assert "log_level" in run_cli(tmp_path, "--config", str(explicit)).stderr


def run_cli(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orbitd", *args],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
        env=daemon_env(tmp_path),
    )


@pytest.mark.parametrize(
    ("args", "fragment"),
    [
        (["--host", "0.0.0.0"], "local-only"),
        (["--profile", "Not/Ok"], "profile"),
        (["--port", "lots"], "setting 'port'"),
    ],
)
def test_bad_settings_exit_2_with_the_reason(
    tmp_path: Path, args: list[str], fragment: str
) -> None:
    done = run_cli(tmp_path, *args)
    assert done.returncode == 2
    assert done.stdout == ""
    assert fragment in done.stderr


def test_settings_subcommand_prints_the_table(tmp_path: Path) -> None:
    done = run_cli(tmp_path, "settings")
    assert done.returncode == 0
    assert "| `ice_loopback` | `ORBIT_ICE_LOOPBACK` | `false` |" in done.stdout
    assert not (tmp_path / "data").exists()  # printing settings makes no key
