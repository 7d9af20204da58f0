"""The daemon's control socket: `orbitd open` asks the running daemon for a login link.

A Unix socket of mode 0600 in a 0700 directory (`$XDG_RUNTIME_DIR/chatorbit/<profile>`,
else the profile's data directory), and the peer's uid is checked as well: only the
same OS user can ask. Frames: `orbitcore.protocol.control`, one JSON line each way.
The link goes from the daemon to the user's terminal or browser, never to a log.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import stat
import struct
from collections.abc import Callable, Iterator
from pathlib import Path

from orbitcore.paths import runtime_dir
from orbitcore.protocol.control import CHANNEL, Error, LoginLink, LoginLinkRequest
from orbitcore.protocol.frames import ProtocolError

from .settings import Config

log = logging.getLogger("orbitd.control")
SOCKET_NAME = "orbitd.sock"
READ_TIMEOUT = 5.0
SUN_PATH_MAX = 100  # sockaddr_un holds 108 bytes; longer paths go through /proc/self/fd


class ControlError(RuntimeError):
    """`orbitd open` could not get a link: the message says why and what to do."""


def socket_path(config: Config, environ: dict[str, str] | None = None) -> Path:
    base = runtime_dir(config.profile, environ)
    return (base if base is not None else config.data_path(environ)) / SOCKET_NAME


@contextlib.contextmanager
def _short(path: Path) -> Iterator[str]:
    """A name for `path` short enough for sockaddr_un (via the directory's descriptor)."""
    if len(os.fsencode(path)) <= SUN_PATH_MAX:
        yield str(path)
        return
    fd = os.open(path.parent, os.O_PATH | os.O_DIRECTORY)
    try:
        yield f"/proc/self/fd/{fd}/{path.name}"
    finally:
        os.close(fd)


def _private_dir(path: Path) -> None:
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    info = path.lstat()
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise OSError(f"{path} is not a directory of this user")
    if info.st_mode & 0o077:
        os.chmod(path, 0o700)


def _peer_uid(writer: asyncio.StreamWriter) -> int | None:
    sock = writer.get_extra_info("socket")
    if sock is None:
        return None
    creds = sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i"))
    return int(struct.unpack("3i", creds)[1])


class ControlServer:
    """Answers `login-link-request` with `make_link()`'s fresh one-time link."""

    def __init__(self, path: Path, make_link: Callable[[], LoginLink]) -> None:
        self.path = path
        self._make_link = make_link
        self._server: asyncio.Server | None = None
        self._inode: int | None = None

    async def start(self) -> bool:
        """Listen; False (logged) when another live daemon has the socket or it cannot be
        made: the daemon runs on, only `orbitd open` cannot reach it."""
        try:
            _private_dir(self.path.parent)
            if self.path.exists() or self.path.is_symlink():
                if await _alive(self.path):
                    log.warning("control socket taken: another orbitd of this profile runs")
                    return False
                if not stat.S_ISSOCK(self.path.lstat().st_mode):
                    raise OSError(f"{self.path} is not a socket")
                self.path.unlink()
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            with _short(self.path) as name:
                sock.bind(name)
            os.chmod(self.path, 0o600)
            self._inode = self.path.lstat().st_ino
            self._server = await asyncio.start_unix_server(
                self._serve, sock=sock, limit=CHANNEL.max_bytes + 2
            )
        except OSError as exc:
            log.warning("no control socket", extra={"fields": {"reason": str(exc)}})
            return False
        log.info("control socket ready", extra={"fields": {"path": str(self.path)}})
        return True

    async def close(self) -> None:
        if self._server is None:
            return
        self._server.close()
        await self._server.wait_closed()
        with contextlib.suppress(OSError):  # only our own socket: a later daemon's stays
            if self.path.lstat().st_ino == self._inode:
                self.path.unlink()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            if _peer_uid(writer) != os.getuid():
                return
            answer = await self._answer(reader)
            writer.write(answer.encode().encode() + b"\n")
            await writer.drain()
        except (OSError, asyncio.IncompleteReadError):
            pass  # the asker went away: nothing to tell
        finally:
            writer.close()
            with contextlib.suppress(OSError):
                await writer.wait_closed()

    async def _answer(self, reader: asyncio.StreamReader) -> LoginLink | Error:
        try:
            async with asyncio.timeout(READ_TIMEOUT):
                line = await reader.readuntil(b"\n")
            frame = CHANNEL.parse(line)
        except (ProtocolError, asyncio.LimitOverrunError, ValueError, TimeoutError):
            log.warning("control request refused", extra={"fields": {"code": "protocol_error"}})
            return Error("protocol_error", "Send one login-link-request frame on one line.")
        if not isinstance(frame, LoginLinkRequest):
            return Error("protocol_error", "The daemon answers only login-link-request.")
        log.info("login link handed out on the control socket")
        return self._make_link()


async def _alive(path: Path) -> bool:
    try:
        with _short(path) as name:
            _, writer = await asyncio.wait_for(asyncio.open_unix_connection(name), 2.0)
    except (OSError, TimeoutError):
        return False
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    return True


async def request_login_link(path: Path, profile: str) -> LoginLink:
    """Ask the daemon listening on `path` for a fresh one-time login link."""
    not_running = (
        f"orbitd (profile {profile}) is not running, or was started without a control "
        f"socket ({path}). Start it (`orbitd`, or `systemctl --user start orbitd`), then "
        "run this again."
    )
    try:
        with _short(path) as name:
            async with asyncio.timeout(READ_TIMEOUT):
                reader, writer = await asyncio.open_unix_connection(name, limit=4096)
                writer.write(LoginLinkRequest().encode().encode() + b"\n")
                await writer.drain()
                line = await reader.readline()
        writer.close()
    except (FileNotFoundError, ConnectionRefusedError):
        raise ControlError(not_running) from None
    except (OSError, TimeoutError) as exc:
        raise ControlError(f"cannot ask orbitd (profile {profile}) at {path}: {exc}") from None
    try:
        answer = CHANNEL.parse(line)
    except ProtocolError:
        raise ControlError(f"orbitd (profile {profile}) gave no login link.") from None
    if isinstance(answer, Error):
        raise ControlError(f"orbitd refused: {answer.message}")
    if not isinstance(answer, LoginLink):
        raise ControlError(f"orbitd (profile {profile}) gave no login link.")
    return answer


def join_url(login_url: str, invite: str) -> str:
    """A login link that lands on the join page with `invite` filled in: the invite goes
    after `#`, so the browser keeps it to itself (never in a request, never in a log)."""
    return f"{login_url}&next=join#{invite}"
