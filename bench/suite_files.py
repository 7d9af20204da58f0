"""`python -m bench files`: one file daemon to daemon, against bare data channels.

Measured in one run, on 127.0.0.1:
- orbitd → orbitd: the rendezvous and two daemons (`--ice-loopback`) as subprocesses,
  this process both daemons' UI: a `--file-mib` file uploaded to the host, downloaded
  from the guest, with paced chat host → guest during it, both daemons' RSS sampled
  (`bench.files_daemons`);
- bare aiortc: two `bench.aiortc_pair` processes, `--baseline-mib` on a second data
  channel with the same flow control, chat alongside; as aiortc ships, then as orbitd
  runs it on loopback: large SCTP packets (`bench.files_bare`);
- Chromium to Chromium: two headless pages, `--baseline-mib` on a data channel
  (`bench.files_chromium`).
Throughput is in MB/s (10^6 bytes a second), from the first byte sent to the last one
received. A table goes to stdout and the figures to bench/results/files-*.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import files_report, report
from .daemons import daemon
from .files_bare import BulkParams, BulkResult, measure_bare_bulk
from .files_chromium import ChromiumBulk, measure_chromium_bulk
from .files_daemons import DaemonFileResult, FileParams, measure_file
from .pacing import MessageParams
from .procs import log_summary, running
from .runner import Suite, say
from .suite_orbitd import rendezvous_argv

PARAMETERS = (
    "file_mib",
    "baseline_mib",
    "messages",
    "message_interval_ms",
    "message_bytes",
    "chunk_kib",
    "buffered_kib",
    "transfer_timeout",
    "no_baseline",
    "no_chromium",
    "event_loop",
    "daemon_log_level",
)
HOST, GUEST = "alice", "bob"
DRAIN_SECONDS = 10.0
SESSION_TIMEOUT = 20.0


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("files suite")
    add = group.add_argument
    add("--file-mib", type=int, default=1024, help="the file the daemons move, in MiB")
    add("--baseline-mib", type=int, default=256, help="what each baseline moves, in MiB")
    add("--messages", type=int, default=300, help="chat messages sent during each transfer")
    add(
        "--message-interval-ms",
        type=float,
        default=50.0,
        help="pace of the chat messages (300 at 50 ms: 15 s, about a 1 GiB transfer here)",
    )
    add("--message-bytes", type=int, default=200, help="size of each chat message")
    add("--chunk-kib", type=int, default=64, help="the baselines' message size on the channel")
    add(
        "--buffered-kib",
        type=int,
        default=256,
        help="the baselines' sender keeps its bufferedAmount under this (orbitd's high water)",
    )
    add("--transfer-timeout", type=float, default=300.0, help="seconds each transfer may take")
    add("--no-chromium", action="store_true", help="skip the Chromium baseline")
    add(
        "--event-loop",
        default="asyncio",
        choices=["asyncio", "uvloop"],
        help="the daemons' event loop (their setting event_loop)",
    )
    add(
        "--daemon-log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the daemons' --log-level (their logs go to temporary files)",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.file_mib < 1 or args.baseline_mib < 1:
        parser.error("--file-mib and --baseline-mib must be at least 1")
    if not 1 <= args.chunk_kib <= 256 or args.buffered_kib < args.chunk_kib:
        parser.error("--chunk-kib must be from 1 to 256 and at most --buffered-kib")
    if args.messages < 1 or args.message_interval_ms < 0 or args.transfer_timeout <= 0:
        parser.error("--messages must be at least 1, the interval and the timeout positive")
    if not 20 <= args.message_bytes <= 2000:
        parser.error("--message-bytes must be from 20 to 2000")


def _messages(args: argparse.Namespace) -> MessageParams:
    return MessageParams(args.messages, args.message_bytes, args.message_interval_ms, DRAIN_SECONDS)


def _bulk(args: argparse.Namespace) -> BulkParams:
    return BulkParams(
        args.baseline_mib * 2**20,
        args.chunk_kib * 1024,
        args.buffered_kib * 1024,
        args.transfer_timeout,
    )


async def measure_daemons(
    args: argparse.Namespace, tmp: Path
) -> tuple[DaemonFileResult, dict[str, dict[str, Any]]]:
    logs = {name: tmp / f"{name}.log" for name in ("rendezvous", HOST, GUEST)}
    level = args.daemon_log_level
    params = FileParams(args.file_mib * 2**20, args.transfer_timeout, SESSION_TIMEOUT)
    loop = ("--event-loop", args.event_loop)
    async with (
        running("rendezvous", rendezvous_argv(args), logs["rendezvous"]) as rendezvous,
        daemon(HOST, rendezvous.url, tmp / HOST, logs[HOST], level, *loop) as host,
        daemon(GUEST, rendezvous.url, tmp / GUEST, logs[GUEST], level, *loop) as guest,
    ):
        say(f"files: {args.file_mib} MiB from {host.base} to {guest.base}")
        result = await measure_file(host, guest, params, _messages(args))
    say(f"files: orbitd → orbitd {result.mb_per_s:.1f} MB/s")
    return result, {name: log_summary(path) for name, path in logs.items()}


async def measure_bare(args: argparse.Namespace, tmp: Path, large: bool) -> BulkResult:
    label = "aiortc-as-orbitd" if large else "aiortc"
    flags = ("--large-packets",) if large else ()
    say(f"files: bare {label} pair, {args.baseline_mib} MiB")
    result = await measure_bare_bulk(label, _bulk(args), _messages(args), tmp, *flags)
    say(f"files: bare {label} pair {result.mb_per_s:.1f} MB/s")
    return result


async def measure_chromium(args: argparse.Namespace) -> ChromiumBulk:
    say(f"files: Chromium to Chromium, {args.baseline_mib} MiB")
    result = await measure_chromium_bulk(_bulk(args))
    say(f"files: Chromium to Chromium {result.mb_per_s:.1f} MB/s")
    return result


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    bare = large = chromium = None
    with tempfile.TemporaryDirectory(prefix="chatorbit-bench-files-") as name:
        tmp = Path(name)
        daemons, logs = await measure_daemons(args, tmp)
        if not args.no_baseline:
            bare = await measure_bare(args, tmp, large=False)
            large = await measure_bare(args, tmp, large=True)
            if not args.no_chromium:
                chromium = await measure_chromium(args)
    verdicts = files_report.targets(daemons, bare)
    print()
    print(files_report.table(daemons, bare, large, chromium))
    print()
    for verdict in verdicts:
        print(report.verdict_line(verdict))
    parameters = {k: getattr(args, k) for k in PARAMETERS}
    document = {
        "benchmark": "files",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - clock, 1),
        "machine": report.machine_info() | {"aiortc": version("aiortc")},
        "parameters": parameters | {"timeout": args.timeout or SUITE.default_timeout},
        "targets": verdicts,
        "ratios": files_report.ratios(daemons, bare, large, chromium),
        "orbitd": daemons,
        "bare_aiortc": bare,
        "aiortc_as_orbitd": large,
        "chromium": chromium,
        "logs": logs,
    }
    path = report.write_json(document, args.results_dir, started, "files")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="files",
    summary="a 1 GiB file daemon to daemon: MB/s, chat p99 and RSS during it, against bare "
    "aiortc and Chromium data channels",
    default_timeout=900.0,
    add_options=add_options,
    check=check,
    run=run,
)
