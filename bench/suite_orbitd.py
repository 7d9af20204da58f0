"""`python -m bench orbitd`: two daemons and the rendezvous, against a bare aiortc pair.

The rendezvous and two orbitd daemons (host and guest, `--ice-loopback`) run
as subprocesses on 127.0.0.1; this process is both daemons' UI. It measures
join → chat-ready over `--sessions` sessions one after the other, one-way
message latency through both local APIs, and the daemons' RSS. Then two bare
aiortc processes (`bench.aiortc_pair`) give the same figures for WebRTC
alone. A table goes to stdout and the figures to bench/results/orbitd-*.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

from . import orbitd_report, report
from .bare_pair import BareResult, measure_bare
from .daemons import daemon
from .orbitd_load import DaemonResult, SessionParams, measure_daemons
from .pacing import MessageParams
from .procs import log_summary, python_module, running
from .runner import Suite, say

PARAMETERS = (
    "sessions",
    "messages",
    "message_interval_ms",
    "message_bytes",
    "session_timeout",
    "daemon_log_level",
    "server_log_level",
    "no_baseline",
)
RATE_LIMIT = 100_000  # tokens and joins per hour from 127.0.0.1: far above what a run needs
MAX_MESSAGE_LENGTH = 2000  # the daemon's default for a token
DRAIN_SECONDS = 10.0
HOST, GUEST = "alice", "bob"


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("orbitd suite")
    add = group.add_argument
    add("--sessions", type=int, default=20, help="sessions set up and ended one after another")
    add("--messages", type=int, default=300, help="messages sent host → guest (and bare)")
    add("--message-interval-ms", type=float, default=5.0, help="pace of the messages")
    add("--message-bytes", type=int, default=200, help="size of each message's text")
    add("--session-timeout", type=float, default=15.0, help="seconds a session may take")
    add(
        "--daemon-log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the daemons' --log-level (their logs go to temporary files)",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if args.sessions < 1 or args.messages < 1:
        parser.error("--sessions and --messages must be at least 1")
    if args.message_interval_ms < 0 or args.session_timeout <= 0:
        parser.error("--message-interval-ms must not be negative, --session-timeout positive")
    if not 20 <= args.message_bytes <= MAX_MESSAGE_LENGTH:
        parser.error(f"--message-bytes must be from 20 to {MAX_MESSAGE_LENGTH}")


def rendezvous_argv(args: argparse.Namespace) -> list[str]:
    return python_module(
        "rendezvous",
        *("--host", "127.0.0.1", "--port", "0", "--database", ":memory:"),
        *("--token-rate-limit-per-hour", str(RATE_LIMIT)),
        *("--join-rate-limit-per-hour", str(RATE_LIMIT)),
        *("--log-level", args.server_log_level),
    )


def message_params(args: argparse.Namespace) -> MessageParams:
    return MessageParams(args.messages, args.message_bytes, args.message_interval_ms, DRAIN_SECONDS)


async def measure_orbitd(
    args: argparse.Namespace, tmp: Path
) -> tuple[DaemonResult, dict[str, dict[str, Any]]]:
    """The rendezvous and both daemons started, measured, stopped; and their logs' summary."""
    logs = {name: tmp / f"{name}.log" for name in ("rendezvous", HOST, GUEST)}
    level = args.daemon_log_level
    params = SessionParams(args.sessions, args.session_timeout)
    async with running("rendezvous", rendezvous_argv(args), logs["rendezvous"]) as rendezvous:
        url = rendezvous.url
        async with (
            daemon(HOST, url, tmp / HOST, logs[HOST], level) as host,
            daemon(GUEST, url, tmp / GUEST, logs[GUEST], level) as guest,
        ):
            say(
                f"orbitd: host {host.base} (pid {host.server.pid}), guest {guest.base} "
                f"(pid {guest.server.pid}): {args.sessions} sessions, {args.messages} messages"
            )
            result = await measure_daemons(host, guest, params, message_params(args))
    say(
        f"orbitd: {result.sessions_ready}/{result.sessions_asked} sessions, join → ready p50 "
        f"{result.join_to_ready_ms.p50:.1f} ms"
    )
    return result, {name: log_summary(path) for name, path in logs.items()}


async def measure_baseline(args: argparse.Namespace, tmp: Path) -> BareResult:
    say(f"bare aiortc pair: {args.sessions} connections, {args.messages} messages")
    bare = await measure_bare(args.sessions, message_params(args), tmp)
    say(f"bare aiortc pair: offer → open p50 {bare.setup_ms.p50:.1f} ms")
    return bare


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatorbit-bench-orbitd-") as name:
        tmp = Path(name)
        daemons, logs = await measure_orbitd(args, tmp)
        bare = None if args.no_baseline else await measure_baseline(args, tmp)
    verdicts = orbitd_report.targets(daemons)
    print()
    print(orbitd_report.table(daemons, bare))
    print()
    for note in orbitd_report.notes(daemons, logs):
        print(f"note: {note}")
    for verdict in verdicts:
        print(report.verdict_line(verdict))
    parameters = {k: getattr(args, k) for k in PARAMETERS}
    document = {
        "benchmark": "orbitd",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - clock, 1),
        "machine": report.machine_info() | {"aiortc": version("aiortc")},
        "parameters": parameters | {"timeout": args.timeout or SUITE.default_timeout},
        "targets": verdicts,
        "ratios": orbitd_report.ratios(daemons, bare),
        "orbitd": daemons,
        "bare_aiortc": bare,
        "logs": logs,
    }
    path = report.write_json(document, args.results_dir, started, "orbitd")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="orbitd",
    summary="two daemons: join → chat-ready, message latency and RSS, against bare aiortc",
    default_timeout=150.0,
    add_options=add_options,
    check=check,
    run=run,
)
