"""`orbitd.adapters.zeroconf_internals` against the installed zeroconf: every
undocumented name it relies on is still there with its shape, and `forget_service`
drops one service's records from a real AsyncZeroconf's cache (two of them on
127.0.0.1, one announcing, one resolving). A failure here means zeroconf changed
under the adapter: fix the adapter (or the upper bound in pyproject.toml)."""

from __future__ import annotations

import secrets
import socket
from collections.abc import AsyncIterator

import pytest
from zeroconf import IPVersion
from zeroconf.asyncio import AsyncServiceInfo, AsyncZeroconf

from orbitd.adapters import zeroconf_internals as adapter
from orbitd.adapters.requirements import Requirement

SERVICE_TYPE = "_orbitadapter._tcp.local."


@pytest.mark.parametrize("requirement", adapter.REQUIRED, ids=lambda r: r.name)
def test_the_undocumented_name_is_still_there(requirement: Requirement) -> None:
    problem = requirement.problem()
    assert problem is None, f"zeroconf changed under orbitd/adapters: {problem}"


def test_check_holds() -> None:
    assert adapter.check() == []


@pytest.fixture
async def announcer_and_resolver() -> AsyncIterator[tuple[AsyncZeroconf, AsyncZeroconf]]:
    zcs = [AsyncZeroconf(interfaces=["127.0.0.1"], ip_version=IPVersion.V4Only) for _ in range(2)]
    yield zcs[0], zcs[1]
    for zc in zcs:
        await zc.async_close()


def _service(instance: str) -> AsyncServiceInfo:
    return AsyncServiceInfo(
        SERVICE_TYPE,
        f"{instance}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton("127.0.0.1")],
        port=9,
        properties={"v": "1"},
        server=f"{instance}.local.",
    )


def _pointers(zc: AsyncZeroconf) -> set[str]:
    return {str(getattr(r, "alias", "")) for r in zc.zeroconf.cache.entries_with_name(SERVICE_TYPE)}


async def test_forget_service_drops_one_services_records(
    announcer_and_resolver: tuple[AsyncZeroconf, AsyncZeroconf],
) -> None:
    announcer, resolver = announcer_and_resolver
    tag = secrets.token_hex(4)  # another run on this machine announces other names
    gone, staying = _service(f"gone-{tag}"), _service(f"staying-{tag}")
    for info in (gone, staying):
        announced = await announcer.async_register_service(info, cooperating_responders=True)
        await announced
        assert await AsyncServiceInfo(SERVICE_TYPE, info.name).async_request(
            resolver.zeroconf, 3000
        ), f"{info.name} was not resolved over 127.0.0.1"
    assert {gone.name, staying.name} <= _pointers(resolver)

    forgotten = adapter.forget_service(resolver.zeroconf, SERVICE_TYPE, gone.name)

    assert forgotten >= 3  # at least its PTR, SRV and TXT
    assert resolver.zeroconf.cache.entries_with_name(gone.name) == []
    assert gone.name not in _pointers(resolver)
    assert not AsyncServiceInfo(SERVICE_TYPE, gone.name).load_from_cache(resolver.zeroconf)
    assert staying.name in _pointers(resolver)
    assert AsyncServiceInfo(SERVICE_TYPE, staying.name).load_from_cache(resolver.zeroconf)
    assert adapter.forget_service(resolver.zeroconf, SERVICE_TYPE, gone.name) == 0
