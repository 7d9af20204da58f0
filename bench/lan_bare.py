"""The lan suite's baseline: bare zeroconf, as orbitd uses it, with no daemon around it.

Run inside a network namespace (`ip netns exec NS python -m bench.lan_bare
--address A --name N`): one AsyncZeroconf bound to A (IPv4 only), a service of
its own type announced without probing (as orbitd does), and a browser for that
type. JSON lines on stdout, unix times from `time.time()` (one clock for every
namespace):

    -> {"started": T}            zeroconf is up and the announcement is under way
    -> {"seen": NAME, "at": T}   another instance of the type was announced

It runs until its stdin closes. What it measures is the floor of orbitd's
discovery: an announcement reaching the other side, without the daemon's hello
over HTTP and its signature check.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import socket
import sys
import time
from typing import Any

from zeroconf import IPVersion, ServiceStateChange, Zeroconf
from zeroconf.asyncio import AsyncServiceBrowser, AsyncServiceInfo, AsyncZeroconf

SERVICE_TYPE = "_chatorbit-bench._tcp.local."
PORT = 7171


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


async def run(address: str, name: str) -> None:
    zc = AsyncZeroconf(interfaces=[address], ip_version=IPVersion.V4Only)
    info = AsyncServiceInfo(
        SERVICE_TYPE,
        f"{name}.{SERVICE_TYPE}",
        addresses=[socket.inet_aton(address)],
        port=PORT,
        properties={"name": name},
        server=f"{name}.local.",
    )
    own = info.name

    def on_service(
        zeroconf: Zeroconf, service_type: str, name: str, state_change: ServiceStateChange
    ) -> None:
        if state_change is ServiceStateChange.Added and name != own:
            emit({"seen": name, "at": time.time()})

    browser = AsyncServiceBrowser(zc.zeroconf, [SERVICE_TYPE], handlers=[on_service])
    registered = await zc.async_register_service(info, cooperating_responders=True)
    emit({"started": time.time()})
    await registered
    loop = asyncio.get_running_loop()
    reader = asyncio.StreamReader()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    while await reader.readline():
        pass
    await browser.async_cancel()
    await zc.async_unregister_all_services()
    await zc.async_close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lan_bare")
    parser.add_argument("--address", required=True)
    parser.add_argument("--name", required=True)
    args = parser.parse_args()
    asyncio.run(run(args.address, args.name))


if __name__ == "__main__":
    main()
