"""The shared state several rendezvous instances need, started by the bench for one run.

`redis_server()` and `postgres_server()` each start Debian's binary as the unprivileged
user `nobody` in a fresh temporary directory, on a Unix socket there only (no TCP port to
collide on, nothing on the network), with persistence and fsync off, and remove it all
after. Nothing relayed in a run is written to disk.
"""

from __future__ import annotations

import asyncio
import contextlib
import glob
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable, Sequence
from pathlib import Path

from .procs import BenchError

USER = "nobody"
START_WAIT = 15.0  # seconds for a server to answer


def _which(name: str, package: str) -> str:
    versions = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    found = shutil.which(name) or (versions[-1] if versions else None)
    if found is None:
        raise BenchError(f"{name} not found: apt-get install {package} (.ci/debian-packages)")
    return found


def _own_dir(prefix: str) -> Path:
    root = Path(tempfile.mkdtemp(prefix=prefix))
    account = pwd.getpwnam(USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    return root


def _become_user() -> Callable[[], None]:
    """What the child runs before exec to become USER (looked up here, not after fork)."""
    account = pwd.getpwnam(USER)

    def become() -> None:
        os.setgroups([])
        os.setgid(account.pw_gid)
        os.setuid(account.pw_uid)

    return become


async def _as_user(*argv: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "runuser",
        "-u",
        USER,
        "--",
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    out, _ = await proc.communicate()
    if proc.returncode != 0:
        said = out.decode(errors="replace").strip().splitlines()[-3:]
        raise BenchError(f"{Path(argv[0]).name} failed ({proc.returncode}): {' | '.join(said)}")


async def _redis_answers(socket: Path) -> bool:
    with contextlib.suppress(OSError):
        reader, writer = await asyncio.open_unix_connection(str(socket))
        try:
            writer.write(b"PING\r\n")
            await writer.drain()
            return (await reader.readline()).startswith(b"+PONG")
        finally:
            writer.close()
    return False


@contextlib.asynccontextmanager
async def redis_server() -> AsyncIterator[str]:
    """A throwaway redis-server; yields its `unix://` URL."""
    root = _own_dir("chatorbit-bench-redis-")
    socket = root / "redis.sock"
    argv: Sequence[str] = (
        _which("redis-server", "redis-server"),
        *("--port", "0", "--unixsocket", str(socket), "--unixsocketperm", "777"),
        *("--dir", str(root), "--save", "", "--appendonly", "no"),
        *("--logfile", str(root / "redis.log"), "--daemonize", "no"),
        *("--maxclients", "10000"),
    )
    proc = await asyncio.create_subprocess_exec(
        *argv,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        preexec_fn=_become_user(),  # not runuser: killing runuser would leave redis-server
    )
    try:
        async with asyncio.timeout(START_WAIT):
            while not await _redis_answers(socket):
                if proc.returncode is not None:
                    raise BenchError(f"redis-server exited ({proc.returncode}); see its log")
                await asyncio.sleep(0.02)
        yield f"unix://{socket}"
    except TimeoutError:
        raise BenchError(f"redis-server did not answer in {START_WAIT:g} s") from None
    finally:
        if proc.returncode is None:
            proc.kill()
        await proc.wait()
        shutil.rmtree(root, ignore_errors=True)


@contextlib.asynccontextmanager
async def postgres_server() -> AsyncIterator[str]:
    """A throwaway PostgreSQL cluster (initdb, no fsync); yields a `postgresql://` URL."""
    root = _own_dir("chatorbit-bench-pg-")
    data = root / "data"
    pg_ctl = _which("pg_ctl", "postgresql")
    started = False
    try:
        await _as_user(
            _which("initdb", "postgresql"),
            *("-D", str(data), "-U", "postgres", "--auth=trust", "-E", "UTF8"),
            *("--no-locale", "--no-sync"),
        )
        options = f"-k {root} -c listen_addresses='' -F -c max_connections=200"
        await _as_user(
            pg_ctl, "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"
        )
        started = True
        yield f"postgresql://postgres@/postgres?host={root}"
    finally:
        if started:
            with contextlib.suppress(BenchError):
                await _as_user(pg_ctl, "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root, ignore_errors=True)
