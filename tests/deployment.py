"""The shipped deployment (docs/deploy.md), started on loopback for the tests: nginx from
docs/deploy/nginx-chatorbit.conf terminating TLS with a certificate from a throwaway CA, two
rendezvous instances (real processes, docs/deploy/rendezvous-{a,b}.toml) sharing one
PostgreSQL database and one redis-server, and coturn from docs/deploy/turnserver.conf.

The shipped files are used as they are, but for what cannot be the same here: listen ports,
file paths, the upstream's servers, the database, Redis and TURN addresses and the TURN
secret (and coturn allows loopback peers, everything being on 127.0.0.1). Each rewrite must
find its line exactly once, so a change to a shipped file that the test no longer follows
fails loudly. `deployment` starts it all once per module (`Topology`), nginx spreading
requests over both instances as shipped; `failover_deployment` makes the second instance
nginx's backup, so that a test knows where every socket is.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import ssl
import subprocess
import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import aiohttp
import pytest
import pytest_asyncio

from tests.coturn import free_port, stun_answers
from tests.postgres import Cluster, _bin
from tests.processes import EVENT_WAIT, Process, spawn
from tests.redis_server import USER as REDIS_USER
from tests.redis_server import RedisServer
from tests.tls import Pki, make_pki

DEPLOY = Path(__file__).resolve().parent.parent / "docs" / "deploy"
NGINX_SITE = DEPLOY / "nginx-chatorbit.conf"
COTURN_CONF = DEPLOY / "turnserver.conf"
INSTANCES = ("a", "b")
PROXY_ADDRESS = "127.0.0.2"  # the site's proxy_bind: the instances trust it alone
START_WAIT = 15.0  # seconds for nginx or coturn to answer
T = TypeVar("T")


def rewrite(text: str, old: str, new: str, *, regex: bool = False) -> str:
    """`text` with `old` (a line's text, or a regex) replaced by `new`: exactly once."""
    pattern = old if regex else re.escape(old)
    result, count = re.subn(pattern, new.replace("\\", "\\\\"), text)
    if count != 1:
        raise AssertionError(f"the shipped file has {count} matches of {old!r}, expected 1")
    return result


# -- nginx --------------------------------------------------------------------------------
def nginx_site(
    root: Path, pki: Pki, port: int, http_port: int, upstreams: list[int], *, spread: bool
) -> str:
    site = NGINX_SITE.read_text()
    site = rewrite(site, "    listen 443 ssl http2;\n", f"    listen 127.0.0.1:{port} ssl http2;\n")
    site = rewrite(site, "    listen [::]:443 ssl http2;\n", "")
    site = rewrite(site, "    listen 80;\n", f"    listen 127.0.0.1:{http_port};\n")
    site = rewrite(site, "    listen [::]:80;\n", "")
    site = rewrite(site, "/etc/letsencrypt/live/chat.example.org/fullchain.pem", str(pki.cert_file))
    site = rewrite(site, "/etc/letsencrypt/live/chat.example.org/privkey.pem", str(pki.key_file))
    site = site.replace("/var/log/nginx/chatorbit.access.log", str(root / "access.log"))
    site = rewrite(site, "root /var/www/letsencrypt;", f"root {root / 'acme'};")
    for shipped, port_here in zip((50001, 50002), upstreams, strict=True):
        site = rewrite(site, f"server 127.0.0.1:{shipped} ", f"server 127.0.0.1:{port_here} ")
    if not spread:  # every request to the first instance while it is up, then the second
        site = rewrite(
            site, "fail_timeout=5s;\n    keepalive", "fail_timeout=5s backup;\n    keepalive"
        )
    return site


def nginx_conf(root: Path) -> str:
    """The main file around the site (Debian's nginx.conf does the same): workers as
    nobody, every file under `root`."""
    temp = "\n".join(
        f"    {kind}_temp_path {root / kind};" for kind in ("client_body", "proxy", "fastcgi")
    )
    return f"""user nobody nogroup;
worker_processes 1;
pid {root / "nginx.pid"};
error_log {root / "error.log"} info;
events {{ worker_connections 1024; }}
http {{
{temp}
    uwsgi_temp_path {root / "uwsgi"};
    scgi_temp_path {root / "scgi"};
    include {root / "chatorbit.conf"};
}}
"""


async def tcp_answers(host: str, port: int) -> bool:
    try:
        _, writer = await asyncio.open_connection(host, port)
    except OSError:
        return False
    writer.close()
    await writer.wait_closed()
    return True


async def start_nginx(
    root: Path, pki: Pki, upstreams: list[int], *, spread: bool
) -> tuple[Service, int, int]:
    """nginx from the shipped site: the service, its TLS port and its plain HTTP port."""
    root.mkdir(parents=True, exist_ok=True)
    port, http_port = free_port(), free_port()
    (root / "chatorbit.conf").write_text(
        nginx_site(root, pki, port, http_port, upstreams, spread=spread)
    )
    (root / "nginx.conf").write_text(nginx_conf(root))
    for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi", "acme"):
        (root / kind).mkdir(exist_ok=True)
    argv = ["nginx", "-p", str(root), "-c", str(root / "nginx.conf"), "-g", "daemon off;"]
    service = await Service.start("nginx", argv, root / "stderr.log")
    await service.wait_until(lambda: tcp_answers("127.0.0.1", port))
    return service, port, http_port


# -- coturn -------------------------------------------------------------------------------
def coturn_conf(root: Path, pki: Pki, port: int, tls_port: int, secret: str) -> str:
    conf = COTURN_CONF.read_text()
    conf = rewrite(conf, "listening-port=3478\n", f"listening-port={port}\n")
    conf = rewrite(conf, "tls-listening-port=5349\n", f"tls-listening-port={tls_port}\n")
    conf = rewrite(conf, "static-auth-secret=CHANGE-ME\n", f"static-auth-secret={secret}\n")
    conf = rewrite(conf, "cert=/etc/coturn/certs/fullchain.pem\n", f"cert={pki.cert_file}\n")
    conf = rewrite(conf, "pkey=/etc/coturn/certs/privkey.pem\n", f"pkey={pki.key_file}\n")
    conf = rewrite(conf, "syslog\n", f"log-file={root / 'turnserver.log'}\n")
    here = [
        "listening-ip=127.0.0.1",
        "relay-ip=127.0.0.1",
        "allow-loopback-peers",  # both daemons are on 127.0.0.1 here
        f"userdb={root / 'turndb'}",
        f"pidfile={root / 'turnserver.pid'}",
        "no-stdout-log",
    ]
    return conf + "\n# tests/deployment.py: loopback only\n" + "\n".join(here) + "\n"


async def start_coturn(root: Path, pki: Pki) -> tuple[Service, int, int, str]:
    """coturn from the shipped file: the service, its plain and TLS ports, its secret."""
    root.mkdir(parents=True, exist_ok=True)
    port, tls_port, secret = free_port(), free_port(), secrets.token_urlsafe(24)
    (root / "turnserver.conf").write_text(coturn_conf(root, pki, port, tls_port, secret))
    argv = ["turnserver", "-c", str(root / "turnserver.conf")]
    service = await Service.start("coturn", argv, root / "stderr.log")
    await service.wait_until(lambda: stun_answers("127.0.0.1", port))
    return service, port, tls_port, secret


# -- the parts, together ------------------------------------------------------------------
async def retried(start: Callable[[], Awaitable[T]], attempts: int = 3) -> T:
    """`start()`, again if it fails: it picks free ports, and on a loaded machine another
    process may take one between the pick and the bind."""
    for _ in range(attempts - 1):
        try:
            return await start()
        except RuntimeError:
            continue
    return await start()


@dataclass
class Service:
    """A process of the topology that is not Python (nginx, coturn)."""

    name: str
    process: asyncio.subprocess.Process
    log_path: Path

    @classmethod
    async def start(cls, name: str, argv: list[str], log_path: Path) -> Service:
        with log_path.open("wb") as log:
            process = await asyncio.create_subprocess_exec(
                *argv, stdin=asyncio.subprocess.DEVNULL, stdout=log, stderr=log
            )
        return cls(name, process, log_path)

    async def wait_until(self, answers: Any) -> None:
        async with asyncio.timeout(START_WAIT):
            while not await answers():
                if self.process.returncode is not None:
                    raise RuntimeError(f"{self.name} exited: {self.log_path.read_text()}")
                await asyncio.sleep(0.02)

    async def stop(self) -> None:
        if self.process.returncode is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.process.wait(), 10)
            except TimeoutError:
                self.process.kill()
                await self.process.wait()


