"""A LAN of network namespaces for tests, built and torn down by the test itself.

`netns_lan` (a fixture; 3 hosts unless parametrized indirectly) makes, for this
test process (pid P):

    co<P>-sw   bridge br0 (no address), ports p1..pN
    co<P>-h1   lo + eth0 10.201.X.11/24 (X from the pid, so parallel runs differ)
    ...
    co<P>-hN   lo + eth0 10.201.X.(10+N)/24, and a route for 224.0.0.0/4 (mDNS)

Every veth pair is created directly inside two of these namespaces, so nothing
is added to the root namespace; the fixture checks that the root namespace's
interfaces are the same after building. Teardown (also after a failure) kills
the processes inside each namespace (by pid, from `ip netns pids`) and deletes
the namespaces. Without root or `ip netns` the test is skipped.

`NsDaemon` drives one orbitd inside a namespace through `tests/ns_daemon.py`
(JSON lines over the driver's pipes: the daemon's UI is 127.0.0.1 inside its
namespace, out of the test's reach). `MdnsSniffer` watches every interface of
the root namespace, passively (a packet socket; it sends nothing), for mDNS
packets that carry a marker of the test (a fingerprint, a name, an address).
"""

from __future__ import annotations

import asyncio
import contextlib
import ctypes
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

REPO = Path(__file__).resolve().parent.parent
NEEDS_ROOT = "needs root (network namespaces)"
EVENT_WAIT = 15.0


def skip_reason() -> str | None:
    """Why namespace tests cannot run here, or None."""
    if os.geteuid() != 0:
        return NEEDS_ROOT
    if shutil.which("ip") is None:
        return f"{NEEDS_ROOT}: `ip` (iproute2) is missing"
    probe = subprocess.run(["ip", "netns", "list"], capture_output=True, check=False)
    if probe.returncode != 0:
        return f"{NEEDS_ROOT}: `ip netns` is unavailable"
    return None


