"""A real coturn (Debian's `turnserver`) for tests: TURN REST credentials
(`use-auth-secret`), plain UDP/TCP only, logging to a temp directory.

`turnserver_argv` builds the command line alone, so that a test can also run it inside a
network namespace (`ip netns exec NS *argv`); `start_coturn` runs one on 127.0.0.1 and
waits until it answers a STUN Binding request; the `coturn` fixture stops it at teardown.
"""

from __future__ import annotations

import asyncio
import secrets
import shutil
import socket
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

import pytest

TURNSERVER = "turnserver"
REALM = "orbit.test"
READY_WAIT = 10.0  # seconds for turnserver to answer its first STUN request


def turnserver_argv(
    *,
    listen_ip: str,
    port: int,
    relay_ip: str,
    secret: str,
    realm: str,
    workdir: Path,
    min_port: int | None = None,
    max_port: int | None = None,
    allow_loopback_peers: bool = False,
    verbose: bool = False,
) -> list[str]:
    """turnserver's command line: TURN REST auth with `secret`, no TLS/DTLS, no CLI, no
    config file; database, pid and log in `workdir`. The secret is on the command line:
    a test's own throwaway secret only."""
    argv = [
        TURNSERVER,
        "-n",  # no configuration file
        f"--listening-ip={listen_ip}",
        f"--listening-port={port}",
        f"--relay-ip={relay_ip}",
        f"--realm={realm}",
        "--use-auth-secret",
        f"--static-auth-secret={secret}",
        "--fingerprint",
        "--no-tls",
        "--no-dtls",
        "--no-cli",
        "--no-multicast-peers",
        "--no-software-attribute",
        f"--userdb={workdir / 'turndb'}",
        f"--pidfile={workdir / 'turnserver.pid'}",
        f"--log-file={workdir / 'turnserver.log'}",
        "--simple-log",
        "--no-stdout-log",
    ]
    if min_port is not None:
        argv.append(f"--min-port={min_port}")
    if max_port is not None:
        argv.append(f"--max-port={max_port}")
    if allow_loopback_peers:
        argv.append("--allow-loopback-peers")
    if verbose:
        argv.append("--verbose")
    return argv


def binding_request() -> tuple[bytes, bytes]:
    """A STUN Binding request (RFC 5389) and its transaction id."""
    transaction = secrets.token_bytes(12)
    return struct.pack("!HHI", 0x0001, 0, 0x2112A442) + transaction, transaction


async def stun_answers(host: str, port: int) -> bool:
    """One STUN Binding request over UDP: did a success response come back?"""
    loop = asyncio.get_running_loop()
    answered: asyncio.Future[bytes] = loop.create_future()

    class Probe(asyncio.DatagramProtocol):
        def datagram_received(self, data: bytes, addr: tuple[str | int, ...]) -> None:
            if not answered.done():
                answered.set_result(data)

    transport, _ = await loop.create_datagram_endpoint(Probe, remote_addr=(host, port))
    try:
        request, transaction = binding_request()
        transport.sendto(request)
        try:
            data = await asyncio.wait_for(answered, 0.2)
        except TimeoutError:
            return False
        return data[:2] == b"\x01\x01" and data[8:20] == transaction
    finally:
        transport.close()


def free_port(host: str = "127.0.0.1") -> int:
    """A port free for both UDP and TCP on `host` (TURN listens on both)."""
    while True:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
            udp.bind((host, 0))
            port: int = udp.getsockname()[1]
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as tcp:
                try:
                    tcp.bind((host, port))
                except OSError:
                    continue
                return port


@dataclass
class Coturn:
    host: str
    port: int
    secret: str
    realm: str
    workdir: Path
    process: asyncio.subprocess.Process

    @property
    def turn_url(self) -> str:
        return f"turn:{self.host}:{self.port}"

    @property
    def turn_tcp_url(self) -> str:
        return f"turn:{self.host}:{self.port}?transport=tcp"

    @property
    def stun_url(self) -> str:
        return f"stun:{self.host}:{self.port}"

    def log(self) -> str:
        path = self.workdir / "turnserver.log"
        return path.read_text(errors="replace") if path.exists() else ""

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.terminate()
            try:
                await asyncio.wait_for(self.process.wait(), 5)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


async def start_coturn(workdir: Path, *, host: str = "127.0.0.1", secret: str = "") -> Coturn:
    """turnserver on `host` (a free port), relaying on `host`, loopback peers allowed."""
    if shutil.which(TURNSERVER) is None:
        raise RuntimeError("turnserver is missing: apt-get install coturn (.ci/debian-packages)")
    workdir.mkdir(parents=True, exist_ok=True)
    secret = secret or secrets.token_urlsafe(24)
    port = free_port(host)
    argv = turnserver_argv(
        listen_ip=host,
        port=port,
        relay_ip=host,
        secret=secret,
        realm=REALM,
        workdir=workdir,
        allow_loopback_peers=True,
    )
    with (workdir / "stderr.log").open("wb") as err:
        process = await asyncio.create_subprocess_exec(
            *argv, stdin=asyncio.subprocess.DEVNULL, stdout=err, stderr=err
        )
    server = Coturn(host, port, secret, REALM, workdir, process)
    try:
        async with asyncio.timeout(READY_WAIT):
            while not await stun_answers(host, port):
                if process.returncode is not None:
                    raise RuntimeError(f"turnserver exited {process.returncode}: see {workdir}")
    except BaseException:
        await server.stop()
        raise
    return server


@pytest.fixture
async def coturn(tmp_path: Path) -> AsyncIterator[Coturn]:
    """A running coturn on 127.0.0.1 with its own secret; stopped at teardown."""
    server = await start_coturn(tmp_path / "coturn")
    try:
        yield server
    finally:
        await server.stop()


__all__ = ["Coturn", "coturn", "free_port", "start_coturn", "stun_answers", "turnserver_argv"]
