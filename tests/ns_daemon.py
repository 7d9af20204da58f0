"""A driver run inside a network namespace: `ip netns exec NS python -m tests.ns_daemon ...`.

    python -m tests.ns_daemon --home DIR --lan-address ADDR --profile NAME [--visible]
                              [-- ORBITD FLAGS]

starts an orbitd (a child process) in this namespace: XDG dirs under DIR, UI on
127.0.0.1 (a free port), LAN on ADDR, rendezvous http://127.0.0.1:9 (nothing
listens there: the daemon is offline) unless `--rendezvous URL` names one. The
driver logs in through the one-time link, subscribes to /api/events, with `--visible`
makes the daemon visible on the LAN as its user would (`POST /api/nearby/visibility
{"mode": "timed"}`: LAN presence is off until then) and then speaks JSON lines:

    stdout first line  {"ready": {"pid": ORBITD_PID, "base": URL, "log": PATH}}
    stdin              {"id": 1, "method": "GET", "path": "/api/nearby", "body": null}
    stdout             {"id": 1, "status": 200, "body": {...}}
    stdout             {"event": {...}}            every event the daemon pushes
    stdout             {"exited": RETURNCODE}      the daemon ended (e.g. was killed)

Closing stdin stops the daemon (SIGTERM) and the driver.

    python -m tests.ns_daemon --home DIR --lan-address ADDR --impostor NAME --claim-fp FP

runs no daemon but an impostor: a LanPresence with a fresh key of its own that
announces NAME and, in its TXT record, the fingerprint FP (someone else's). Its
hello answers with its own key, so peers can tell. First line
{"ready": {"pid": ..., "fingerprint": OWN_FP}}; closing stdin stops it.

    python -m tests.ns_daemon --home DIR --lan-address ADDR --raw

runs no daemon but a plain HTTP client in this namespace, for requests to other
daemons' LAN listeners: {"id", "method", "url", "body"} in, {"id", "status", "body"} out.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

OFFLINE_RENDEZVOUS = "http://127.0.0.1:9"


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def stdin_lines() -> asyncio.StreamReader:
    reader = asyncio.StreamReader(limit=1 << 20)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    return reader


async def run_daemon(args: argparse.Namespace) -> int:
    home = Path(args.home)
    env = os.environ | {
        "XDG_DATA_HOME": str(home / "data"),
        "XDG_CONFIG_HOME": str(home / "config"),
    }
    flags = [
        "--port",
        "0",
        "--profile",
        args.profile,
        "--rendezvous",
        args.rendezvous,
        "--lan-interfaces",
        args.lan_address,
        "--log-level",
        "debug",
        *args.orbitd_flags,
    ]
    log_path = home / f"{args.profile}.log"
    with log_path.open("ab") as log_file:
        child = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "orbitd",
            *flags,
            stdout=asyncio.subprocess.PIPE,
            stderr=log_file,
            env=env,
        )
    assert child.stdout is not None
    line = (await asyncio.wait_for(child.stdout.readline(), 30)).decode().strip()
    if not line:
        await child.wait()
        print(f"orbitd exited early; log {log_path}", file=sys.stderr)
        return 1
    link = line.split()[-1]
    base = link.split("/login")[0]
    async with aiohttp.ClientSession(
        headers={"Origin": base}, cookie_jar=aiohttp.CookieJar(unsafe=True)
    ) as http:
        async with http.get(link, allow_redirects=False) as response:
            assert response.status == 303, await response.text()
        ws = await http.ws_connect(base + "/api/events")
        if args.visible:
            async with http.post(
                base + "/api/nearby/visibility", json={"mode": "timed"}
            ) as response:
                assert response.status == 200, await response.text()
        emit({"ready": {"pid": child.pid, "base": base, "log": str(log_path)}})

        async def forward_events() -> None:
            async for msg in ws:
                if msg.type is aiohttp.WSMsgType.TEXT:
                    emit({"event": msg.json()})

        jobs: set[asyncio.Task[None]] = set()

        async def serve_commands() -> None:
            reader = await stdin_lines()
            while line := await reader.readline():
                command = json.loads(line)
                if "files" in command:  # long: beside the other commands
                    job = asyncio.create_task(files_job(http, base, command))
                    jobs.add(job)
                    job.add_done_callback(jobs.discard)
                    continue
                try:
                    async with http.request(
                        command["method"], base + command["path"], json=command.get("body")
                    ) as response:
                        body = await response.json(content_type=None)
                        emit({"id": command["id"], "status": response.status, "body": body})
                except aiohttp.ClientError as exc:
                    emit({"id": command["id"], "status": 0, "body": {"error": str(exc)}})

        events = asyncio.create_task(forward_events())
        commands = asyncio.create_task(serve_commands())
        exited = asyncio.create_task(child.wait())
        await asyncio.wait({events, commands, exited}, return_when=asyncio.FIRST_COMPLETED)
        if not exited.done():  # stdin closed (or the event socket): stop the daemon
            # os.kill, not child.send_signal: that polls (reaps) a child that has just
            # died, and asyncio's watcher then reports 255 instead of its real status.
            with contextlib.suppress(ProcessLookupError):
                if child.returncode is None:
                    os.kill(child.pid, signal.SIGTERM)
            try:
                await asyncio.wait_for(asyncio.shield(exited), 15)
            except TimeoutError:
                child.kill()
        code = await exited
        emit({"exited": code})
        for task in (events, commands):
            task.cancel()
        await ws.close()
    return 0


async def files_job(http: aiohttp.ClientSession, base: str, command: dict[str, Any]) -> None:
    """`{"id", "files": {"op": "upload"|"download", "file_id", "size"}}`: the test file
    (tests/files_client.py) uploaded, or downloaded and hashed, through this daemon's API;
    answered `{"id", "status", "body": {"offset"} or {"sha256", "bytes"}}`."""
    from tests.files_client import download_with, upload_with

    job = command["files"]
    if job["op"] == "upload":
        offset = await upload_with(http, base, job["file_id"], job["size"])
        emit({"id": command["id"], "status": 200, "body": {"offset": offset}})
    else:
        status, digest, count = await download_with(http, base, job["file_id"])
        emit({"id": command["id"], "status": status, "body": {"sha256": digest, "bytes": count}})


async def run_impostor(args: argparse.Namespace) -> int:
    from orbitd.identity import Identity
    from orbitd.lan.discovery import LanPresence, choose_interfaces
    from orbitd.lan.peers import VerifiedPeers

    claimed = args.claim_fp

    class Impostor(LanPresence):
        def txt_record(self) -> dict[str, str]:
            return super().txt_record() | {"fp": claimed}

    home = Path(args.home)
    identity = Identity.from_private_key(Ed25519PrivateKey.generate())
    interfaces, missing = choose_interfaces([args.lan_address])
    assert interfaces, missing
    presence = Impostor(identity, args.impostor, interfaces, 0, VerifiedPeers(home))
    await presence.start()
    emit({"ready": {"pid": os.getpid(), "fingerprint": identity.fingerprint}})
    reader = await stdin_lines()
    while await reader.readline():
        pass
    await presence.stop()
    emit({"exited": 0})
    return 0


async def run_raw(args: argparse.Namespace) -> int:
    emit({"ready": {"pid": os.getpid()}})
    reader = await stdin_lines()
    timeout = aiohttp.ClientTimeout(total=10)
    async with aiohttp.ClientSession(timeout=timeout) as http:
        while line := await reader.readline():
            command = json.loads(line)
            try:
                async with http.request(
                    command["method"], command["url"], json=command.get("body")
                ) as response:
                    body = await response.json(content_type=None)
                    emit({"id": command["id"], "status": response.status, "body": body})
            except (aiohttp.ClientError, TimeoutError, ValueError) as exc:
                emit({"id": command["id"], "status": 0, "body": {"error": repr(exc)}})
    emit({"exited": 0})
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(prog="tests.ns_daemon")
    parser.add_argument("--home", required=True)
    parser.add_argument("--lan-address", required=True)
    parser.add_argument("--profile", default="alice")
    parser.add_argument("--rendezvous", default=OFFLINE_RENDEZVOUS)
    parser.add_argument("--impostor", metavar="NAME")
    parser.add_argument("--claim-fp", metavar="FP")
    parser.add_argument("--raw", action="store_true")
    parser.add_argument("--visible", action="store_true")
    parser.add_argument("orbitd_flags", nargs="*")
    args = parser.parse_args()
    if args.impostor:
        return asyncio.run(run_impostor(args))
    if args.raw:
        return asyncio.run(run_raw(args))
    return asyncio.run(run_daemon(args))


if __name__ == "__main__":
    sys.exit(main())
