"""LAN mode: nearby daemons over zeroconf, liveness, spoof flags, verified peers.

The end-to-end tests run real daemons in network namespaces that the test
builds and deletes (tests/netns.py); they need root and are skipped without
it. Nothing is sent to the host's own interfaces: each daemon uses only its
namespace's address, and a passive sniffer on the root namespace checks that
no mDNS packet of the test shows up there. They check behaviour, with generous
deadlines only: how fast discovery, kill -9 and restarts are noticed is measured
by `make bench` (the lan suite). The other tests need no root and open nothing
but loopback.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import os
import socket
import stat
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from orbitcore.protocol import lan
from orbitcore.protocol.frames import ProtocolError
from orbitd.app import create_app
from orbitd.identity import Identity, load_or_create_identity
from orbitd.lan.discovery import PRIVATE_NETWORKS, LanInterface, LanPresence, choose_interfaces
from orbitd.lan.hello import HELLO_PATH, HELLOS_PER_MINUTE, check_hello, hello_message
from orbitd.lan.peers import PEERS_FILE, VerifiedPeers
from orbitd.security import LoginGate
from orbitd.settings import SettingsError, load_config
from tests.netns import (
    MdnsSniffer,
    NetnsLan,
    NsDaemon,
    mdns_sniffer,
    netns_lan_fixture,
    skip_reason,
)

__all__ = ["mdns_sniffer", "netns_lan_fixture"]  # fixtures, used by name

Client = TestClient[web.Request, web.Application]
Peers = list[dict[str, Any]]
SECRET = "lan-test-login-secret-" + "x" * 30
GONE_WAIT = 30.0  # a deadline, not a bound: a killed peer goes within about 4 to 7 s


def new_identity() -> Identity:
    return Identity.from_private_key(Ed25519PrivateKey.generate())


def fp(n: int) -> str:
    return f"{n:064x}"


# --- settings ---------------------------------------------------------------------------


def test_lan_settings_defaults() -> None:
    config = load_config(environ={}, overrides={"profile": "alice"})
    assert config.lan_enabled is True
    assert config.lan_interfaces == []
    assert config.lan_port == 7171
    assert config.lan_name == "alice"  # display name defaults to the profile
    named = load_config(environ={"ORBIT_DISPLAY_NAME": "Alice Ľ."})
    assert named.lan_name == "Alice Ľ."
    off = load_config(environ={"ORBIT_LAN_ENABLED": "false", "ORBIT_LAN_INTERFACES": "10.0.0.2"})
    assert (off.lan_enabled, off.lan_interfaces) == (False, ["10.0.0.2"])


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"lan_interfaces": "eth0"}, "lan_interfaces: 'eth0' is not an IPv4 address"),
        ({"lan_interfaces": "fe80::1"}, "is not an IPv4 address"),
        ({"lan_interfaces": "0.0.0.0"}, "is not an interface address"),
        ({"lan_interfaces": "224.0.0.251"}, "is not an interface address"),
        ({"lan_interfaces": "10.0.0.2,10.0.0.2"}, "named twice"),
        ({"lan_port": 70000}, "lan_port: must be 0..65535"),
        ({"lan_port": 7170}, "lan_port: 7170 is the UI's port"),
        ({"display_name": " alice"}, "display_name: must not start or end with spaces"),
        ({"display_name": "al\nice"}, "display_name: must not contain control"),
        ({"display_name": "a" * 41}, "display_name: at most 40 characters"),
        ({"display_name": "ž" * 32}, "display_name: at most 40 characters"),  # 64 bytes
    ],
)
def test_lan_settings_refused(overrides: dict[str, Any], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        load_config(environ={}, overrides=overrides)


# --- verified peers store ---------------------------------------------------------------------


def test_verified_peers_store(tmp_path: Path) -> None:
    store = VerifiedPeers(tmp_path)
    assert store.status("bob", fp(1)) == "unknown"
    store.remember("Bob", fp(1))
    path = tmp_path / PEERS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [PEERS_FILE]  # no temporary file left
    again = VerifiedPeers(tmp_path)  # read back from disk
    assert again.status("Bob", fp(1)) == "verified"
    assert again.status("BOB", fp(1)) == "verified"  # one name, whatever the case
    assert again.status("bob", fp(2)) == "mismatch"  # known name, other key
    assert again.status("carol", fp(1)) == "unknown"
    assert again.forget("bob") and not again.forget("bob")
    assert VerifiedPeers(tmp_path).status("Bob", fp(1)) == "unknown"
    with pytest.raises(ValueError):
        store.remember("bob", "not-a-fingerprint")


def test_verified_peers_unreadable_file_is_set_aside(tmp_path: Path) -> None:
    (tmp_path / PEERS_FILE).write_text("{not json")
    store = VerifiedPeers(tmp_path)
    assert store.all() == []
    assert not (tmp_path / PEERS_FILE).exists()
    assert [p.name.startswith(PEERS_FILE + ".bad-") for p in tmp_path.iterdir()] == [True]


# --- the hello --------------------------------------------------------------------------------


def test_check_hello() -> None:
    me, other = new_identity(), new_identity()
    nonce, address = "n" * 24, "10.0.0.2:7171"

    def answer(identity: Identity, name: str = "bob", signed_for: str = address) -> lan.Hello:
        message = hello_message(nonce, name, identity.fingerprint, signed_for)
        return lan.Hello(
            name=name,
            fingerprint=identity.fingerprint,
            address=signed_for,
            public_key=identity.public_key.hex(),
            signature=identity.sign(message).hex(),
        )

    expect = {"nonce": nonce, "name": "bob", "fingerprint": me.fingerprint, "address": address}
    assert check_hello(answer(me), **expect) is None
    assert check_hello(answer(other), **expect) == "the key is not the announced fingerprint"
    assert check_hello(answer(me, name="eve"), **expect) == "the name is not the announced name"
    relayed = check_hello(answer(me, signed_for="10.0.0.9:7171"), **expect)
    assert relayed is not None and "relayed" in relayed
    assert check_hello(answer(me), **(expect | {"nonce": "m" * 24})) == "bad signature"
    good = answer(me).to_dict()
    assert lan.CHANNEL.parse_as(lan.Hello, json.dumps(good)) == answer(me)
    del good["type"]  # daemons older than the protocol module send no type: still a hello
    assert lan.CHANNEL.parse_as(lan.Hello, good) == answer(me)
    for bad in ("[]", '{"name": "bob"}', json.dumps(good | {"signature": "zz"})):
        with pytest.raises(ProtocolError):
            lan.CHANNEL.parse_as(lan.Hello, bad)


async def test_hello_endpoint_proves_the_key(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """The LAN listener's hello, served here on 127.0.0.1 (no zeroconf is started)."""
    identity = new_identity()
    lo = LanInterface("127.0.0.1", PRIVATE_NETWORKS[0])
    presence = LanPresence(identity, "alice", [lo], 0, VerifiedPeers(tmp_path))
    client = await aiohttp_client(presence.lan_app)
    nonce = "abcdefghijklmnop0123"
    response = await client.get(HELLO_PATH, params={"nonce": nonce})
    assert response.status == 200
    body = await response.json()
    assert body["fingerprint"] == identity.fingerprint and body["name"] == "alice"
    assert body["address"] == f"127.0.0.1:{client.port}"
    where = {"nonce": nonce, "name": "alice", "fingerprint": identity.fingerprint}
    hello = lan.CHANNEL.parse_as(lan.Hello, body)
    assert check_hello(hello, **where, address=body["address"]) is None
    for bad in ("", "short", "x" * 129, "abcdefghijklmnop/0123"):
        response = await client.get(HELLO_PATH, params={"nonce": bad})
        assert response.status == 400
        assert (await response.json())["error"] == "bad_nonce"


