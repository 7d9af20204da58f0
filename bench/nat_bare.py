"""The nat suite's baseline: one bare aiortc peer in a home namespace, no daemon around it.

`ip netns exec NS python -m bench.nat_bare --role offer|answer --ice-servers URLS
[--username U --credential C] [--relay-only] [--stun-rto S]` speaks JSON lines; the
suite carries the offer and the answer from one peer to the other (its own pipes,
no rendezvous):

    offerer  -> {"offer": SDP, "t0_ns": T, "gathered_ns": T}
             <- {"answer": SDP}
    answerer <- {"offer": SDP}
             -> {"answer": SDP, "gathered_ns": T}
    both     -> {"open_ns": T, "path": "relayed" | "internet-direct" | ...}

t0 is just before createOffer, gathered when setLocalDescription has returned (aiortc
gathers every candidate first: the STUN query, the TURN allocation), open when the
`chat` data channel opened. Times are `time.perf_counter_ns()` (CLOCK_MONOTONIC: one
clock for every namespace of the machine). It runs until its stdin closes.
`--stun-rto` sets aioice's first STUN retransmission timeout (0.5 s by default), and
`--triggered-retransmit` resends an in-progress check when the other side's check
arrives on its pair (RFC 8445 7.3.1.4): experiments on where connect time goes.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import time
from typing import Any

from aiortc import (
    RTCConfiguration,
    RTCDataChannel,
    RTCIceServer,
    RTCIceTransportPolicy,
    RTCPeerConnection,
    RTCSessionDescription,
)

from orbitd.adapters.aiortc_internals import (
    nominated_pair,
    retransmit_checks_on_incoming,
    set_stun_retransmission_timeout,
)

LABEL = "chat"


def emit(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def path_of(pc: RTCPeerConnection) -> str:
    pair = nominated_pair(pc)
    if pair is None:
        return "unknown"
    if "relay" in (pair.local.type, pair.remote.type):
        return "relayed"
    return "internet-direct" if pair.remote.type in ("srflx", "prflx") else pair.remote.type


def configuration(args: argparse.Namespace) -> RTCConfiguration:
    servers = []
    for url in args.ice_servers.split(","):
        if url.startswith("turn"):
            servers.append(
                RTCIceServer(urls=url, username=args.username, credential=args.credential)
            )
        else:
            servers.append(RTCIceServer(urls=url))
    policy = RTCIceTransportPolicy.RELAY if args.relay_only else RTCIceTransportPolicy.ALL
    return RTCConfiguration(iceServers=servers, iceTransportPolicy=policy)


async def run(args: argparse.Namespace) -> None:
    if args.stun_rto is not None:
        set_stun_retransmission_timeout(args.stun_rto)
    if args.triggered_retransmit:
        retransmit_checks_on_incoming()
    reader = asyncio.StreamReader(limit=1 << 20)
    loop = asyncio.get_running_loop()
    await loop.connect_read_pipe(lambda: asyncio.StreamReaderProtocol(reader), sys.stdin)
    pc = RTCPeerConnection(configuration(args))
    opened: asyncio.Future[None] = loop.create_future()

    def watch(channel: RTCDataChannel) -> None:
        @channel.on("open")
        def on_open() -> None:
            if not opened.done():
                opened.set_result(None)

        if channel.readyState == "open" and not opened.done():
            opened.set_result(None)

    if args.role == "offer":
        watch(pc.createDataChannel(LABEL))
        t0 = time.perf_counter_ns()
        await pc.setLocalDescription(await pc.createOffer())
        emit({"offer": pc.localDescription.sdp, "t0_ns": t0, "gathered_ns": time.perf_counter_ns()})
        answer = json.loads(await reader.readline())["answer"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))
    else:
        pc.on("datachannel", watch)
        offer = json.loads(await reader.readline())["offer"]
        await pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        await pc.setLocalDescription(await pc.createAnswer())
        emit({"answer": pc.localDescription.sdp, "gathered_ns": time.perf_counter_ns()})
    await opened
    emit({"open_ns": time.perf_counter_ns(), "path": path_of(pc)})
    while await reader.readline():
        pass
    await pc.close()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.nat_bare")
    parser.add_argument("--role", choices=["offer", "answer"], required=True)
    parser.add_argument("--ice-servers", required=True)
    parser.add_argument("--username", default="")
    parser.add_argument("--credential", default="")
    parser.add_argument("--relay-only", action="store_true")
    parser.add_argument("--stun-rto", type=float, default=None)
    parser.add_argument("--triggered-retransmit", action="store_true")
    asyncio.run(run(parser.parse_args()))


if __name__ == "__main__":
    main()
