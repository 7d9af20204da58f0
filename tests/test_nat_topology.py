"""The NAT topology's own promises (tests/nat.py), checked with plain UDP sockets:
a cone NAT keeps one mapping, a symmetric one makes one per destination, a cut uplink
wipes the mappings, a new public address is used after it, blocked UDP gets nowhere."""

from __future__ import annotations

import asyncio
import sys

import pytest

from tests.nat import CONE, SYMMETRIC, NatNet, nat_net_fixture

__all__ = ["nat_net_fixture"]  # a fixture, used by name

REFLECTOR = """
import socket, sys
socks = [socket.socket(socket.AF_INET, socket.SOCK_DGRAM) for _ in sys.argv[2:]]
for s, port in zip(socks, sys.argv[2:]):
    s.bind((sys.argv[1], int(port)))
print("ready", flush=True)
import selectors
sel = selectors.DefaultSelector()
for s in socks:
    sel.register(s, selectors.EVENT_READ)
while True:
    for key, _ in sel.select():
        data, peer = key.fileobj.recvfrom(100)
        key.fileobj.sendto(f"{peer[0]}:{peer[1]}".encode(), peer)
"""
PROBE = """
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(3)
s.bind(("0.0.0.0", 40000))
for port in sys.argv[2:]:
    s.sendto(b"x", (sys.argv[1], int(port)))
    print(s.recvfrom(100)[0].decode(), flush=True)
"""


async def mapped_addresses(net: NatNet, home: str) -> list[str]:
    """The public address:port the public host sees for one socket of `home`, toward two ports."""
    out = await asyncio.create_subprocess_exec(
        *("ip", "netns", "exec", net.homes[home].host.ns, sys.executable, "-c", PROBE),
        *(net.public.address, "7001", "7002"),
        stdout=asyncio.subprocess.PIPE,
    )
    stdout, _ = await asyncio.wait_for(out.communicate(), 10)
    assert out.returncode == 0
    return stdout.decode().split()


@pytest.mark.parametrize("nat_net", [(CONE, SYMMETRIC)], indirect=True)
async def test_topology_nat_kinds_and_outage(nat_net: NatNet) -> None:
    """The fixture's own promises: cone keeps one mapping, symmetric makes one per
    destination, a cut uplink wipes the mappings, a new public address is used after it."""
    reflector = await nat_net.spawn(
        nat_net.public.ns,
        [sys.executable, "-c", REFLECTOR, nat_net.public.address, "7001", "7002"],
        "reflector.log",
    )
    assert reflector.proc.stdout is not None
    assert await asyncio.wait_for(reflector.proc.stdout.readline(), 10) == b"ready\n"
    a, b = nat_net.homes["a"], nat_net.homes["b"]

    cone = await mapped_addresses(nat_net, "a")
    assert cone == [f"{a.public}:40000"] * 2  # endpoint-independent, port kept
    symmetric = await mapped_addresses(nat_net, "b")
    assert [m.split(":")[0] for m in symmetric] == [b.public] * 2
    assert symmetric[0] != symmetric[1]  # a new mapping per destination

    assert not nat_net.conntrack_flushed("a")
    nat_net.cut_uplink("a")
    assert nat_net.conntrack_flushed("a")  # the router forgot every mapping
    nat_net.restore_uplink("a", nat_net.spare_public("a"))
    assert await mapped_addresses(nat_net, "a") == [f"{nat_net.spare_public('a')}:40000"] * 2

    nat_net.block_udp("a")
    with pytest.raises(AssertionError):
        await mapped_addresses(nat_net, "a")  # the probe times out: no UDP gets out
    nat_net.unblock_udp("a")
    assert len(await mapped_addresses(nat_net, "a")) == 2
