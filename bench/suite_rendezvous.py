"""`python -m bench rendezvous`: the rendezvous under load, against a bare aiohttp baseline.

Each server runs as its own subprocess on 127.0.0.1, started fresh for each
phase (issue rate; pairs and relay latency); this process is the load
generator. A table goes to stdout and the figures to
bench/results/rendezvous-*.json.
"""

from __future__ import annotations

import argparse
import resource
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import report
from .procs import log_summary, python_module, running
from .rendezvous_load import SessionParams, measure_issues, measure_sessions
from .runner import Suite, say
from .targets import Baseline, Rendezvous, Target

PARAMETERS = (
    "pairs",
    "messages_per_pair",
    "spread_seconds",
    "payload_bytes",
    "issues",
    "issue_concurrency",
    "setup_concurrency",
    "drain_timeout",
    "server_log_level",
    "no_baseline",
    "timeout",
)
RATE_LIMIT_OFF = 10_000_000
LOADGEN_RESERVE = 200  # descriptors the load generator needs besides its sockets
SERVER_WS_RATE = 20.0  # the rendezvous default the pacing must stay under, messages/s/socket


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("rendezvous suite")
    add = group.add_argument
    add("--pairs", type=int, default=1000, help="session pairs held open (2 sockets each)")
    add("--messages-per-pair", type=int, default=5, help="probes each host sends its guest")
    add("--spread-seconds", type=float, default=5.0, help="time the probes are spread over")
    add("--payload-bytes", type=int, default=512, help="padding in each probe (a sealed SDP)")
    add("--issues", type=int, default=2000, help="tokens issued for the issue rate")
    add("--issue-concurrency", type=int, default=4, help="connections issuing at once")
    add("--setup-concurrency", type=int, default=50, help="pairs being set up at once")
    add("--drain-timeout", type=float, default=15.0, help="seconds to wait for late probes")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    positive = ("pairs", "messages_per_pair", "issues", "issue_concurrency", "setup_concurrency")
    for name in positive:
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    sockets, most = 2 * args.pairs + LOADGEN_RESERVE, resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if sockets > most:
        parser.error(
            f"limit: descriptors: --pairs {args.pairs:,} holds both ends of every pair in "
            f"this one process ({sockets:,} descriptors), over the {most:,} a process may "
            "hold here; `python -m bench scale` spreads them over worker processes"
        )
    if args.spread_seconds <= 0 or args.drain_timeout <= 0:
        parser.error("--spread-seconds and --drain-timeout must be positive")
    if args.payload_bytes < 0:
        parser.error("--payload-bytes must not be negative")
    per_socket = args.messages_per_pair / args.spread_seconds
    if per_socket > SERVER_WS_RATE:
        parser.error(
            f"{per_socket:g} probes/s per socket is over the server's limit of "
            f"{SERVER_WS_RATE:g}/s: lower --messages-per-pair or raise --spread-seconds"
        )


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
    parameters = {k: getattr(args, k) for k in PARAMETERS}
    parameters["timeout"] = args.timeout or SUITE.default_timeout
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
    path = report.write_json(document, args.results_dir, started, "rendezvous")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="rendezvous",
    summary="token issues/s, 1,000 open pairs, relay latency and RSS, against bare aiohttp",
    default_timeout=270.0,
    add_options=add_options,
    check=check,
    run=run,
)
