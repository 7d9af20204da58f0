"""ICE configuration: only the servers the user named, and an opt-in loopback candidate.

aiortc with no configuration asks Google's STUN server (5 s lost per side
where DNS hangs), so the daemon always passes its own list. aioice never
gathers 127.0.0.1; two daemons on a machine with no other interface, or a
test that must keep its traffic on loopback, need the `ice_loopback` setting:
then 127.0.0.1 is the one and only host candidate.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiortc import RTCConfiguration

    from .ice_plan import IcePlan
    from .settings import Config


def use_loopback_only() -> Callable[[], None]:
    """Make aioice gather 127.0.0.1 and nothing else (process-wide; opt-in).
    Returns a function that undoes it (tests)."""
    from .adapters.aiortc_internals import use_loopback_host_addresses

    return use_loopback_host_addresses()


def rtc_configuration(config: Config) -> RTCConfiguration:
    from aiortc import RTCConfiguration, RTCIceServer

    servers = [
        RTCIceServer(
            urls=url,
            username=config.ice_username or None,
            credential=config.ice_credential or None,
        )
        for url in config.ice_servers
    ]
    return RTCConfiguration(iceServers=servers)


def plan_configuration(plan: IcePlan) -> RTCConfiguration:
    """The RTCConfiguration of one ICE plan (`orbitd.ice_plan`): its servers, and the
    "relay" transport policy when the peer must learn only the TURN server's address."""
    from aiortc import RTCConfiguration, RTCIceServer
    from aiortc.rtcconfiguration import RTCIceTransportPolicy

    servers = [
        RTCIceServer(urls=s.url, username=s.username or None, credential=s.credential or None)
        for s in plan.servers
    ]
    policy = RTCIceTransportPolicy.RELAY if plan.relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)
