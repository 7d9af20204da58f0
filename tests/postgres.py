"""A throwaway PostgreSQL (Debian's binaries) for the store tests.

`postgres_cluster` (once per test session) runs initdb and the server as the
unprivileged user `nobody` (PostgreSQL refuses root) in a fresh temp
directory, listening on a unix socket there only, and removes it all at the
end. `postgres_url` gives each test its own empty database, dropped after.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

USER = "nobody"


@dataclass(frozen=True)
class Cluster:
    socket_dir: Path

    def url(self, database: str = "postgres") -> str:
        return f"postgresql://postgres@/{database}?host={self.socket_dir}"


def _bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))
    if not found:
        raise RuntimeError(f"{name} not found: apt-get install postgresql (.ci/debian-packages)")
    return found[-1]


def _as_user(*argv: str) -> None:
    subprocess.run(["runuser", "-u", USER, "--", *argv], check=True, capture_output=True)


@pytest.fixture(scope="session")
def postgres_cluster() -> Iterator[Cluster]:
    root = Path(tempfile.mkdtemp(prefix="orbit-pg-"))
    account = pwd.getpwnam(USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    data = root / "data"
    _as_user(
        _bin("initdb"),
        "-D",
        str(data),
        "-U",
        "postgres",
        "--auth=trust",
        "-E",
        "UTF8",
        "--no-locale",
        "--no-sync",
    )
    options = f"-k {root} -c listen_addresses='' -F"  # unix socket only; no fsync
    _as_user(
        _bin("pg_ctl"), "-D", str(data), "-l", str(root / "log"), "-o", options, "-w", "start"
    )  # -w: returns once the server accepts connections
    try:
        yield Cluster(root)
    finally:
        _as_user(_bin("pg_ctl"), "-D", str(data), "-m", "immediate", "-w", "stop")
        shutil.rmtree(root)


@pytest.fixture
def postgres_url(postgres_cluster: Cluster) -> Iterator[str]:
    """A fresh empty database (synchronous, so that any fixture may ask for it by name)."""
    name = f"t_{secrets.token_hex(6)}"
    where = ["-h", str(postgres_cluster.socket_dir), "-U", "postgres"]
    subprocess.run([_bin("createdb"), *where, name], check=True, capture_output=True)
    yield postgres_cluster.url(name)
    subprocess.run([_bin("dropdb"), *where, "--force", name], check=True, capture_output=True)
