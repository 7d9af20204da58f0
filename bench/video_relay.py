"""The relay paths and the aiortc anchor: the same camera and screen as the daemon paths,
without daemons.

- passthrough relay: camera → relay (`python -m tests.media_peer`: orbitd's encoded
  passthrough alone, no decoding) → screen. The frame rate, latency and CPU that
  `tests/test_media_passthrough.py` checks only for behaviour are measured here.
- transcoding relay (the CPU anchor): camera (`bench.video_peer send`) → relay
  (`python -m tests.media_peer --transcode`: aiortc decodes every frame and encodes
  it again, as any relay that is not a passthrough does) → screen (`bench.video_peer
  recv`). Three processes, so the relay's CPU is its own; it stands in place of the
  two daemons, and its CPU is the yardstick for one daemon's forwarding.
- aiortc direct: camera → screen, one hop. The daemon paths have the same ends
  (aiortc encoder, aiortc decoder), so what they add over it is the daemons' own.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .procs import BenchError, log_summary, python_module
from .video_child import children
from .video_measure import (
    PATH_AIORTC,
    PATH_PASSTHROUGH,
    PATH_RELAY,
    Flow,
    Mode,
    Timing,
    camera_argv,
    screen_argv,
    window,
)

RELAY_MODULE = "tests.media_peer"


async def measure_relay(
    mode: Mode, tmp: Path, timing: Timing, camera_kbps: int, *, transcode: bool = True
) -> tuple[Flow, dict[str, Any], dict[str, dict[str, Any]]]:
    """The window, the relay's own account of it (its `stats` answer), and the three
    processes' logs, summed up. `transcode` False: orbitd's passthrough in the relay."""
    tag = f"{mode.width}x{mode.height}"
    path, prefix = (PATH_RELAY, "relay") if transcode else (PATH_PASSTHROUGH, "passthrough")
    names = (prefix, f"{prefix}-camera", f"{prefix}-screen")
    logs = {name: tmp / f"{name}-{tag}.log" for name in names}
    flags = ("--transcode",) if transcode else ()
    async with children(
        ("relay", python_module(RELAY_MODULE, *flags), logs[names[0]]),
        ("camera", camera_argv(mode, camera_kbps), logs[names[1]]),
        ("screen", screen_argv(), logs[names[2]]),
    ) as (relay, camera, screen):
        offer = await camera.request({"cmd": "offer"})
        answer = await relay.request({"offer": offer["sdp"]})
        await camera.request({"cmd": "accept", "sdp": answer["answer"]})
        downstream = await relay.receive()
        if "offer" not in downstream:
            raise BenchError(f"relay: expected its downstream offer, got {downstream}")
        answer = await screen.request({"cmd": "answer", "sdp": downstream["offer"]})
        relay.send({"answer": answer["sdp"]})
        meters = {"relay": relay.cpu_seconds, "camera": camera.cpu_seconds}
        flow = await window(path, mode, screen, meters, timing)
        own = await relay.request({"cmd": "stats"})
    return flow, own, {f"{name} {tag}": log_summary(path) for name, path in logs.items()}


async def measure_aiortc_direct(
    mode: Mode, tmp: Path, timing: Timing, camera_kbps: int
) -> tuple[Flow, dict[str, dict[str, Any]]]:
    """The window, and the two processes' logs, summed up."""
    tag = f"{mode.width}x{mode.height}"
    logs = {name: tmp / f"{name}-{tag}.log" for name in ("direct-camera", "direct-screen")}
    async with children(
        ("camera", camera_argv(mode, camera_kbps), logs["direct-camera"]),
        ("screen", screen_argv(), logs["direct-screen"]),
    ) as (camera, screen):
        offer = await camera.request({"cmd": "offer"})
        answer = await screen.request({"cmd": "answer", "sdp": offer["sdp"]})
        await camera.request({"cmd": "accept", "sdp": answer["sdp"]})
        flow = await window(PATH_AIORTC, mode, screen, {"camera": camera.cpu_seconds}, timing)
    return flow, {f"{name} {tag}": log_summary(path) for name, path in logs.items()}
