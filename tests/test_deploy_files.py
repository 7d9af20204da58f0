"""The deployment's files (docs/deploy/, systemd/) agree with each other and with
docs/deploy.md; the shipped Redis configuration keeps nothing on disk and listens on
loopback only. (tests/test_deployment*.py run nginx, coturn and the instances from them.)"""

from __future__ import annotations

import ipaddress
import os
import pwd
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from rendezvous.settings import load_config
from tests.deployment import DEPLOY, INSTANCES, NGINX_SITE, rewrite
from tests.redis_server import USER, redis_server_binary

ROOT = DEPLOY.parent.parent
GUIDE = ROOT / "docs" / "deploy.md"


def test_the_guide_names_every_shipped_file_and_the_readme_links_it() -> None:
    guide = GUIDE.read_text()
    for path in [*DEPLOY.iterdir(), *(ROOT / "systemd").iterdir()]:
        assert path.name in guide, f"docs/deploy.md does not say what {path.name} is"
    assert "(docs/deploy.md)" in (ROOT / "README.md").read_text()


def test_the_instances_differ_in_their_port_alone_and_trust_nginx_alone() -> None:
    secret = {"ORBIT_RENDEZVOUS_TURN_SHARED_SECRET": "s3cret"}
    configs = [
        load_config(toml_path=str(DEPLOY / f"rendezvous-{name}.toml"), environ=secret)
        for name in INSTANCES
    ]
    ports = [config.port for config in configs]
    assert len(set(ports)) == len(ports)
    assert all(replace(c, port=0) == replace(configs[0], port=0) for c in configs)
    site = NGINX_SITE.read_text()
    for port in ports:  # nginx's upstream lists each instance
        assert f"server 127.0.0.1:{port} " in site
    bound = re.search(r"proxy_bind (\S+);", site)
    assert bound is not None
    trusted = [ipaddress.ip_network(net) for net in configs[0].trusted_proxies]
    assert trusted == [ipaddress.ip_network(f"{bound.group(1)}/32")]
    assert all(c.host == "127.0.0.1" for c in configs)  # never exposed past nginx


@pytest.fixture
def redis_from_the_shipped_file() -> Iterator[Path]:
    """redis-server started from docs/deploy/redis.conf, its paths and port rewritten (a
    Unix socket in a temp dir), as nobody; its socket's path."""
    root = Path(tempfile.mkdtemp(prefix="orbit-redis-conf-"))
    account = pwd.getpwnam(USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    conf = (DEPLOY / "redis.conf").read_text()
    conf = rewrite(conf, "port 6379\n", f"port 0\nunixsocket {root / 'redis.sock'}\n")
    conf = rewrite(conf, "/run/redis/redis-server.pid", str(root / "redis.pid"))
    conf = rewrite(conf, "dir /var/lib/redis\n", f"dir {root}\n")
    conf = rewrite(conf, "/var/log/redis/redis-server.log", str(root / "redis.log"))
    (root / "redis.conf").write_text(conf)
    process = subprocess.Popen(
        [redis_server_binary(), str(root / "redis.conf")],
        user=account.pw_uid,
        group=account.pw_gid,
        extra_groups=[],
    )
    try:
        deadline = time.monotonic() + 10
        while not (root / "redis.sock").exists():
            assert process.poll() is None, (root / "redis.log").read_text()
            assert time.monotonic() < deadline, "redis-server did not start"
            time.sleep(0.01)
        yield root / "redis.sock"
    finally:
        process.kill()
        process.wait()
        shutil.rmtree(root, ignore_errors=True)


def test_the_shipped_redis_keeps_nothing_on_disk_and_listens_on_loopback(
    redis_from_the_shipped_file: Path,
) -> None:
    def config(name: str) -> str:
        done = subprocess.run(
            ["redis-cli", "-s", str(redis_from_the_shipped_file), "config", "get", name],
            capture_output=True,
            text=True,
            check=True,
        )
        return done.stdout.splitlines()[1] if done.stdout.count("\n") >= 2 else ""

    assert config("save") == ""
    assert config("appendonly") == "no"
    assert config("bind").split() == ["127.0.0.1", "-::1"]
    assert config("protected-mode") == "yes"
    assert config("maxmemory-policy") == "noeviction"
