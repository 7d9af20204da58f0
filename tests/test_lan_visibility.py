"""LAN visible only by consent: the switch's state machine, the network it remembers,
and daemons in network namespaces (built and deleted by the test, tests/netns.py;
skipped without root) that stay silent on the LAN until their user turns them on.
"""

from __future__ import annotations

import asyncio
import ctypes
import ipaddress
import os
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from orbitd.lan.networks import LanInterface, Network, identify
from orbitd.lan.visibility import NETWORKS_MAX, Visibility, VisibilityError
from orbitd.preferences import PreferencesStore
from tests.lan_daemons import fingerprint_of, invite, phase, sees
from tests.netns import MdnsSniffer, NetnsLan, NsDaemon, netns_lan_fixture

__all__ = ["netns_lan_fixture"]  # the fixture, used by name

HOME = Network("a" * 32, "192.168.1.0/24")
CAFE = Network("b" * 32, "192.168.1.0/24")
ROUTE = (
    "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\n"
    "wlan0\t00000000\t0101A8C0\t0003\t0\t0\t0\t00000000\n"
    "wlan0\t0001A8C0\t00000000\t0001\t0\t0\t0\t00FFFFFF\n"
)
ARP_HEAD = "IP address       HW type     Flags       HW address            Mask     Device\n"


def arp(mac: str) -> str:
    return ARP_HEAD + f"192.168.1.1      0x1         0x2         {mac}     *        wlan0\n"


# --- the parts with no network ------------------------------------------------------------


def test_visibility_is_off_by_default_then_timed_until_the_clock_says_so() -> None:
    off = Visibility()
    assert off.mode(0.0, {HOME.id}) == "off" and not off.visible(0.0, {HOME.id})
    timed = off.choose("timed", 1000.0, [HOME], 600.0)
    assert timed.mode(1000.0, {HOME.id}) == "timed"
    assert timed.remaining(1000.0) == 600 and timed.remaining(1599.5) == 1
    assert timed.next_change(1000.0) == 1600.0
    assert timed.visible(1599.9, set()) and not timed.visible(1600.0, set())  # by the clock
    assert timed.remaining(1600.0) is None and timed.next_change(1600.0) is None
    assert timed.choose("off", 1100.0, [HOME], 600.0) == Visibility()


def test_remembered_networks_are_visible_only_there_and_forgotten_on_request() -> None:
    remembered = Visibility().choose("network", 0.0, [HOME], 600.0)
    assert remembered.networks == (HOME,)
    assert remembered.mode(5.0, {HOME.id}) == "network"
    assert remembered.mode(5.0, {CAFE.id}) == "off"  # same subnet, another router
    # "for 10 minutes" here means: not always here
    timed = remembered.choose("timed", 10.0, [HOME], 600.0)
    assert timed.networks == () and timed.mode(11.0, {HOME.id}) == "timed"
    # off at the café keeps home
    assert remembered.choose("off", 10.0, [CAFE], 600.0) == remembered
    assert remembered.forget(HOME.id) == Visibility() and remembered.forget(CAFE.id) is None
    with pytest.raises(VisibilityError):
        Visibility().choose("network", 0.0, [], 600.0)
    with pytest.raises(ValueError, match="mode"):
        Visibility().choose("always", 0.0, [HOME], 600.0)
    many = Visibility()
    for i in range(NETWORKS_MAX + 3):
        many = many.choose("network", 0.0, [Network(f"{i:032x}", "x")], 600.0)
    assert len(many.networks) == NETWORKS_MAX and many.networks[-1].id == f"{NETWORKS_MAX + 2:032x}"


def test_visibility_round_trips_and_reads_garbage_as_off(tmp_path: Path) -> None:
    chosen = Visibility(1234.5, (HOME,))
    assert Visibility.from_json(chosen.to_json()) == chosen
    garbage: object
    for garbage in (None, [], {"until": "soon"}, {"until": True, "networks": [{"id": "x"}, 3]}):
        assert Visibility.from_json(garbage) == Visibility()
    store = PreferencesStore(tmp_path)
    store.update({"language": "sk"})
    store.set_lan_visibility(chosen.to_json())
    store.update({"hide_address": True})  # the other preferences keep the visibility
    again = PreferencesStore(tmp_path).current
    assert Visibility.from_json(again.lan_visibility) == chosen
    assert again.language == "sk" and "lan_visibility" not in again.public()


def test_a_network_is_its_subnet_and_its_gateways_mac() -> None:
    wlan = LanInterface("192.168.1.23", ipaddress.IPv4Network("192.168.1.0/24"), "wlan0")
    (home,) = identify([wlan], ROUTE, arp("aa:bb:cc:00:00:01"))
    (cafe,) = identify([wlan], ROUTE, arp("aa:bb:cc:00:00:02"))
    assert home.label == cafe.label == "192.168.1.0/24"
    assert home.id != cafe.id and len(home.id) == 32
    assert "aa:bb" not in home.id  # the MAC is hashed
    assert identify([wlan], ROUTE, ARP_HEAD) == []  # the router's MAC not known yet
    isolated = identify([wlan], "Iface\tDestination\tGateway\n", "")
    assert len(isolated) == 1 and isolated[0].id not in (home.id, cafe.id)


