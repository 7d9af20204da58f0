"""A throwaway redis-server (Debian's binary) for the tests that share state across instances.

`redis_server` starts a fresh server for one test as the unprivileged user `nobody`, in a
temporary directory, listening on a Unix socket there only (no TCP port to collide on),
with persistence off: nothing a test relays is ever written to disk. `RedisServer.stop()`
kills it mid-test (an outage); `start()` brings it back on the same socket.
`redis_url` is the URL alone, for a test that needs nothing more.
"""

from __future__ import annotations

import os
import pwd
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

USER = "nobody"
START_WAIT = 10.0  # seconds for the server to accept connections


def redis_server_binary() -> str:
    found = shutil.which("redis-server")
    if found is None:
        raise RuntimeError(
            "redis-server not found: apt-get install redis-server (.ci/debian-packages)"
        )
    return found


@dataclass
class RedisServer:
    root: Path
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def socket(self) -> Path:
        return self.root / "redis.sock"

    @property
    def url(self) -> str:
        return f"unix://{self.socket}"

    def start(self) -> None:
        assert self.process is None, "already running"
        self.socket.unlink(missing_ok=True)
        argv = [
            redis_server_binary(),
            "--port",
            "0",  # no TCP: the Unix socket only
            "--unixsocket",
            str(self.socket),
            "--unixsocketperm",
            "777",
            "--dir",
            str(self.root),
            "--save",
            "",  # no snapshots
            "--appendonly",
            "no",  # no log of writes
            "--logfile",
            str(self.root / "redis.log"),
            "--daemonize",
            "no",
        ]
        account = pwd.getpwnam(USER)
        # The server itself as `nobody` (not under runuser, which forks: killing runuser
        # would leave the server running, and an outage would not be one).
        self.process = subprocess.Popen(
            argv, user=account.pw_uid, group=account.pw_gid, extra_groups=[]
        )
        deadline = time.monotonic() + START_WAIT
        while not self._answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"redis-server did not start; see {self.root / 'redis.log'}")
            time.sleep(0.01)

    def _answers(self) -> bool:
        probe = subprocess.run(
            ["redis-cli", "-s", str(self.socket), "ping"], capture_output=True, check=False
        )
        return probe.stdout.strip() == b"PONG"

    def stop(self) -> None:
        """Kill the server at once (SIGKILL: an outage, not a shutdown)."""
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None


@pytest.fixture
def redis_server() -> Iterator[RedisServer]:
    root = Path(tempfile.mkdtemp(prefix="orbit-redis-"))
    account = pwd.getpwnam(USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    server = RedisServer(root)
    server.start()
    try:
        yield server
    finally:
        server.stop()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url
