"""Two homes behind NATs and a public segment, in network namespaces the test builds.

`nat_net` (a fixture; home A cone and home B symmetric unless parametrized indirectly
with a pair of kinds) makes, for this test process (pid P, X = 1 + P % 250):

    nt<P>-a  10.201.X.66/26  --lan-- nt<P>-na [NAT] wan 10.201.X.2 --+
                                                                     +-- nt<P>-wan (bridge br0)
    nt<P>-b  10.201.X.130/26 --lan-- nt<P>-nb [NAT] wan 10.201.X.3 --+-- nt<P>-pub 10.201.X.10
                                                          (rendezvous :8080, coturn :3478)

A `cone` NAT is a plain masquerade (it keeps the source port: endpoint-independent
mapping, so STUN hole punching works); a `symmetric` one is `masquerade fully-random`
(a new public port per destination: only a TURN relay gets through). Both drop
unsolicited new UDP on the WAN at the input hook, before conntrack confirms it (an
early hole-punch packet would otherwise take the port that the outbound mapping
wants). The NATs and the public host have a default route into a veth whose far end
goes nowhere (a fake gateway with a static MAC): packets to addresses outside the
topology vanish silently, as on the Internet (without it coturn's sendto() to a peer's
private candidate fails, and coturn then closes the whole allocation). Each of these
three details was found by a failing run.

Every veth is created inside two of these namespaces, so nothing is added to the
root namespace (the fixture checks). Teardown, also after a failure, kills every
process inside the namespaces (by pid, `ip netns pids`) and deletes them.

`cut_uplink` takes a NAT's WAN link down, which wipes its NAT mappings as a router's
WAN reconnect does; `restore_uplink` brings it back, optionally with a new public
address. `block_udp` drops a home's outbound UDP (TURN over TCP still works).
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from rendezvous.turn import turn_credential
from tests.coturn import REALM as TURN_REALM
from tests.coturn import turnserver_argv
from tests.netns import REPO, Host, NsDaemon, _ip, delete_namespaces, root_links, skip_reason

CONE = "cone"
SYMMETRIC = "symmetric"
NAT_KINDS = (CONE, SYMMETRIC)
RENDEZVOUS_PORT = 8080
TURN_PORT = 3478
VOID_GATEWAY = "254"  # the last octet of the fake default gateway
VOID_MAC = "02:00:00:00:00:fe"


def _in(ns: str, *argv: str, stdin: str | None = None) -> str:
    done = subprocess.run(
        ["ip", "netns", "exec", ns, *argv],
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
    )
    if done.returncode != 0:
        raise RuntimeError(f"{ns}: {' '.join(argv)}: {done.stderr.strip()}")
    return done.stdout


def nat_skip_reason() -> str | None:
    """Why the NAT topology cannot be built here, or None."""
    reason = skip_reason()
    if reason:
        return reason
    for tool, package in (("nft", "nftables"), ("turnserver", "coturn")):
        if shutil.which(tool) is None:
            return f"`{tool}` is missing (Debian package {package}: run `make test`)"
    return None


def nat_rules(kind: str) -> str:
    """The nftables ruleset of a home router: masquerade out of `wan`, nothing unsolicited in."""
    if kind not in NAT_KINDS:
        raise ValueError(f"NAT kind {kind!r}: one of {NAT_KINDS}")
    random = " fully-random" if kind == SYMMETRIC else ""
    return f"""
table ip nat {{
  chain post {{ type nat hook postrouting priority srcnat; policy accept;
    oifname "wan" masquerade{random}
  }}
}}
table ip filter {{
  chain fw {{ type filter hook forward priority filter; policy drop;
    iifname "lan" oifname "wan" accept
    ct state established,related accept
  }}
  chain in {{ type filter hook input priority filter; policy accept;
    iifname "wan" ct state new meta l4proto udp drop
  }}
}}
"""


BLOCK_UDP_RULES = """
table ip block_udp {
  chain fw { type filter hook forward priority filter - 10; policy accept;
    iifname "lan" meta l4proto udp drop
  }
}
"""


def turn_rest_credentials(secret: str, ttl: float, now: float | None = None) -> tuple[str, str]:
    """(user name, credential) in the TURN REST convention coturn checks with use-auth-secret:
    the rendezvous's own `turn_credential`."""
    username = f"{int((time.time() if now is None else now) + ttl)}:nat-test"
    return username, turn_credential(secret, username)