@dataclass
class Topology:
    root: Path
    """The instances', coturn's and the CA's files."""
    shared: Path
    """nginx's and redis-server's files (their workers run as nobody)."""
    pki: Pki
    url: str
    """https://127.0.0.1:<nginx's port>: the rendezvous URL daemons are given."""
    instance_ports: dict[str, int]
    instances: dict[str, Process] = field(default_factory=dict)
    services: list[Service] = field(default_factory=list)
    instance_env: dict[str, str] = field(default_factory=dict)
    instance_flags: list[str] = field(default_factory=list)
    starts: dict[str, int] = field(default_factory=dict)
    turn_tls_port: int = 0
    """coturn's TLS port (`turns:`), with the test's certificate."""
    http_port: int = 0
    """nginx's plain HTTP port (the site's port 80)."""

    async def start_instance(self, name: str, *, fresh_port: bool = False) -> Process:
        """Start instance `name` on its port (`fresh_port`: a new free one first, before
        nginx knows the ports)."""
        if fresh_port:
            self.instance_ports[name] = free_port()
        env = os.environ | self.instance_env | {"ORBIT_RENDEZVOUS_INSTANCE_NAME": name}
        process = await spawn(
            [
                "-m",
                "rendezvous",
                "--config",
                str(DEPLOY / f"rendezvous-{name}.toml"),
                "--port",
                str(self.instance_ports[name]),
                *self.instance_flags,
            ],
            self.root / f"rendezvous-{name}-{self.starts.get(name, 0) + 1}.log",
            env,
        )
        self.instances[name] = process
        self.starts[name] = self.starts.get(name, 0) + 1
        return process

    async def until_nginx_uses(self, name: str) -> None:
        """Probe /healthz through nginx until instance `name` answers one: nginx leaves an
        instance that failed alone for its fail_timeout, even once it is back."""
        port = f"127.0.0.1:{self.instance_ports[name]}"
        access = self.shared / "nginx" / "access.log"
        trust = ssl.create_default_context(cafile=str(self.pki.ca_file))
        async with (
            aiohttp.ClientSession(connector=aiohttp.TCPConnector(ssl=trust)) as http,
            asyncio.timeout(EVENT_WAIT),
        ):
            while True:
                async with http.get(self.url + "/healthz") as response:
                    await response.read()
                last = access.read_text().splitlines()[-1]
                if last.split(", ")[-1].endswith(port):  # $upstream_addr: every one tried
                    return
                await asyncio.sleep(0.1)  # nginx says nothing else of its choice

    def log(self, name: str) -> list[dict[str, Any]]:
        """The JSON log lines so far of instance `name`'s latest start (its log file
        survives a kill; each start has its own)."""
        lines = self.instances[name].log_path.read_text().splitlines()
        return [json.loads(line) for line in lines if line.startswith("{")]

    async def stop(self) -> None:
        for process in self.instances.values():
            await process.stop()
        for service in reversed(self.services):
            await service.stop()