# --- in network namespaces ---------------------------------------------------------------


def sniff_in(ns: str) -> MdnsSniffer:
    """An `MdnsSniffer` whose socket is made inside the namespace `ns` (the LAN's switch:
    it sees every host's mDNS). Only the thread that makes it enters the namespace."""
    made: list[MdnsSniffer | BaseException] = []

    def enter_and_make() -> None:
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            fd = os.open(f"/run/netns/{ns}", os.O_RDONLY)
            try:
                if libc.setns(fd, 0x40000000) != 0:  # CLONE_NEWNET
                    raise OSError(ctypes.get_errno(), "setns")
            finally:
                os.close(fd)
            made.append(MdnsSniffer())
        except BaseException as exc:
            made.append(exc)

    thread = threading.Thread(target=enter_and_make)
    thread.start()
    thread.join()
    if isinstance(made[0], BaseException):
        raise made[0]
    return made[0]


class Heard(list[bytes]):
    """The sniffer's list of marked packets, which wakes the test on each one."""

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.get_running_loop()
        self.news = asyncio.Event()

    def append(self, packet: bytes) -> None:  # called by the sniffer's thread
        super().append(packet)
        self.loop.call_soon_threadsafe(self.news.set)

    async def until(self, marker: str, within: float = 20.0) -> None:
        async with asyncio.timeout(within):
            while not self.has(marker):
                self.news.clear()
                await self.news.wait()

    def has(self, marker: str) -> bool:
        return any(marker.encode() in packet for packet in list(self))


def listening(ns: str) -> str:
    """What listens in `ns`: UDP 5353 (mDNS) or TCP 7171 (the LAN listener)."""
    out = subprocess.run(
        ["ip", "netns", "exec", ns, "ss", "-Hlntu"], capture_output=True, text=True, check=True
    ).stdout
    return "\n".join(line for line in out.splitlines() if ":5353" in line or ":7171" in line)


