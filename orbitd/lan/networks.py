"""Which LAN interfaces this machine has, and which network each one is on.

No zeroconf here (this module is loaded at start, to know whether to be visible), and
ifaddr only when the interfaces are looked at: an idle daemon that is not visible and
remembers no network never does.

A network is told apart by the interface's subnet and its default gateway's MAC
address (from /proc/net/route and /proc/net/arp on Linux): two cafés that both use
192.168.1.0/24 have different routers. Without a gateway on the interface (an
isolated LAN) the subnet alone names it. With a gateway whose MAC is not known yet
(no ARP entry), the network is unidentified until it is: never taken for a
remembered one. `Network.id` is a hash of those values (the MAC is not stored); the
label, the subnet, is only for the user. Nothing of it is announced or sent.
"""

from __future__ import annotations

import hashlib
import ipaddress
import socket
import struct
from dataclasses import dataclass
from pathlib import Path

PRIVATE_NETWORKS = tuple(
    ipaddress.IPv4Network(n)
    for n in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16")
)
ID_CONTEXT = "chatorbit-lan-network/1"
PROC_ROUTE = Path("/proc/net/route")
PROC_ARP = Path("/proc/net/arp")


@dataclass(frozen=True)
class LanInterface:
    address: str
    network: ipaddress.IPv4Network
    device: str = ""


@dataclass(frozen=True)
class Network:
    """A network the user may remember ("always visible on this network")."""

    id: str
    label: str


def choose_interfaces(wanted: list[str]) -> tuple[list[LanInterface], list[str]]:
    """The interfaces to use and a warning for each named address that is not here.

    `wanted` empty: every interface address in a private range (RFC 1918 or
    link-local), never loopback, never a public address.
    """
    import ifaddr

    here: dict[str, tuple[ipaddress.IPv4Network, str]] = {}
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):  # IPv4; IPv6 addresses are tuples
                iface = ipaddress.IPv4Interface(f"{ip.ip}/{ip.network_prefix}")
                here.setdefault(ip.ip, (iface.network, str(adapter.name)))
    if wanted:
        chosen = [LanInterface(a, *here[a]) for a in wanted if a in here]
        missing = [f"{a} is not an address of this machine" for a in wanted if a not in here]
        return chosen, missing
    private = [
        LanInterface(a, net, device)
        for a, (net, device) in here.items()
        if any(ipaddress.IPv4Address(a) in p for p in PRIVATE_NETWORKS)
    ]
    return private, []


def _gateways(route_table: str) -> dict[str, str]:
    """device -> its default gateway's IPv4 address, from /proc/net/route's text."""
    found: dict[str, str] = {}
    for line in route_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) < 3 or fields[1] != "00000000" or fields[2] == "00000000":
            continue
        try:
            gateway = socket.inet_ntoa(struct.pack("<L", int(fields[2], 16)))
        except (ValueError, struct.error):
            continue
        found.setdefault(fields[0], gateway)
    return found


def _macs(arp_table: str) -> dict[tuple[str, str], str]:
    """(device, IPv4 address) -> MAC address, from /proc/net/arp's text (complete entries)."""
    found: dict[tuple[str, str], str] = {}
    for line in arp_table.splitlines()[1:]:
        fields = line.split()
        if len(fields) >= 6 and fields[2] != "0x0" and fields[3] != "00:00:00:00:00:00":
            found[(fields[5], fields[0])] = fields[3].lower()
    return found


def _read(path: Path) -> str:
    try:
        return path.read_text()
    except OSError:
        return ""


def identify(
    interfaces: list[LanInterface], route_table: str | None = None, arp_table: str | None = None
) -> list[Network]:
    """The networks `interfaces` are on (an unidentified one is left out)."""
    gateways = _gateways(_read(PROC_ROUTE) if route_table is None else route_table)
    macs = _macs(_read(PROC_ARP) if arp_table is None else arp_table)
    networks: dict[str, Network] = {}
    for iface in interfaces:
        gateway = gateways.get(iface.device)
        if gateway is None:
            mark = "no-gateway"
        else:
            mac = macs.get((iface.device, gateway))
            if mac is None:
                continue  # not known yet: never mistaken for a remembered network
            mark = mac
        material = f"{ID_CONTEXT}|{iface.network}|{mark}".encode()
        network_id = hashlib.sha256(material).hexdigest()[:32]
        networks.setdefault(network_id, Network(network_id, str(iface.network)))
    return list(networks.values())