def create_database(cluster: Cluster) -> str:
    name = f"deploy_{secrets.token_hex(4)}"
    where = ["-h", str(cluster.socket_dir), "-U", "postgres"]
    subprocess.run([_bin("createdb"), *where, name], check=True, capture_output=True)
    return name


def drop_database(cluster: Cluster, name: str) -> None:
    where = ["-h", str(cluster.socket_dir), "-U", "postgres"]
    subprocess.run([_bin("dropdb"), *where, "--force", name], check=True, capture_output=True)


def start_redis(root: Path) -> RedisServer:
    root.mkdir(parents=True, exist_ok=True)
    account = pwd.getpwnam(REDIS_USER)
    os.chown(root, account.pw_uid, account.pw_gid)
    server = RedisServer(root)
    server.start()
    return server


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def deployment(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: Cluster
) -> AsyncIterator[Topology]:
    """The deployment as shipped: nginx spreads requests over both instances (a pair's two
    sockets may sit on different instances: the relay between them goes through Redis)."""
    async with topology(tmp_path_factory, postgres_cluster, spread=True) as started:
        yield started


@pytest_asyncio.fixture(loop_scope="module", scope="module")
async def failover_deployment(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: Cluster
) -> AsyncIterator[Topology]:
    """The same, but the second instance is nginx's `backup`: every socket is on the first
    while it is up, so that a test knows which instance holds what."""
    async with topology(tmp_path_factory, postgres_cluster, spread=False) as started:
        yield started


@contextlib.asynccontextmanager
async def topology(
    tmp_path_factory: pytest.TempPathFactory, postgres_cluster: Cluster, *, spread: bool
) -> AsyncIterator[Topology]:
    for binary in ("nginx", "turnserver", "redis-server"):
        if shutil.which(binary) is None:
            pytest.fail(f"{binary} is missing: see .ci/debian-packages")
    root = tmp_path_factory.mktemp("deploy")
    # What nobody (nginx's workers, redis-server) must reach: not under pytest's 0700 dirs.
    shared = Path(tempfile.mkdtemp(prefix="orbit-deploy-"))
    shared.chmod(0o755)
    pki = make_pki(root / "pki")
    database = create_database(postgres_cluster)
    redis = start_redis(shared / "redis")
    ports: dict[str, int] = {}
    started = Topology(root, shared, pki, "", ports)
    try:
        coturn, turn_port, started.turn_tls_port, secret = await retried(
            lambda: start_coturn(root / "coturn", pki)
        )
        started.services.append(coturn)
        started.instance_env = {"ORBIT_RENDEZVOUS_TURN_SHARED_SECRET": secret}
        started.instance_flags = [
            "--database",
            postgres_cluster.url(database),
            "--redis-url",
            redis.url,
            "--stun-urls",
            f"stun:127.0.0.1:{turn_port}",
            "--turn-urls",
            f"turn:127.0.0.1:{turn_port}",
            "--log-level",
            "debug",
        ]
        # One at a time: the first runs the database's migrations.
        for name in INSTANCES:
            await retried(functools.partial(started.start_instance, name, fresh_port=True))
        nginx, port, started.http_port = await retried(
            lambda: start_nginx(shared / "nginx", pki, list(ports.values()), spread=spread)
        )
        started.services.append(nginx)
        started.url = f"https://127.0.0.1:{port}"
        yield started
    finally:
        await started.stop()
        redis.stop()
        drop_database(postgres_cluster, database)
        shutil.rmtree(shared, ignore_errors=True)


__all__ = ["PROXY_ADDRESS", "Topology", "deployment", "failover_deployment"]
