"""The `orbit-rendezvous` process itself: port 0, JSON logs, shutdown, subcommands."""

from __future__ import annotations

import asyncio
import json
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import pytest
from aiohttp import WSMsgType

from rendezvous.passwords import check_password


@dataclass
class Running:
    proc: asyncio.subprocess.Process
    url: str


async def start(*args: str) -> Running:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "rendezvous",
        "--port",
        "0",
        *args,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    line = (await asyncio.wait_for(proc.stdout.readline(), 15)).decode()
    assert line.startswith("rendezvous listening on http://127.0.0.1:"), line
    return Running(proc, line.split()[-1])


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[Running]:
    running = await start("--data-dir", str(tmp_path))
    yield running
    if running.proc.returncode is None:
        running.proc.kill()
        await running.proc.wait()


async def test_serves_then_shuts_down_with_going_away(server: Running, tmp_path: Path) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{server.url}/healthz") as response:
            assert (await response.json())["status"] == "ok"
        async with http.post(f"{server.url}/api/tokens/issue", json={}) as response:
            token = (await response.json())["token"]
        for who in ("host-secret-id", "guest-secret-id"):
            async with http.post(
                f"{server.url}/api/tokens/join", json={"token": token, "client_identity": who}
            ) as response:
                assert response.status == 200
        async with http.ws_connect(f"{server.url}/api/ws/{token}/host-secret-id") as ws:
            assert (await ws.receive_json())["type"] == "session-status"
            server.proc.send_signal(signal.SIGTERM)
            msg = await asyncio.wait_for(ws.receive(), 10)
            assert msg.type is WSMsgType.CLOSE and msg.data == 1001
    assert await asyncio.wait_for(server.proc.wait(), 10) == 0
    assert (tmp_path / "rendezvous.db").exists()

    assert server.proc.stderr is not None
    log_lines = (await server.proc.stderr.read()).decode().splitlines()
    entries = [json.loads(line) for line in log_lines]  # every line is JSON
    assert any(e["msg"] == "joined" for e in entries)
    whole_log = "\n".join(log_lines)
    for secret in (token, "host-secret-id", "guest-secret-id"):
        assert secret not in whole_log


def run_cli(*args: str, stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "rendezvous", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )


def test_hash_password_reads_stdin() -> None:
    done = run_cli("hash-password", stdin="s3cret\n")
    assert done.returncode == 0
    assert check_password("s3cret", done.stdout.strip())
    empty = run_cli("hash-password", stdin="\n")
    assert empty.returncode == 2 and "empty password" in empty.stderr


def test_bad_settings_exit_2_with_the_reason() -> None:
    done = run_cli("--port", "lots")
    assert done.returncode == 2
    assert "setting 'port'" in done.stderr


def test_settings_subcommand_prints_the_table() -> None:
    done = run_cli("settings")
    assert done.returncode == 0
    assert (
        "| `token_rate_limit_per_hour` | `ORBIT_RENDEZVOUS_TOKEN_RATE_LIMIT_PER_HOUR` | `10` |"
        in done.stdout
    )
