"""One video path measured over a steady window: what the screen saw, and who spent CPU.

Every path ends at a screen that reads the stamp of each frame it decodes (the
aiortc `bench.video_peer recv`, or the receiving Chromium page): frames per
second, frames lost, and glass-to-glass latency, from the capture time drawn into
the frame by the sender to the moment the receiver has the decoded frame.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .procs import BenchError, python_module
from .runner import say
from .stats import Summary
from .video_child import Child, CpuWindow

PATH_DAEMONS_PATTERN = "daemons, A's pattern"
PATH_DAEMONS_LINKED = "daemons, linked camera"
PATH_PASSTHROUGH = "passthrough relay"
PATH_RELAY = "transcoding relay"
PATH_AIORTC = "aiortc direct"
PATH_DIRECT = "Chromium direct"
PATHS = (
    PATH_DAEMONS_PATTERN,
    PATH_DAEMONS_LINKED,
    PATH_PASSTHROUGH,
    PATH_RELAY,
    PATH_AIORTC,
    PATH_DIRECT,
)
FIRST_FRAMES = 10
FIRST_FRAMES_TIMEOUT = 20.0


@dataclass(frozen=True)
class Mode:
    width: int
    height: int
    fps: int

    @property
    def label(self) -> str:
        return f"{self.width}x{self.height}@{self.fps}"

    @property
    def size(self) -> str:
        return f"{self.width}x{self.height}"

    @classmethod
    def parse(cls, text: str, fps: int) -> Mode:
        width, _, height = text.strip().partition("x")
        return cls(int(width), int(height), fps)


def camera_argv(mode: Mode, kbps: int) -> list[str]:
    """`bench.video_peer send` at `mode`; `kbps` 0 leaves aiortc's bit rate control."""
    return python_module(
        "bench.video_peer",
        "send",
        *("--width", str(mode.width), "--height", str(mode.height), "--fps", str(mode.fps)),
        *("--kbps", str(kbps)),
    )


def screen_argv() -> list[str]:
    return python_module("bench.video_peer", "recv")


@dataclass(frozen=True)
class Timing:
    warmup: float
    """Seconds of media before the window opens (bitrate ramp-up, first keyframes)."""
    seconds: float
    """The window."""


@dataclass(frozen=True)
class Flow:
    """One path at one mode, over one window."""

    path: str
    mode: str
    seconds: float
    frames: int
    """Frames the screen decoded (or Chromium's framesDecoded) in the window."""
    fps: float
    stamped: int
    """Frames whose stamp the screen read (the latency samples)."""
    bad: int
    """Frames decoded whose stamp did not read."""
    lost: int
    """Counters missing between the first and last stamp read."""
    latency_ms: Summary
    kbps: float
    """Bit rate received by the screen in the window."""
    packets_lost: int
    """RTP packets of the video the screen's receiver counted lost in the window."""
    cpu_percent: dict[str, float]
    """% of one core, by role: `sender daemon`, `receiver daemon`, `relay`, `camera`..."""
    sizes: dict[str, int]
    """Decoded frame sizes seen in the window, counted."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def matches_mode(self) -> bool:
        """Every decoded frame had the size the source sent."""
        size = self.mode.split("@", 1)[0]
        return bool(self.sizes) and set(self.sizes) == {size}


def flow_of(
    path: str,
    mode: Mode,
    stats: dict[str, Any],
    cpu: dict[str, float],
    extra: dict[str, Any] | None = None,
) -> Flow:
    """A `Flow` from a screen's `stats` answer (see `bench.video_peer`)."""
    seconds = float(stats["seconds"])
    frames = int(stats["frames"])
    return Flow(
        path=path,
        mode=mode.label,
        seconds=seconds,
        frames=frames,
        fps=frames / seconds if seconds > 0 else float("nan"),
        stamped=int(stats["stamped"]),
        bad=int(stats["bad"]),
        lost=int(stats["lost"]),
        latency_ms=Summary.of([float(x) for x in stats["latencies_ms"]]),
        kbps=float(stats.get("kbps") or "nan"),
        packets_lost=int(stats.get("packets_lost") or 0),
        cpu_percent=cpu,
        sizes={str(k): int(v) for k, v in dict(stats["sizes"]).items()},
        extra=extra or {},
    )


async def first_frames(screen: Child, what: str) -> None:
    answer = await screen.request(
        {"cmd": "wait-frames", "count": FIRST_FRAMES, "timeout": FIRST_FRAMES_TIMEOUT},
        FIRST_FRAMES_TIMEOUT + 5,
    )
    if int(answer["frames"]) < FIRST_FRAMES:
        raise BenchError(
            f"{what}: only {answer['frames']} stamped frames in {FIRST_FRAMES_TIMEOUT:g} s"
        )


async def window(
    path: str,
    mode: Mode,
    screen: Child,
    meters: dict[str, Callable[[], float]],
    timing: Timing,
    extra: dict[str, Any] | None = None,
) -> Flow:
    """Wait for the first frames and the warm-up, then measure one window."""
    await first_frames(screen, f"{path} {mode.label}")
    await asyncio.sleep(timing.warmup)
    await screen.request({"cmd": "mark"})
    cpu = CpuWindow(meters | {"screen": screen.cpu_seconds})
    await asyncio.sleep(timing.seconds)
    stats = await screen.request({"cmd": "stats"})
    _wall, percent = cpu.read()
    flow = flow_of(path, mode, stats, percent, extra)
    say(
        f"video: {path} {mode.label}: {flow.fps:.1f} fps, latency p50 "
        f"{flow.latency_ms.p50:.0f} ms, CPU "
        + ", ".join(f"{k} {v:.1f}%" for k, v in percent.items())
    )
    return flow