@dataclass
class Home:
    """One home: a host behind its own NAT router."""

    name: str
    kind: str
    host: Host
    nat: str
    public: str
    """The NAT's current public (WAN) address."""


@dataclass
class Spawned:
    """A process started inside a namespace (its log in a file)."""

    proc: asyncio.subprocess.Process
    log: Path

    async def stop(self) -> None:
        if self.proc.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.proc.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(self.proc.wait(), 10)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()

    async def kill9(self) -> None:
        if self.proc.returncode is None:
            self.proc.kill()
            await self.proc.wait()


@dataclass
class NatNet:
    """The topology: `homes["a"]`, `homes["b"]`, the public host, its processes."""

    kinds: tuple[str, str] = (CONE, SYMMETRIC)
    run_dir: Path = field(default_factory=Path)
    prefix: str = field(default_factory=lambda: f"nt{os.getpid()}")
    net: str = field(default_factory=lambda: f"10.201.{1 + os.getpid() % 250}")
    homes: dict[str, Home] = field(default_factory=dict)
    made: list[str] = field(default_factory=list)
    spawned: list[Spawned] = field(default_factory=list)
    turn_secret: str = field(default_factory=lambda: base64.b64encode(os.urandom(18)).decode())

    @property
    def public(self) -> Host:
        return Host(f"{self.prefix}-pub", f"{self.net}.10")

    @property
    def rendezvous_url(self) -> str:
        return f"http://{self.public.address}:{RENDEZVOUS_PORT}"

    @property
    def stun_url(self) -> str:
        return f"stun:{self.public.address}:{TURN_PORT}"

    def turn_url(self, transport: str = "udp") -> str:
        suffix = "" if transport == "udp" else f"?transport={transport}"
        return f"turn:{self.public.address}:{TURN_PORT}{suffix}"

    # --- building and tearing down ------------------------------------------------------

    def _netns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.made.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def _void_default_route(self, ns: str, wan_ns: str, port: str) -> None:
        """A default route into a veth that ends unbridged: unknown destinations vanish."""
        _ip("-n", ns, "link", "add", "void", "type", "veth", "peer", "name", port, "netns", wan_ns)
        _ip("-n", wan_ns, "link", "set", port, "up")
        _ip("-n", ns, "link", "set", "void", "up")
        gateway = f"{self.net}.{VOID_GATEWAY}"
        _ip("-n", ns, "route", "add", "default", "via", gateway, "dev", "void", "onlink")
        _ip("-n", ns, "neigh", "add", gateway, "lladdr", VOID_MAC, "dev", "void")
        _ip(
            "-n",
            ns,
            "neigh",
            "change",
            gateway,
            "lladdr",
            VOID_MAC,
            "dev",
            "void",
            "nud",
            "permanent",
        )

    def _wan_port(self, ns: str, port: str, address: str) -> None:
        wan = f"{self.prefix}-wan"
        _ip("-n", ns, "link", "add", "wan", "type", "veth", "peer", "name", port, "netns", wan)
        _ip("-n", wan, "link", "set", port, "master", "br0", "up")
        _ip("-n", ns, "addr", "add", f"{address}/26", "dev", "wan")
        _ip("-n", ns, "link", "set", "wan", "up")
        self._void_default_route(ns, wan, f"v{port}")

    def up(self) -> None:
        wan = f"{self.prefix}-wan"
        self._netns(wan)
        _ip("-n", wan, "link", "add", "br0", "type", "bridge", "stp_state", "0")
        _ip("-n", wan, "link", "set", "br0", "up")
        self._netns(self.public.ns)
        self._wan_port(self.public.ns, "wp", self.public.address)
        for (name, kind), wan_last, lan_base in zip(
            (("a", self.kinds[0]), ("b", self.kinds[1])), (2, 3), (64, 128), strict=True
        ):
            nat, host_ns = f"{self.prefix}-n{name}", f"{self.prefix}-{name}"
            public, gateway, address = (
                f"{self.net}.{wan_last}",
                f"{self.net}.{lan_base + 1}",
                f"{self.net}.{lan_base + 2}",
            )
            self._netns(nat)
            self._netns(host_ns)
            self._wan_port(nat, f"w{name}", public)
            _ip("-n", nat, "link", "add", "lan", "type", "veth", "peer", "name", "eth0")
            _ip("-n", nat, "link", "set", "eth0", "netns", host_ns)
            _ip("-n", nat, "addr", "add", f"{gateway}/26", "dev", "lan")
            _ip("-n", nat, "link", "set", "lan", "up")
            _ip("-n", host_ns, "addr", "add", f"{address}/26", "dev", "eth0")
            _ip("-n", host_ns, "link", "set", "eth0", "up")
            _ip("-n", host_ns, "route", "add", "default", "via", gateway)
            _in(nat, "sysctl", "-qw", "net.ipv4.ip_forward=1")
            _in(nat, "nft", "-f", "-", stdin=nat_rules(kind))
            self.homes[name] = Home(name, kind, Host(host_ns, address), nat, public)

    def down(self) -> None:
        """Kill what runs inside our namespaces (by pid) and delete them; never raises."""
        delete_namespaces(self.made)

    # --- the network misbehaving -------------------------------------------------------

    def cut_uplink(self, home: str) -> None:
        """The home's router loses its WAN link (and with it every NAT mapping)."""
        _ip("-n", self.homes[home].nat, "link", "set", "wan", "down")

    def restore_uplink(self, home: str, new_public: str | None = None) -> None:
        """The WAN link comes back; with `new_public`, under a new public address."""
        nat = self.homes[home]
        if new_public is not None:
            _ip("-n", nat.nat, "addr", "flush", "dev", "wan")
            _ip("-n", nat.nat, "addr", "add", f"{new_public}/26", "dev", "wan")
            nat.public = new_public
        _ip("-n", nat.nat, "link", "set", "wan", "up")

    def spare_public(self, home: str) -> str:
        """An unused WAN address for `home` (for a public address change)."""
        return f"{self.net}.{20 if home == 'a' else 21}"

    def conntrack_flushed(self, home: str) -> bool:
        """True when the home's router holds no NAT mapping (a wiped router, e.g. after a cut)."""
        return not _in(self.homes[home].nat, "cat", "/proc/net/nf_conntrack").strip()

    def block_udp(self, home: str) -> None:
        """Drop every UDP packet the home sends out (a network that allows only TCP)."""
        _in(self.homes[home].nat, "nft", "-f", "-", stdin=BLOCK_UDP_RULES)

    def unblock_udp(self, home: str) -> None:
        _in(self.homes[home].nat, "nft", "delete", "table", "ip", "block_udp")

    def links(self, ns: str) -> list[str]:
        return sorted(link["ifname"] for link in json.loads(_ip("-n", ns, "-j", "link")))

    # --- processes -------------------------------------------------------------------------

    async def spawn(
        self, ns: str, argv: Sequence[str], log_name: str, env: dict[str, str] | None = None
    ) -> Spawned:
        log = self.run_dir / log_name
        with log.open("ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                "ip",
                "netns",
                "exec",
                ns,
                *argv,
                stdin=asyncio.subprocess.DEVNULL,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                cwd=REPO,
                env=os.environ | (env or {}),
            )
        spawned = Spawned(proc, log)
        self.spawned.append(spawned)
        return spawned

    async def start_rendezvous(self, *flags: str, ice: bool = False) -> Spawned:
        """The rendezvous on the public host (a fixed port, so a restart keeps its URL);
        with `ice`, it hands out coturn's STUN and TURN (UDP and TCP) with credentials
        minted under turn_secret (passed in the environment, not on the command line)."""
        if ice:
            turn = f"{self.turn_url()},{self.turn_url('tcp')}"
            flags = ("--stun-urls", self.stun_url, "--turn-urls", turn, *flags)
        argv = [
            sys.executable,
            "-m",
            "rendezvous",
            "--host",
            self.public.address,
            "--port",
            str(RENDEZVOUS_PORT),
            "--database",
            ":memory:",
            *flags,
        ]
        env = {"ORBIT_RENDEZVOUS_TURN_SHARED_SECRET": self.turn_secret} if ice else {}
        spawned = await self.spawn(self.public.ns, argv, "rendezvous.log", env)
        assert spawned.proc.stdout is not None
        line = await asyncio.wait_for(spawned.proc.stdout.readline(), 30)
        if not line:
            await spawned.proc.wait()
            raise RuntimeError(f"the rendezvous exited early: {spawned.log.read_text()[-3000:]}")
        return spawned

    async def start_coturn(self) -> Spawned:
        """coturn on the public host (UDP and TCP), TURN REST credentials under turn_secret."""
        argv = turnserver_argv(
            listen_ip=self.public.address,
            port=TURN_PORT,
            relay_ip=self.public.address,
            secret=self.turn_secret,
            realm=TURN_REALM,
            workdir=self.run_dir,
            min_port=49152,
            max_port=49252,
        )
        spawned = await self.spawn(self.public.ns, argv, "turnserver.stderr")
        listening = f"{self.public.address}:{TURN_PORT}"
        async with asyncio.timeout(15):
            while True:
                udp = _in(self.public.ns, "ss", "-Hlun")
                tcp = _in(self.public.ns, "ss", "-Hltn")
                if listening in udp and listening in tcp:
                    return spawned
                if spawned.proc.returncode is not None:
                    raise RuntimeError(f"turnserver exited: {spawned.log.read_text()[-2000:]}")
                await asyncio.sleep(0.05)

    def turn_credentials(self, ttl: float = 3600.0) -> tuple[str, str]:
        return turn_rest_credentials(self.turn_secret, ttl)

    async def daemon(self, home: str, profile: str, *orbitd_flags: str) -> NsDaemon:
        """An orbitd in `home`, online through the public rendezvous, LAN discovery off."""
        host = self.homes[home].host
        return await NsDaemon.start(
            host,
            self.run_dir / profile,
            "--profile",
            profile,
            "--rendezvous",
            self.rendezvous_url,
            "--",
            "--no-lan-enabled",
            *orbitd_flags,
        )

    async def stop_all(self) -> None:
        for spawned in reversed(self.spawned):
            await spawned.stop()
        self.spawned.clear()


@pytest.fixture(name="nat_net")
async def nat_net_fixture(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[NatNet]:
    """The topology (home kinds from an indirect parameter), checked and always torn down."""
    reason = nat_skip_reason()
    if reason:
        pytest.skip(reason)
    kinds: tuple[str, str] = getattr(request, "param", (CONE, SYMMETRIC))
    before = root_links()
    net = NatNet(kinds, tmp_path)
    try:
        net.up()
        assert root_links() == before, "building the NAT topology changed the root namespace"
        for home in net.homes.values():
            assert net.links(home.host.ns) == ["eth0", "lo"]
        yield net
    finally:
        try:
            await net.stop_all()
        finally:
            net.down()


def hand_ice_flags(net: NatNet, *urls: str) -> list[str]:
    """orbitd flags naming `urls` as the user's own ICE servers (TURN ones with credentials)."""
    flags = ["--ice-servers", ",".join(urls)]
    if any(url.startswith("turn") for url in urls):
        username, credential = net.turn_credentials()
        flags += ["--ice-username", username, "--ice-credential", credential]
    return flags
