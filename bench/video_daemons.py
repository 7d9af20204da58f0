"""Video through two orbitd daemons: a call between them, a screen on a media link.

Daemon A (the host) runs with `--video-source testpattern:WxH@FPS`, daemon B (the
guest) with no source; both `--ice-loopback`. A session comes up, A calls, B
accepts. Then two windows in the one call:

1. `daemons, A's pattern` (the headless topology): A draws the test pattern,
   VP8-encodes it and sends it to B; B forwards the encoded frames to a screen
   (`bench.video_peer recv`, recvonly) linked through `POST /api/media/offer`.
   A's CPU is the pattern and the encoder, not a forwarding daemon's.
   Then A mutes its video (`POST /api/call/mute`): both daemons' CPU with the call
   up and no video flowing, over a few seconds, is their floor.
2. `daemons, linked camera` (as in a call between two browsers): A's video still
   muted, a camera stand-in (`bench.video_peer send`, the same pattern encoded by
   aiortc in its own process) links to B's media, and the screen links to A's.
   Camera → B → A → screen: both daemons only forward, B on the sending side of
   the direction, A on the receiving side.
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from pathlib import Path
from typing import Any

from .daemons import Daemon, Event
from .daemons import daemon as orbitd
from .orbitd_load import connect
from .procs import BenchError, log_summary
from .runner import say
from .video_child import Child, CpuWindow, child
from .video_measure import (
    PATH_DAEMONS_LINKED,
    PATH_DAEMONS_PATTERN,
    Flow,
    Mode,
    Timing,
    camera_argv,
    screen_argv,
    window,
)

SESSION_TIMEOUT = 20.0
IDLE_SETTLE = 0.5
IDLE_SECONDS = 3.0  # the call up, A's video muted, nothing sending: the daemons' floor
CALL_TIMEOUT = 15.0
CALLER, CALLEE = "alice", "bob"


def _call_is(state: str) -> Callable[[Event], bool]:
    def match(event: Event) -> bool:
        call = event.body.get("call")
        return event.kind == "call" and isinstance(call, dict) and call.get("state") == state

    return match


async def start_call(caller: Daemon, callee: Daemon) -> dict[str, Any]:
    """caller calls, callee accepts; both `active`. The callee's call snapshot."""
    caller.drain()
    callee.drain()
    await caller.expect(200, "POST", "/api/call")
    await callee.next(lambda e: e.kind == "call-incoming", CALL_TIMEOUT)
    await callee.expect(200, "POST", "/api/call/accept")
    await caller.next(_call_is("active"), CALL_TIMEOUT)
    active = await callee.next(_call_is("active"), CALL_TIMEOUT)
    call: dict[str, Any] = active.body["call"]
    return call


async def link(daemon: Daemon, peer: Child) -> None:
    """`peer` as the page's media link to `daemon`: its offer, the daemon's answer."""
    offer = await peer.request({"cmd": "offer"})
    answer = await daemon.expect(
        200, "POST", "/api/media/offer", {"sdp": offer["sdp"], "type": "offer"}
    )
    if answer.get("type") != "answer":
        raise BenchError(f"{daemon.name}: /api/media/offer answered {answer}")
    await peer.request({"cmd": "accept", "sdp": answer["sdp"]})


async def measure_daemons(
    mode: Mode, rendezvous: str, tmp: Path, level: str, timing: Timing, camera_kbps: int
) -> tuple[list[Flow], dict[str, dict[str, Any]]]:
    """Both windows at `mode`; and the daemons' and stand-ins' logs, summed up."""
    tag = f"{mode.width}x{mode.height}"
    logs = {
        CALLER: tmp / f"{CALLER}-{tag}.log",
        CALLEE: tmp / f"{CALLEE}-{tag}.log",
        "screen": tmp / f"daemons-screen-{tag}.log",
        "camera": tmp / f"daemons-camera-{tag}.log",
    }
    source = ("--video-source", f"testpattern:{mode.label}")
    flows = []
    async with (
        orbitd(CALLER, rendezvous, tmp / f"{CALLER}-{tag}", logs[CALLER], level, *source) as a,
        orbitd(CALLEE, rendezvous, tmp / f"{CALLEE}-{tag}", logs[CALLEE], level) as b,
        child("screen", screen_argv(), logs["screen"]) as screen,
    ):
        _token, _timing, sas_match = await connect(a, b, 0, SESSION_TIMEOUT)
        if not sas_match:
            raise BenchError("the daemons' SAS differ")
        call = await start_call(a, b)
        say(
            f"video: daemons {mode.label}: call active, path {call.get('path')}; "
            f"A pid {a.server.pid}, B pid {b.server.pid}"
        )
        extra = {"call_path": call.get("path"), "pids": {"A": a.server.pid, "B": b.server.pid}}

        await link(b, screen)
        meters = {"sender daemon": a.server.cpu_seconds, "receiver daemon": b.server.cpu_seconds}
        flows.append(await window(PATH_DAEMONS_PATTERN, mode, screen, meters, timing, extra))

        await a.expect(200, "POST", "/api/call/mute", {"kind": "video", "muted": True})
        await asyncio.sleep(IDLE_SETTLE)
        idle = CpuWindow({"A": a.server.cpu_seconds, "B": b.server.cpu_seconds})
        await asyncio.sleep(IDLE_SECONDS)
        _wall, idle_percent = idle.read()
        extra = extra | {"no_video_cpu_percent": idle_percent}
        flows[0] = dataclasses.replace(flows[0], extra=extra)
        say(
            f"video: daemons {mode.label}, call up, no video: CPU A {idle_percent['A']:.1f}%, "
            f"B {idle_percent['B']:.1f}%"
        )
        async with child("camera", camera_argv(mode, camera_kbps), logs["camera"]) as camera:
            await link(b, camera)
            await link(a, screen)
            meters = {
                "sender daemon": b.server.cpu_seconds,
                "receiver daemon": a.server.cpu_seconds,
                "camera": camera.cpu_seconds,
            }
            flows.append(await window(PATH_DAEMONS_LINKED, mode, screen, meters, timing, extra))
            await b.expect(200, "POST", "/api/call/hangup")
            await a.next(lambda e: e.kind == "call-ended", CALL_TIMEOUT)
    return flows, {f"{name} {tag}": log_summary(path) for name, path in logs.items()}