def _ip(*args: str) -> str:
    done = subprocess.run(["ip", *args], capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def delete_namespaces(made: list[str]) -> None:
    """Kill what runs inside these namespaces (by pid), delete them, empty the list; never
    raises."""
    for ns in reversed(made):
        with contextlib.suppress(RuntimeError):
            for pid in _ip("netns", "pids", ns).split():
                with contextlib.suppress(ProcessLookupError, ValueError):
                    os.kill(int(pid), signal.SIGKILL)
    for ns in reversed(made):
        for _ in range(40):  # deleting fails while a killed process is still exiting
            try:
                _ip("netns", "del", ns)
                break
            except RuntimeError:
                time.sleep(0.05)
    made.clear()


def root_links() -> list[str]:
    """The root namespace's interface names (read only)."""
    return sorted(link["ifname"] for link in json.loads(_ip("-j", "link", "show")))


@dataclass(frozen=True)
class Host:
    ns: str
    address: str

    def links(self) -> list[str]:
        return sorted(link["ifname"] for link in json.loads(_ip("-n", self.ns, "-j", "link")))


@dataclass
class NetnsLan:
    """N hosts on one bridge, each in its own namespace."""

    size: int
    prefix: str = field(default_factory=lambda: f"co{os.getpid()}")
    subnet: str = field(default_factory=lambda: f"10.201.{1 + os.getpid() % 250}")
    hosts: list[Host] = field(default_factory=list)
    made: list[str] = field(default_factory=list)

    @property
    def switch(self) -> str:
        return f"{self.prefix}-sw"

    def up(self) -> None:
        sw = self.switch
        _ip("netns", "add", sw)
        self.made.append(sw)
        _ip("-n", sw, "link", "set", "lo", "up")
        _ip("-n", sw, "link", "add", "br0", "type", "bridge", "mcast_snooping", "0")
        _ip("-n", sw, "link", "set", "br0", "up")
        for i in range(1, self.size + 1):
            ns, address = f"{self.prefix}-h{i}", f"{self.subnet}.{10 + i}"
            _ip("netns", "add", ns)
            self.made.append(ns)
            _ip("-n", ns, "link", "set", "lo", "up")
            _ip(
                "-n",
                ns,
                "link",
                "add",
                "eth0",
                "type",
                "veth",
                "peer",
                "name",
                f"p{i}",
                "netns",
                sw,
            )
            _ip("-n", sw, "link", "set", f"p{i}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            _ip("-n", ns, "route", "add", "224.0.0.0/4", "dev", "eth0")
            self.hosts.append(Host(ns, address))

    def down(self) -> None:
        """Kill what runs inside our namespaces (by pid) and delete them; never raises."""
        delete_namespaces(self.made)


@pytest.fixture(name="netns_lan")
def netns_lan_fixture(request: pytest.FixtureRequest) -> Iterator[NetnsLan]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    before = root_links()
    lan = NetnsLan(getattr(request, "param", 3))
    try:
        lan.up()
        assert root_links() == before, "building the LAN changed the root namespace"
        for host in lan.hosts:
            assert host.links() == ["eth0", "lo"]
        yield lan
    finally:
        lan.down()


# --- the driver's client ------------------------------------------------------------------


class NsDaemon:
    """One `tests.ns_daemon` driver (and its orbitd) inside a namespace."""

    def __init__(self, proc: asyncio.subprocess.Process, ready: dict[str, Any], log: Path) -> None:
        self.proc = proc
        self.ready = ready
        self.log = log
        self.events: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.exited: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self._calls: dict[int, asyncio.Future[tuple[int, Any]]] = {}
        self._next_id = 0
        self._reader = asyncio.create_task(self._read())

    @property
    def pid(self) -> int:
        """The pid of the orbitd (or impostor) process itself, not of the driver."""
        return int(self.ready["pid"])

    @classmethod
    async def start(cls, host: Host, home: Path, *args: str) -> NsDaemon:
        """`ip netns exec NS python -m tests.ns_daemon --home HOME --lan-address ADDR ARGS`."""
        home.mkdir(parents=True, exist_ok=True)
        log = home / "driver.log"
        with log.open("ab") as log_file:
            proc = await asyncio.create_subprocess_exec(
                "ip",
                "netns",
                "exec",
                host.ns,
                sys.executable,
                "-m",
                "tests.ns_daemon",
                "--home",
                str(home),
                "--lan-address",
                host.address,
                *args,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                stderr=log_file,
                cwd=REPO,
                limit=1 << 20,
            )
        assert proc.stdout is not None
        try:
            line = await asyncio.wait_for(proc.stdout.readline(), 30)
        except TimeoutError:
            proc.kill()
            raise
        if not line:
            await proc.wait()
            raise RuntimeError(f"the driver exited early: {log.read_text()[-3000:]}")
        return cls(proc, json.loads(line)["ready"], log)

    async def _read(self) -> None:
        assert self.proc.stdout is not None
        while line := await self.proc.stdout.readline():
            message = json.loads(line)
            if "event" in message:
                self.events.put_nowait(message["event"])
            elif "id" in message:
                future = self._calls.pop(message["id"], None)
                if future is not None and not future.done():
                    future.set_result((message["status"], message["body"]))
            elif "exited" in message and not self.exited.done():
                self.exited.set_result(message["exited"])
        if not self.exited.done():
            self.exited.set_result(-1)
        for future in self._calls.values():
            if not future.done():
                future.set_exception(ConnectionError("the driver is gone"))

    async def call(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        """A request to this daemon's UI (a path under its base URL)."""
        return await self._send({"method": method, "path": path, "body": body})

    async def raw(self, method: str, url: str, body: Any = None) -> tuple[int, Any]:
        """A request to any URL, from this namespace (a driver started with `--raw`)."""
        return await self._send({"method": method, "url": url, "body": body})

    async def files_job(self, op: str, file_id: str, size: int, within: float) -> tuple[int, Any]:
        """Upload the test file (tests/files_client.py) through this daemon's API, or
        download and hash it (`op`), within `within` seconds."""
        job = {"op": op, "file_id": file_id, "size": size}
        return await self._send({"files": job}, within)

    async def _send(self, command: dict[str, Any], within: float = EVENT_WAIT) -> tuple[int, Any]:
        assert self.proc.stdin is not None
        self._next_id += 1
        future: asyncio.Future[tuple[int, Any]] = asyncio.get_running_loop().create_future()
        self._calls[self._next_id] = future
        self.proc.stdin.write(json.dumps({"id": self._next_id, **command}).encode() + b"\n")
        await self.proc.stdin.drain()
        return await asyncio.wait_for(future, within)

    async def event(self, kind: str, **match: Any) -> dict[str, Any]:
        """The next event of `kind` whose fields include `match` (others are skipped)."""
        return await self.until(
            kind, lambda e: all(e.get(k) == v for k, v in match.items()), EVENT_WAIT
        )

    async def until(
        self, kind: str, predicate: Callable[[dict[str, Any]], bool], within: float
    ) -> dict[str, Any]:
        async with asyncio.timeout(within):
            while True:
                event = await self.events.get()
                if event.get("type") == kind and predicate(event):
                    return event

    async def nearby_until(
        self, predicate: Callable[[list[dict[str, Any]]], bool], within: float = EVENT_WAIT
    ) -> list[dict[str, Any]]:
        """The Nearby list once `predicate` holds: now (GET) or at a later `nearby` event."""
        status, body = await self.call("GET", "/api/nearby")
        assert status == 200, body
        peers: list[dict[str, Any]] = body["peers"]
        if predicate(peers):
            return peers
        event = await self.until("nearby", lambda e: predicate(e["peers"]), within)
        result: list[dict[str, Any]] = event["peers"]
        return result

    def kill9(self) -> None:
        """kill -9 of the orbitd process itself (pids are shared across net namespaces)."""
        os.kill(self.pid, signal.SIGKILL)

    async def stop(self) -> None:
        """Close the driver's stdin: it stops its process (SIGTERM) and exits."""
        if self.proc.returncode is None:
            assert self.proc.stdin is not None
            with contextlib.suppress(ConnectionError):
                self.proc.stdin.close()
            try:
                await asyncio.wait_for(self.proc.wait(), 15)
            except TimeoutError:
                self.proc.kill()
                await self.proc.wait()
        self._reader.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self._reader


# --- mDNS leak watch ------------------------------------------------------------------------

ETH_P_IP = 0x0800
SO_ATTACH_FILTER = 26
MDNS_PORT = 5353


def udp_port_filter(port: int) -> list[tuple[int, int, int, int]]:
    """Classic BPF on an IPv4 packet (no link header): UDP from or to `port`."""
    return [
        (0x30, 0, 0, 9),  # ldb [9]             protocol
        (0x15, 0, 6, 17),  # jeq #17 (UDP)       else drop
        (0xB1, 0, 0, 0),  # ldxb 4*([0]&0xf)    IP header length
        (0x48, 0, 0, 0),  # ldh [x+0]           source port
        (0x15, 2, 0, port),  # jeq #port           accept
        (0x48, 0, 0, 2),  # ldh [x+2]           destination port
        (0x15, 0, 1, port),  # jeq #port           accept, else drop
        (0x06, 0, 0, 0xFFFF),  # ret #65535         accept
        (0x06, 0, 0, 0),  # ret #0             drop
    ]


class MdnsSniffer:
    """Keeps the mDNS packets seen on any interface of the root namespace that carry a marker.

    A packet socket (AF_PACKET, SOCK_DGRAM, IPv4) bound to no interface sees every
    IPv4 packet the root namespace sends or receives, on every interface; a BPF
    filter keeps UDP port 5353 only. It only reads: no promiscuous mode, no sends.
    """

    def __init__(self, port: int = MDNS_PORT) -> None:
        self.markers: list[bytes] = []
        self.mdns_packets = 0
        self.leaks: list[bytes] = []
        self._stop = threading.Event()
        self._sock = socket.socket(socket.AF_PACKET, socket.SOCK_DGRAM, socket.htons(ETH_P_IP))
        bpf = udp_port_filter(port)
        self._program = ctypes.create_string_buffer(b"".join(struct.pack("HBBI", *i) for i in bpf))
        fprog = struct.pack("HL", len(bpf), ctypes.addressof(self._program))
        self._sock.setsockopt(socket.SOL_SOCKET, SO_ATTACH_FILTER, fprog)
        self._sock.settimeout(0.1)
        with contextlib.suppress(BlockingIOError, TimeoutError):  # packets from before the filter
            while self._sock.recv(65535, socket.MSG_DONTWAIT):
                pass
        self._thread = threading.Thread(target=self._run, name="mdns-sniffer", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                packet = self._sock.recv(65535)
            except (TimeoutError, BlockingIOError):
                continue
            except OSError:
                return
            self.mdns_packets += 1
            if any(marker in packet for marker in self.markers):
                self.leaks.append(packet)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@pytest.fixture
def mdns_sniffer() -> Iterator[MdnsSniffer]:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    sniffer = MdnsSniffer()
    try:
        yield sniffer
    finally:
        sniffer.close()
