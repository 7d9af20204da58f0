"""`python -m bench video`: VP8 video through two daemons, against a relay and Chromium.

At each mode (640x480 and 1280x720, 30 fps by default), over a steady window:

- daemons (`bench.video_daemons`): daemon A with `--video-source testpattern`,
  daemon B, a call between them, and an aiortc screen (`bench.video_peer recv`,
  a process of its own) on B's media link that decodes every frame and reads the
  frame counter and capture time drawn into it. Then, in the same call, A's video
  muted and an aiortc camera linked to B, the screen to A: both daemons forwarding.
  CPU of each daemon per direction (psutil on their PIDs).
- passthrough relay (`bench.video_relay`): the same camera and screen around a relay
  that runs orbitd's encoded passthrough alone (`tests/media_peer.py`), no daemon.
- anchor (a) (`bench.video_relay`): the same camera and screen around a relay that
  decodes and re-encodes (`tests/media_peer.py --transcode`) in place of the daemons.
- anchor (b) (`bench.video_chromium`): Chromium to Chromium directly, two pages in
  one headless Chromium, a canvas stamped the same way.
- and the aiortc camera straight to the aiortc screen, one hop: the daemon paths
  have the same two ends, so the latency they add over it is the daemons' own.

Frames per second received, glass-to-glass latency p50/p90/p99, CPU per role, the
ratios to the anchors, and targets (reported, never failed on): each daemon at
most 8 % of a core per 720p30 direction; at most 50 ms added over the direct call;
the passthrough relay at 640x480: 20 frames/s or more, latency p50 under 300 ms and
under 15 % of a core (the bounds `tests/test_media_passthrough.py` once asserted).
Only 127.0.0.1. A table goes to stdout and the figures to bench/results/video-*.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import report, video_report
from .procs import log_summary, running
from .runner import Suite, say
from .suite_orbitd import rendezvous_argv
from .video_chromium import chromium, measure_direct, static_server
from .video_daemons import measure_daemons
from .video_measure import PATH_PASSTHROUGH, PATH_RELAY, Flow, Mode, Timing
from .video_relay import measure_aiortc_direct, measure_relay

PARAMETERS = (
    "video_modes",
    "video_fps",
    "video_warmup",
    "video_seconds",
    "video_camera_kbps",
    "no_baseline",
)
DAEMON_LOG_LEVEL = "info"
MIN_WIDTH, MIN_HEIGHT = 512, 64  # the stamp is 512 x 48 pixels
MAX_WIDTH, MAX_HEIGHT = 1920, 1080


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("video suite")
    add = group.add_argument
    add("--video-modes", default="640x480,1280x720", help="frame sizes, WxH, comma-separated")
    add("--video-fps", type=int, default=30, help="frames per second of every source")
    add("--video-warmup", type=float, default=2.0, help="seconds of video before each window")
    add("--video-seconds", type=float, default=8.0, help="seconds of each measuring window")
    add(
        "--video-camera-kbps",
        type=int,
        default=0,
        help="a fixed VP8 bit rate for the aiortc camera stand-in (0: aiortc's own, 250-1500)",
    )


def modes(args: argparse.Namespace) -> list[Mode]:
    return [Mode.parse(text, args.video_fps) for text in args.video_modes.split(",") if text]


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    try:
        chosen = modes(args)
    except ValueError:
        parser.error("--video-modes is a comma-separated list of WIDTHxHEIGHT")
    if not chosen:
        parser.error("--video-modes names no mode")
    for mode in chosen:
        if not (MIN_WIDTH <= mode.width <= MAX_WIDTH and MIN_HEIGHT <= mode.height <= MAX_HEIGHT):
            parser.error(
                f"--video-modes: {mode.size} is outside {MIN_WIDTH}x{MIN_HEIGHT}.."
                f"{MAX_WIDTH}x{MAX_HEIGHT} (the stamp is 512 pixels wide)"
            )
        if mode.width % 2 or mode.height % 2:
            parser.error(f"--video-modes: {mode.size}: width and height must be even")
    if not 1 <= args.video_fps <= 60:
        parser.error("--video-fps must be from 1 to 60")
    if args.video_warmup < 0 or not 1 <= args.video_seconds <= 60:
        parser.error("--video-warmup must not be negative, --video-seconds 1 to 60")
    if not (args.video_camera_kbps == 0 or 100 <= args.video_camera_kbps <= 20_000):
        parser.error("--video-camera-kbps must be 0 or from 100 to 20000")


async def measure(
    args: argparse.Namespace, tmp: Path
) -> tuple[list[Flow], dict[str, Any], dict[str, dict[str, Any]], str]:
    """Every path at every mode: (flows, the relays' own stats by mode and path, logs,
    Chromium's version)."""
    timing = Timing(args.video_warmup, args.video_seconds)
    flows: list[Flow] = []
    relay_stats: dict[str, dict[str, Any]] = {}
    logs: dict[str, dict[str, Any]] = {}
    rendezvous_log = tmp / "rendezvous.log"
    async with running("rendezvous", rendezvous_argv(args), rendezvous_log) as rendezvous:
        for mode in modes(args):
            measured, daemon_logs = await measure_daemons(
                mode, rendezvous.url, tmp, DAEMON_LOG_LEVEL, timing, args.video_camera_kbps
            )
            flows += measured
            logs |= daemon_logs
            own = relay_stats.setdefault(mode.label, {})
            flow, own[PATH_PASSTHROUGH], relay_logs = await measure_relay(
                mode, tmp, timing, args.video_camera_kbps, transcode=False
            )
            flows.append(flow)
            logs |= relay_logs
            if not args.no_baseline:
                flow, own[PATH_RELAY], relay_logs = await measure_relay(
                    mode, tmp, timing, args.video_camera_kbps
                )
                flows.append(flow)
                logs |= relay_logs
                flow, direct_logs = await measure_aiortc_direct(
                    mode, tmp, timing, args.video_camera_kbps
                )
                flows.append(flow)
                logs |= direct_logs
    logs["rendezvous"] = log_summary(rendezvous_log)
    browser_version = ""
    if not args.no_baseline:
        async with static_server() as base, chromium() as browser:
            browser_version = browser.version
            say(f"video: Chromium {browser_version}, pages from {base}")
            for mode in modes(args):
                flows.append(await measure_direct(browser, base, mode, timing))
    return flows, relay_stats, logs, browser_version


def log_notes(logs: dict[str, dict[str, Any]]) -> list[str]:
    out = []
    for name, summary in logs.items():
        levels = {k: v for k, v in summary.get("levels", {}).items() if k not in {"info", "debug"}}
        if levels:
            first = (summary.get("notable") or [""])[0][:200]
            if name.startswith("relay ") and "passthrough is not installed" in first:
                first += " (expected: the relay transcodes)"
            out.append(f"log {name}: {levels}; first: {first}")
    return out


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatorbit-bench-video-") as name:
        flows, relay_stats, logs, browser_version = await measure(args, Path(name))
    verdicts = video_report.targets(flows)
    print()
    print(video_report.table(flows))
    print()
    if not args.no_baseline:
        print(video_report.ratio_table(flows))
        print()
    for note in video_report.notes(flows) + log_notes(logs):
        print(f"note: {note}")
    for verdict in verdicts:
        print(report.verdict_line(verdict))
    document = {
        "benchmark": "video",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - clock, 1),
        "machine": report.machine_info()
        | {"aiortc": version("aiortc"), "av": version("av"), "chromium": browser_version},
        "parameters": {k: getattr(args, k) for k in PARAMETERS}
        | {"daemon_log_level": DAEMON_LOG_LEVEL, "timeout": args.timeout or SUITE.default_timeout},
        "targets": verdicts,
        "ratios": video_report.ratios(flows),
        "flows": flows,
        "relay_stats": relay_stats,
        "logs": logs,
    }
    path = report.write_json(document, args.results_dir, started, "video")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="video",
    summary="VP8 video through two daemons and through a passthrough relay: fps, "
    "glass-to-glass latency and CPU, against a transcoding relay and Chromium direct",
    default_timeout=180.0,
    add_options=add_options,
    check=check,
    run=run,
)
