"""Install as users do: the wheel, built from the sources, `pip install`ed into a fresh
venv outside the checkout (its dependencies from the configured index, as `make`
installs them) gives `orbitd` and `orbit-rendezvous` commands that run a session."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest

from tests.processes import Daemon, Process
from tests.test_core_package import ROOT, build_wheel
from tests.test_orbitd_chat import connect


def clean_env(tmp_path: Path, name: str) -> dict[str, str]:
    """Nothing of the checkout's venv: no PYTHONPATH, no VIRTUAL_ENV, no ORBIT_ settings."""
    drop = ("PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME")
    env = {k: v for k, v in os.environ.items() if k not in drop and not k.startswith("ORBIT_")}
    return env | {
        "HOME": str(tmp_path / name),
        "XDG_DATA_HOME": str(tmp_path / name / "data"),
        "XDG_CONFIG_HOME": str(tmp_path / name / "config"),
        "XDG_RUNTIME_DIR": "",
    }


@pytest.fixture(scope="module")
def venv(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh venv with the wheel installed (about 10 s: build, venv, pip install)."""
    tmp = tmp_path_factory.mktemp("install")
    wheel = build_wheel(tmp)
    subprocess.run([sys.executable, "-m", "venv", str(tmp / "venv")], check=True, timeout=60)
    installed = subprocess.run(
        [str(tmp / "venv" / "bin" / "pip"), "install", "-q", str(wheel)],
        cwd=tmp,
        env=clean_env(tmp, "pip"),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert installed.returncode == 0, installed.stderr
    return tmp / "venv"


async def spawn(program: Path, args: list[str], cwd: Path, name: str) -> Process:
    log_path = cwd / f"{name}.log"
    with log_path.open("wb") as log:
        proc = await asyncio.create_subprocess_exec(
            program,
            *args,
            cwd=cwd,
            env=clean_env(cwd, name),
            stdout=asyncio.subprocess.PIPE,
            stderr=log,
        )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode().strip()
    assert line, f"{program.name} exited early; see {log_path}"
    return Process(proc, line, log_path)


async def start_daemon(venv: Path, cwd: Path, name: str, rendezvous: str) -> Daemon:
    flags = ["--port", "0", "--profile", name, "--rendezvous", rendezvous]
    flags += ["--ice-loopback", "--no-lan-enabled"]
    process = await spawn(venv / "bin" / "orbitd", flags, cwd, name)
    link = process.ready_line.split()[-1]
    base = link.split("/login")[0]
    http = aiohttp.ClientSession(
        headers={"Origin": base}, cookie_jar=aiohttp.CookieJar(unsafe=True)
    )
    daemon = Daemon(name, process, base, link, http)
    async with http.get(link, allow_redirects=False) as response:
        assert response.status == 303
    await daemon.listen()
    return daemon


@pytest.fixture
async def installed(venv: Path, tmp_path: Path) -> AsyncIterator[tuple[Daemon, Daemon]]:
    rendezvous = await spawn(
        venv / "bin" / "orbit-rendezvous",
        ["--port", "0", "--database", ":memory:"],
        tmp_path,
        "rendezvous",
    )
    url = rendezvous.ready_line.split()[-1]
    alice = await start_daemon(venv, tmp_path, "alice", url)
    bob = await start_daemon(venv, tmp_path, "bob", url)
    yield alice, bob
    await asyncio.gather(alice.close(), bob.close())
    await rendezvous.stop()


def test_the_venv_runs_the_installed_copy_not_the_checkout(venv: Path, tmp_path: Path) -> None:
    found = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import orbitd, orbitcore.ui as u; print(orbitd.__file__, u.WEB_ROOT)",
        ],
        cwd=tmp_path,
        env=clean_env(tmp_path, "probe"),
        capture_output=True,
        text=True,
        check=True,
    )
    module, web = found.stdout.split()
    assert Path(module).is_relative_to(venv) and Path(web).is_relative_to(venv)
    assert not Path(module).is_relative_to(ROOT)
    assert (Path(web) / "templates" / "base.html").is_file()


async def test_the_installed_commands_run_a_session_and_serve_the_ui(
    installed: tuple[Daemon, Daemon],
) -> None:
    alice, bob = installed
    await connect(alice, bob)
    status, _ = await alice.call("POST", "/api/messages", {"text": "from the wheel"})
    assert status == 201
    assert (await bob.event("message"))["message"]["text"] == "from the wheel"
    async with bob.http.get(bob.base + "/") as page:  # the UI's files came with the wheel
        assert page.status == 200 and "<html" in (await page.text())