async def test_a_hello_flood_gets_429(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """One address asking for more hellos a minute than a polling daemon needs gets a
    429 JSON refusal with Retry-After (no signing); the limit is per source address."""
    presence = LanPresence(
        new_identity(),
        "alice",
        [LanInterface("127.0.0.1", PRIVATE_NETWORKS[0])],
        0,
        VerifiedPeers(tmp_path),
    )
    client = await aiohttp_client(presence.lan_app)
    nonce = {"nonce": "abcdefghijklmnop0123"}
    statuses = [
        (await client.get(HELLO_PATH, params=nonce)).status for _ in range(HELLOS_PER_MINUTE)
    ]
    assert statuses == [200] * HELLOS_PER_MINUTE
    response = await client.get(HELLO_PATH, params=nonce)
    assert response.status == 429
    assert (await response.json())["error"] == "rate_limited"
    assert 1 <= int(response.headers["Retry-After"]) <= 60


async def test_lan_port_taken_falls_back_to_a_free_one(tmp_path: Path) -> None:
    """Two daemons on one machine both want 7171: the second takes a free port (the
    port goes in the announcement anyway). Loopback only; zeroconf is not started."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        lo = LanInterface("127.0.0.1", PRIVATE_NETWORKS[0])
        presence = LanPresence(new_identity(), "bob", [lo], port, VerifiedPeers(tmp_path))
        try:
            await presence._listen()
            assert presence.port not in (0, port)
        finally:
            await presence.stop()


def test_interface_choice() -> None:
    chosen, missing = choose_interfaces(["127.0.0.1", "10.255.255.254"])
    assert [i.address for i in chosen] == ["127.0.0.1"]  # only when named
    assert str(chosen[0].network) == "127.0.0.0/8"
    assert missing == ["10.255.255.254 is not an address of this machine"]
    default, _ = choose_interfaces([])
    for iface in default:  # private or link-local only: never loopback, never public
        address = ipaddress.IPv4Address(iface.address)
        assert any(address in net for net in PRIVATE_NETWORKS)


# --- the UI's routes without LAN ---------------------------------------------------------------


async def test_nearby_api_when_lan_is_off(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    config = load_config(
        environ={},
        overrides={"data_dir": str(tmp_path), "profile": "alice", "lan_enabled": False},
    )
    gate = LoginGate(profile="alice", login_secret=SECRET)
    client = await aiohttp_client(create_app(config, load_or_create_identity(tmp_path), gate))
    assert (await client.get("/api/nearby")).status == 401  # behind the login like the rest
    assert (await client.get(f"/login?secret={SECRET}")).status == 200
    origin = {"Origin": f"http://127.0.0.1:{client.port}"}
    response = await client.get("/api/nearby")
    body = await response.json()
    visibility = body.pop("visibility")
    assert body == {
        "enabled": False,
        "off": "disabled",
        "name": None,
        "interfaces": [],
        "port": None,
        "peers": [],
    }
    assert (visibility["enabled"], visibility["mode"], visibility["visible"]) == (
        False,
        "off",
        False,
    )
    response = await client.post("/api/nearby/visibility", json={"mode": "timed"}, headers=origin)
    assert (response.status, (await response.json())["error"]) == (409, "lan_disabled")
    response = await client.post("/api/nearby/verify", json={"fingerprint": fp(1)}, headers=origin)
    assert (response.status, (await response.json())["error"]) == (409, "lan_off")
    response = await client.post("/api/nearby/verify", json={"fingerprint": "x"}, headers=origin)
    assert (response.status, (await response.json())["error"]) == (422, "invalid_fingerprint")
    response = await client.post("/api/nearby/verify", json={"fingerprint": fp(1)})
    assert response.status == 403  # no Origin: refused like every state change
    response = await client.delete("/api/nearby/verify/bob", headers=origin)
    assert (response.status, (await response.json())["error"]) == (404, "not_verified")


async def test_lan_mode_is_invisible_until_the_user_says_so(
    tmp_path: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> None:
    """LAN mode allowed (the default) but nobody chose to be visible: no presence, and
    nothing is even looked at (the visibility is only read; no choice is made here, so
    nothing is sent on the host's own LAN)."""
    config = load_config(environ={}, overrides={"data_dir": str(tmp_path), "profile": "alice"})
    assert config.lan_enabled is True
    gate = LoginGate(profile="alice", login_secret=SECRET)
    client = await aiohttp_client(create_app(config, load_or_create_identity(tmp_path), gate))
    assert (await client.get("/api/nearby/visibility")).status == 401
    assert (await client.get(f"/login?secret={SECRET}")).status == 200
    body = await (await client.get("/api/nearby")).json()
    assert (body["enabled"], body["off"], body["peers"]) == (False, "invisible", [])
    shown = await (await client.get("/api/nearby/visibility")).json()
    assert shown == {
        "mode": "off",
        "visible": False,
        "remaining_seconds": None,
        "here": [],
        "networks": [],
        "enabled": True,
        "running": False,
        "timed_seconds": 600,
    }
    response = await client.post("/api/nearby/visibility", json={"mode": "timed"})
    assert response.status == 403  # no Origin: refused like every state change


# --- end to end, in network namespaces --------------------------------------------------------


def sniffer_positive_control() -> None:
    """The leak watch does see a marked packet on the root namespace's loopback
    (another UDP port than mDNS, so no mDNS responder there gets it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    sniffer = MdnsSniffer(port)
    try:
        sniffer.markers.append(b"chatorbit-leak-probe")
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as out:
            out.sendto(b"..chatorbit-leak-probe..", ("127.0.0.1", port))
        for _ in range(50):
            if sniffer.leaks:
                break
            time.sleep(0.02)
        assert len(sniffer.leaks) == 1
    finally:
        sniffer.close()


def test_namespace_tests_skip_without_root(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    assert skip_reason() == "needs root (network namespaces)"


def test_leak_watch_sees_a_marked_packet() -> None:
    reason = skip_reason()
    if reason:
        pytest.skip(reason)
    sniffer_positive_control()


def by_fp(peers: Peers, fingerprint: str) -> dict[str, Any] | None:
    return next((p for p in peers if p["fingerprint"] == fingerprint), None)


async def fingerprint_of(daemon: NsDaemon) -> str:
    status, state = await daemon.call("GET", "/api/state")
    assert status == 200
    fingerprint: str = state["fingerprint"]
    return fingerprint


def log_times(path: Path, msg: str, **match: Any) -> list[float]:
    """When a daemon logged `msg` (with fields `match`): unix times, from its JSON log."""
    times = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("msg") == msg and all(entry.get(k) == v for k, v in match.items()):
                times.append(datetime.fromisoformat(entry["ts"]).timestamp())
    return times


def watch(sniffer: MdnsSniffer, lan: NetnsLan, *markers: str) -> None:
    sniffer.markers.extend(socket.inet_aton(h.address) for h in lan.hosts)
    sniffer.markers.extend(m.encode() for m in markers)


@pytest.mark.parametrize("netns_lan", [2], indirect=True)
async def test_nearby_both_ways_kill9_restart_and_verified_before(
    netns_lan: NetnsLan, mdns_sniffer: MdnsSniffer, tmp_path: Path
) -> None:
    h1, h2 = netns_lan.hosts
    alice_name, bob_name = f"alice-{os.getpid()}", f"bob-{os.getpid()}"  # markers for the watch
    watch(mdns_sniffer, netns_lan, alice_name, bob_name)
    names = ["--", "--display-name"]
    alice, bob = await asyncio.gather(
        NsDaemon.start(
            h1, tmp_path / "alice", "--profile", "alice", "--visible", *names, alice_name
        ),
        NsDaemon.start(h2, tmp_path / "bob", "--profile", "bob", "--visible", *names, bob_name),
    )
    daemons = [alice, bob]
    try:
        alice_fp, bob_fp = await fingerprint_of(alice), await fingerprint_of(bob)
        watch(mdns_sniffer, netns_lan, alice_fp, bob_fp)
        await asyncio.gather(
            alice.nearby_until(lambda p: by_fp(p, bob_fp) is not None),
            bob.nearby_until(lambda p: by_fp(p, alice_fp) is not None),
        )
        status, nearby = await alice.call("GET", "/api/nearby")
        assert status == 200
        assert nearby["interfaces"] == [h1.address]  # zeroconf and the listener: this ns only
        assert nearby["peers"] == [
            {
                "name": bob_name,
                "fingerprint": bob_fp,
                "address": h2.address,
                "port": 7171,
                "version": "1",
                "verified_before": False,
                "flagged": False,
                "reason": None,
            }
        ]
        status, body = await alice.call("POST", "/api/nearby/verify", {"fingerprint": bob_fp})
        assert status == 201, body
        assert body["verified"]["name"] == bob_name
        await alice.event("nearby", peers=[by_fp(body["peers"], bob_fp)])
        assert body["peers"] == [nearby["peers"][0] | {"verified_before": True}]

        # kill -9 of bob's daemon: zeroconf never says so; alice's hellos notice
        bob.kill9()
        await alice.nearby_until(lambda p: p == [], within=GONE_WAIT)
        assert await asyncio.wait_for(bob.exited, 5) == -9
        await bob.stop()

        # bob comes back (same key, same name): listed again, verified before; still
        # visible without asking again (the 10 minutes are a time in his preferences file)
        bob = await NsDaemon.start(h2, tmp_path / "bob", "--profile", "bob", *names, bob_name)
        daemons.append(bob)
        await alice.nearby_until(lambda p: (by_fp(p, bob_fp) or {}).get("verified_before") is True)

        # alice restarts: bob sees her leave (goodbye); she still knows bob
        await alice.stop()
        await bob.nearby_until(lambda p: p == [])
        alice = await NsDaemon.start(
            h1, tmp_path / "alice", "--profile", "alice", *names, alice_name
        )
        daemons.append(alice)
        peers = await alice.nearby_until(
            lambda p: (by_fp(p, bob_fp) or {}).get("verified_before") is True
        )
        assert by_fp(peers, bob_fp)["flagged"] is False  # type: ignore[index]
    finally:
        await asyncio.gather(*(d.stop() for d in daemons))
    assert mdns_sniffer.leaks == []
    print(f"LAN root-namespace mDNS packets seen: {mdns_sniffer.mdns_packets}, ours: 0")
    # The daemons' logs say when LAN presence started and each listing (bob twice: he
    # restarted); the bench reads its discovery times from these lines.
    alice_log, bob_log = tmp_path / "alice" / "alice.log", tmp_path / "bob" / "bob.log"
    assert len(log_times(alice_log, "LAN presence started")) == 2
    assert len(log_times(bob_log, "LAN presence started")) == 2
    assert len(log_times(alice_log, "LAN: nearby peer", fingerprint=bob_fp)) >= 2
    assert log_times(bob_log, "LAN: nearby peer", fingerprint=alice_fp)


async def test_spoofed_announcements_are_flagged(
    netns_lan: NetnsLan, mdns_sniffer: MdnsSniffer, tmp_path: Path
) -> None:
    h1, h2, h3 = netns_lan.hosts
    watch(mdns_sniffer, netns_lan)
    alice, bob = await asyncio.gather(
        NsDaemon.start(h1, tmp_path / "alice", "--profile", "alice", "--visible"),
        NsDaemon.start(h2, tmp_path / "bob", "--profile", "bob", "--visible"),
    )
    daemons = [alice, bob]
    try:
        alice_fp, bob_fp = await fingerprint_of(alice), await fingerprint_of(bob)
        watch(mdns_sniffer, netns_lan, alice_fp, bob_fp)
        await alice.nearby_until(lambda p: by_fp(p, bob_fp) is not None)

        # 1. an impostor announces bob's name and bob's fingerprint, but holds another key
        impostor = await NsDaemon.start(
            h3, tmp_path / "impostor", "--impostor", "bob", "--claim-fp", bob_fp
        )
        daemons.append(impostor)
        watch(mdns_sniffer, netns_lan, impostor.ready["fingerprint"])

        def impostor_listed(peers: Peers) -> bool:
            return any(p["address"] == h3.address for p in peers)

        for daemon in (alice, bob):  # bob sees his own fingerprint claimed from h3
            peers = await daemon.nearby_until(impostor_listed)
            fake = next(p for p in peers if p["address"] == h3.address)
            assert fake["name"] == "bob" and fake["fingerprint"] == bob_fp
            assert (fake["flagged"], fake["reason"]) == (True, "key_mismatch")
            assert fake["verified_before"] is False
        peers = await alice.nearby_until(impostor_listed)
        real = next(p for p in peers if p["address"] == h2.address)
        assert (real["flagged"], real["reason"]) == (False, None)

        # verifying bob's fingerprint picks the peer that proved it, not the impostor
        status, body = await alice.call("POST", "/api/nearby/verify", {"fingerprint": bob_fp})
        assert status == 201, body
        assert (body["verified"]["name"], body["verified"]["fingerprint"]) == ("bob", bob_fp)
        await impostor.stop()
        await alice.nearby_until(lambda p: not impostor_listed(p), within=5)

        # 2. a real daemon with its own key announces the verified name "bob"
        mallory = await NsDaemon.start(
            h3,
            tmp_path / "mallory",
            "--profile",
            "mallory",
            "--visible",
            "--",
            "--display-name",
            "bob",
        )
        daemons.append(mallory)
        mallory_fp = await fingerprint_of(mallory)
        watch(mdns_sniffer, netns_lan, mallory_fp)
        peers = await alice.nearby_until(lambda p: by_fp(p, mallory_fp) is not None)
        flagged = by_fp(peers, mallory_fp)
        assert flagged is not None and flagged["name"] == "bob"
        assert (flagged["flagged"], flagged["reason"]) == (True, "known_name_other_key")
        verified = by_fp(peers, bob_fp)
        assert verified is not None and verified["address"] == h2.address
        assert (verified["verified_before"], verified["flagged"]) == (True, False)
        # verifying the other key under a verified name needs "replace"
        status, body = await alice.call("POST", "/api/nearby/verify", {"fingerprint": mallory_fp})
        assert (status, body["error"]) == (409, "name_verified_with_other_key")

        # 3. alice forgets bob: two nearby keys call themselves "bob", neither verified
        status, body = await alice.call("DELETE", "/api/nearby/verify/bob")
        assert (status, body) == (200, {"name": "bob", "forgotten": True})
        event = await alice.until(
            "nearby",
            lambda e: {p["reason"] for p in e["peers"] if p["name"] == "bob"} == {"duplicate_name"},
            5,
        )
        assert len([p for p in event["peers"] if p["name"] == "bob"]) == 2
        status, body = await alice.call("POST", "/api/nearby/verify", {"fingerprint": "f" * 64})
        assert (status, body["error"]) == (404, "not_nearby")
    finally:
        await asyncio.gather(*(d.stop() for d in daemons))
    assert mdns_sniffer.leaks == []