def listed(fingerprint: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda peers: any(p["fingerprint"] == fingerprint for p in peers)


def gone(fingerprint: str) -> Callable[[list[dict[str, Any]]], bool]:
    return lambda peers: not listed(fingerprint)(peers)


async def visibility(daemon: NsDaemon, mode: str) -> dict[str, Any]:
    status, body = await daemon.call("POST", "/api/nearby/visibility", {"mode": mode})
    assert status == 200, body
    shown: dict[str, Any] = body
    return shown


async def test_invisible_by_default_visible_for_a_while_then_off_and_remembered_networks(
    netns_lan: NetnsLan, tmp_path: Path
) -> None:
    h1, h2, h3 = netns_lan.hosts
    alice_name, bob_name = f"alice-{os.getpid()}", f"bob-{os.getpid()}"
    sniffer = sniff_in(netns_lan.switch)
    heard = sniffer.leaks = Heard()
    sniffer.markers.extend([alice_name.encode(), bob_name.encode()])
    short = ["--lan-visible-seconds", "10"]

    async def start_alice() -> NsDaemon:
        home = tmp_path / "alice"
        return await NsDaemon.start(
            h1, home, "--profile", "alice", "--", *short, "--display-name", alice_name
        )

    alice, bob = await asyncio.gather(
        start_alice(),
        NsDaemon.start(
            h2, tmp_path / "bob", "--profile", "bob", "--visible", "--", "--display-name", bob_name
        ),
    )
    daemons = [alice, bob]
    try:
        alice_fp = await fingerprint_of(alice)
        # 1. alice is invisible: no mDNS socket, no listener, nothing on the wire
        status, shown = await alice.call("GET", "/api/nearby/visibility")
        assert status == 200
        assert (shown["mode"], shown["visible"], shown["running"]) == ("off", False, False)
        status, nearby = await alice.call("GET", "/api/nearby")
        assert (nearby["enabled"], nearby["off"], nearby["peers"]) == (False, "invisible", [])
        assert listening(h1.ns) == ""
        await heard.until(bob_name)  # the sniffer works: bob is heard
        assert not heard.has(alice_name)

        # 2. visible for 10 s (the setting; 10 minutes by default): bob lists her, then
        # the clock turns her off, and bob drops her
        shown = await visibility(alice, "timed")
        assert (shown["mode"], shown["visible"]) == ("timed", True)
        assert 1 <= shown["remaining_seconds"] <= 10 and shown["timed_seconds"] == 10
        await bob.nearby_until(listed(alice_fp))
        await heard.until(alice_name)
        await alice.until("nearby-visibility", lambda e: e["visible"] is False, 20)
        await bob.nearby_until(gone(alice_fp))
        assert listening(h1.ns) == ""

        # 3. always on this network: remembered, still visible after a restart
        shown = await visibility(alice, "network")
        assert shown["mode"] == "network" and shown["remaining_seconds"] is None
        assert [(n["label"], n["here"]) for n in shown["networks"]] == [
            (str(ipaddress.IPv4Network(f"{h1.address}/24", strict=False)), True)
        ]
        await bob.nearby_until(listed(alice_fp))
        await alice.stop()
        await bob.nearby_until(gone(alice_fp))
        alice = await start_alice()
        daemons.append(alice)
        status, shown = await alice.call("GET", "/api/nearby/visibility")
        assert (shown["mode"], shown["visible"]) == ("network", True)
        await bob.nearby_until(listed(alice_fp))

        # a hello flood from one address gets 429 (bob's polls, from his own, do not)
        mallory = await NsDaemon.start(h3, tmp_path / "mallory", "--raw")
        daemons.append(mallory)
        hello = f"http://{h1.address}:7171/lan/hello?nonce=abcdefghijklmnop0123"
        statuses = [(await mallory.raw("GET", hello))[0] for _ in range(121)]
        assert statuses[0] == 200 and statuses[-1] == 429
        status, body = await mallory.raw("GET", hello)
        assert (status, body["error"]) == (429, "rate_limited")
        status, _ = await bob.call("GET", "/api/nearby")
        await bob.nearby_until(listed(alice_fp))

        # 4. off here forgets this network
        shown = await visibility(alice, "off")
        assert (shown["mode"], shown["networks"]) == ("off", [])
        await bob.nearby_until(gone(alice_fp))
        status, body = await alice.call("POST", "/api/nearby/visibility", {"mode": "always"})
        assert (status, body["error"]) == (422, "invalid_mode")
        status, body = await alice.call("DELETE", f"/api/nearby/visibility/networks/{'c' * 32}")
        assert (status, body["error"]) == (404, "network_not_found")
    finally:
        await asyncio.gather(*(d.stop() for d in daemons))
        sniffer.close()


@pytest.mark.parametrize("netns_lan", [2], indirect=True)
async def test_a_lan_session_outlives_the_visibility_then_presence_stops(
    netns_lan: NetnsLan, tmp_path: Path
) -> None:
    """alice is visible for 10 s and starts a LAN session with bob meanwhile. When the
    10 s are over she stops announcing (heard on the wire: a goodbye, then nothing
    more), but the session and its listener go on; once it ends, presence stops."""
    h1, h2 = netns_lan.hosts
    alice_name = f"alice-{os.getpid()}"
    sniffer = sniff_in(netns_lan.switch)
    heard = sniffer.leaks = Heard()
    sniffer.markers.append(alice_name.encode())
    alice, bob = await asyncio.gather(
        NsDaemon.start(
            h1,
            tmp_path / "alice",
            "--profile",
            "alice",
            "--visible",
            "--",
            "--lan-visible-seconds",
            "10",
            "--display-name",
            alice_name,
        ),
        NsDaemon.start(h2, tmp_path / "bob", "--profile", "bob", "--visible"),
    )
    try:
        alice_fp, bob_fp = await fingerprint_of(alice), await fingerprint_of(bob)
        await asyncio.gather(sees(alice, bob_fp), sees(bob, alice_fp))
        request = await invite(alice, bob, bob_fp)
        status, accepted = await bob.call("POST", f"/api/nearby/requests/{request['id']}/accept")
        assert status == 200, accepted
        await alice.event("lan-accepted", request_id=request["id"])
        status, opened = await alice.call(
            "POST", "/api/nearby/code", {"request_id": request["id"], "code": accepted["code"]}
        )
        assert status == 200, opened
        await asyncio.gather(phase(alice, "ready"), phase(bob, "ready"))

        # the 10 s end during the session: no announcement any more, the listener stays
        ended = await alice.until("nearby-visibility", lambda e: e["visible"] is False, 30)
        assert ended["running"] is True and ended["mode"] == "off"
        for sender, receiver, text in ((alice, bob, "still here"), (bob, alice, "me too")):
            status, sent = await sender.call("POST", "/api/messages", {"text": text})
            assert status == 201, sent
            got = await receiver.event("message")
            assert got["message"]["text"] == text
        said = len(heard)  # her goodbye (TTL 0) went out before the event

        # the session ends: presence stops (within the switch's 10 s look), bob drops alice
        status, _ = await alice.call("POST", "/api/session/end", {})
        assert status == 200
        stopped = await alice.until("nearby-visibility", lambda e: e["running"] is False, 30)
        assert stopped["visible"] is False
        await bob.nearby_until(gone(alice_fp))
        assert listening(h1.ns) == ""
        assert len(heard) == said  # nothing of alice on the wire after her goodbye
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
        sniffer.close()
