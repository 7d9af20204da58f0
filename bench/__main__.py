"""`python -m bench`: the rendezvous under load, against a bare aiohttp baseline.

Each server runs as its own subprocess on 127.0.0.1, started fresh for each
phase (issue rate; pairs and relay latency); this process is the load
generator. A table goes to stdout and the figures to bench/results/*.json.
Missing the target is reported, not an error: the exit status is 0 whenever
the measurement ran.
"""

from __future__ import annotations

import argparse
import asyncio
import signal
import sys
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from aiohttp import ClientError

from . import report
from .procs import BenchError, log_summary, python_module, raise_fd_limit, running
from .rendezvous_load import SessionParams, measure_issues, measure_sessions
from .targets import Baseline, Rendezvous, Target

RATE_LIMIT_OFF = 10_000_000
SERVER_WS_RATE = 20.0  # the rendezvous default the pacing must stay under, messages/s/socket


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m bench",
        description="Benchmark the rendezvous (token issues, open pairs, relay latency, RSS) "
        "against a bare aiohttp baseline measured in the same run.",
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    add = parser.add_argument
    add("--pairs", type=int, default=1000, help="session pairs held open (2 sockets each)")
    add("--messages-per-pair", type=int, default=5, help="probes each host sends its guest")
    add("--spread-seconds", type=float, default=5.0, help="time the probes are spread over")
    add("--payload-bytes", type=int, default=512, help="padding in each probe (a sealed SDP)")
    add("--issues", type=int, default=2000, help="tokens issued for the issue rate")
    add("--issue-concurrency", type=int, default=4, help="connections issuing at once")
    add("--setup-concurrency", type=int, default=50, help="pairs being set up at once")
    add("--drain-timeout", type=float, default=15.0, help="seconds to wait for late probes")
    add(
        "--server-log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the rendezvous's --log-level (its log goes to a temporary file)",
    )
    add("--no-baseline", action="store_true", help="measure the rendezvous only (no ratios)")
    add("--timeout", type=float, default=270.0, help="give up after this many seconds in all")
    add("--results-dir", type=Path, default=report.RESULTS_DIR, help="where the JSON goes")
    return parser


def check_args(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    positive = ("pairs", "messages_per_pair", "issues", "issue_concurrency", "setup_concurrency")
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    if args.spread_seconds <= 0 or args.drain_timeout <= 0 or args.timeout <= 0:
        parser.error("--spread-seconds, --drain-timeout and --timeout must be positive")
    if args.payload_bytes < 0:
        parser.error("--payload-bytes must not be negative")
    per_socket = args.messages_per_pair / args.spread_seconds
    if per_socket > SERVER_WS_RATE:
        parser.error(
            f"{per_socket:g} probes/s per socket is over the server's limit of "
            f"{SERVER_WS_RATE:g}/s: lower --messages-per-pair or raise --spread-seconds"
        )


def say(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def rendezvous_argv(args: argparse.Namespace) -> list[str]:
    return python_module(
        "rendezvous",
        *("--host", "127.0.0.1", "--port", "0", "--database", ":memory:"),
        *("--token-rate-limit-per-hour", str(RATE_LIMIT_OFF)),
        *("--join-rate-limit-per-hour", str(RATE_LIMIT_OFF)),
        *("--log-level", args.server_log_level),
    )


async def measure(
    name: str,
    argv: list[str],
    make_target: Callable[[str], Target],
    args: argparse.Namespace,
    logs: Path,
) -> report.Run:
    """Both phases against one kind of server, each on a fresh process."""
    params = SessionParams(
        pairs=args.pairs,
        messages_per_pair=args.messages_per_pair,
        spread_seconds=args.spread_seconds,
        payload_bytes=args.payload_bytes,
        setup_concurrency=args.setup_concurrency,
        drain_timeout=args.drain_timeout,
    )
    issue_log, session_log = logs / f"{name}-issues.log", logs / f"{name}-sessions.log"
    async with running(name, argv, issue_log) as server:
        say(f"{name} (pid {server.pid}): issuing {args.issues:,} tokens")
        issues = await measure_issues(
            make_target(server.url), server, args.issues, args.issue_concurrency
        )
        say(f"{name}: {issues.per_second:,.0f} issues/s")
    async with running(name, argv, session_log) as server:
        say(f"{name} (pid {server.pid}): opening {args.pairs:,} pairs, then relaying probes")
        sessions = await measure_sessions(make_target(server.url), server, params)
        say(
            f"{name}: {sessions.pairs_open:,} pairs open, relay p99 "
            f"{sessions.latency_ms.p99:.2f} ms, {sessions.lost:,} probes lost"
        )
    logged = {"issues": log_summary(issue_log), "sessions": log_summary(session_log)}
    return report.Run(issues, sessions, logged)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatorbit-bench-") as tmp:
        logs = Path(tmp)
        rendezvous = await measure("rendezvous", rendezvous_argv(args), Rendezvous, args, logs)
        baseline = None
        if not args.no_baseline:
            argv = python_module("bench.baseline_server", "--port", "0")
            baseline = await measure("baseline", argv, Baseline, args, logs)
    verdict = report.target_verdict(rendezvous.sessions)
    print()
    print(report.table(rendezvous, baseline))
    print()
    for note in report.notes(rendezvous, baseline):
        print(f"note: {note}")
    print(report.verdict_line(verdict))
    parameters = {k: v for k, v in vars(args).items() if k != "results_dir"}
    document = {
        "benchmark": "rendezvous",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - clock, 1),
        "machine": report.machine_info(),
        "parameters": parameters | {"server_argv": rendezvous_argv(args)[1:]},
        "target": verdict,
        "ratios": report.ratios(rendezvous, baseline),
        "rendezvous": rendezvous,
        "baseline": baseline,
    }
    path = report.write_json(document, args.results_dir, started)
    print(f"results: {path}")
    return document


async def main_async(args: argparse.Namespace) -> None:
    task = asyncio.current_task()
    assert task is not None
    loop = asyncio.get_running_loop()
    loop.add_signal_handler(signal.SIGTERM, task.cancel)  # stop the servers on the way out
    try:
        async with asyncio.timeout(args.timeout):
            await run(args)
    finally:
        loop.remove_signal_handler(signal.SIGTERM)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    check_args(parser, args)
    raise_fd_limit()
    try:
        asyncio.run(main_async(args))
    except (BenchError, ClientError) as exc:
        say(f"failed: {type(exc).__name__}: {exc}")
        return 1
    except TimeoutError:
        say(f"gave up: the run took longer than --timeout {args.timeout:g} s")
        return 1
    except (KeyboardInterrupt, asyncio.CancelledError):
        say("interrupted")
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
