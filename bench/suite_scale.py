"""`python -m bench scale`: how far the rendezvous scales, on one machine.

1. One instance (in memory): pairs opened step by step until a step is not held; relay
   p50/p99 and RSS per pair at each step, against the bare aiohttp baseline at the
   largest count held.
2. Several instances sharing PostgreSQL and Redis (each a real rendezvous process, with
   redis-server and PostgreSQL started by the bench as `nobody` on Unix sockets): pair k's
   host on instance k mod n and its guest on the next, so every frame crosses from one
   instance to another; relay p50/p99 against one instance on the same shared state and
   against the in-memory single instance, at the same number of pairs.
3. Token issues per second on PostgreSQL against SQLite (same client, same concurrency),
   and a cProfile of an instance issuing and of one relaying across Redis.

The load generator is a pool of worker processes (`bench.loadgen_pool`); a limit that
stops a load (descriptors, ports, memory) is a line of the table, not a traceback.
The default run is small (a minute or two); `--scale-full` measures 10,000 and 20,000
pairs (several minutes). Table on stdout, JSON in bench/results/scale-*.json.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from . import report, scale_report
from .loadgen_pool import load_pool, workers_for
from .procs import python_module, running
from .rendezvous_load import IssueResult, measure_issues
from .runner import Suite, say
from .scale_measure import (
    InstanceSetup,
    Load,
    RelayPlan,
    hold,
    instances,
    not_run,
    over_descriptors,
    profile_summary,
    profiling,
    rss_mib,
)
from .shared_state import postgres_server, redis_server
from .targets import Rendezvous

FULL_STEPS = (2000, 5000, 8000, 9000, 9500, 10000)
FULL_LOADS = (5000, 10000, 20000)
WARMUP_PAIRS = 4
PROFILE_PAIRS = 1000


def _counts(text: str) -> tuple[int, ...]:
    try:
        values = tuple(sorted({int(v) for v in text.split(",") if v.strip()}))
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a list of whole numbers: {text!r}") from None
    if not values or values[0] < 1:
        raise argparse.ArgumentTypeError("give one or more numbers, each at least 1")
    return values


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scale suite")
    add = group.add_argument
    add(
        "--scale-steps",
        type=_counts,
        default=(250, 500, 1000, 2000),
        help="pair counts the single instance is stepped through (comma-separated)",
    )
    add(
        "--scale-loads",
        type=_counts,
        default=(1000,),
        help="pair counts held over several instances sharing PostgreSQL and Redis",
    )
    add(
        "--scale-instances",
        type=_counts,
        default=(2, 4),
        help="instance counts measured at each load (one instance is the baseline)",
    )
    add(
        "--scale-full",
        action="store_true",
        help=f"steps {','.join(map(str, FULL_STEPS))} and loads "
        f"{','.join(map(str, FULL_LOADS))} (several minutes)",
    )
    add("--scale-probes", type=int, default=2000, help="probes relayed at each load")
    add("--scale-probe-rate", type=float, default=1000.0, help="probes per second over all pairs")
    add(
        "--scale-repeats",
        type=int,
        default=3,
        help="relay rounds at each load (the round with the median p99 is reported)",
    )
    add("--scale-payload-bytes", type=int, default=512, help="padding in each probe")
    add("--scale-setup-concurrency", type=int, default=100, help="pairs set up at once")
    add("--scale-drain-timeout", type=float, default=15.0, help="seconds to wait for late probes")
    add("--scale-issues", type=int, default=2000, help="tokens issued on each database")
    add("--scale-issue-concurrency", type=int, default=4, help="connections issuing at once")
    add("--scale-no-profile", action="store_true", help="skip the cProfile runs")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    for name in ("probes", "repeats", "setup_concurrency", "issues", "issue_concurrency"):
        if getattr(args, f"scale_{name}") < 1:
            parser.error(f"--scale-{name.replace('_', '-')} must be at least 1")
    if args.scale_probe_rate <= 0 or args.scale_drain_timeout <= 0:
        parser.error("--scale-probe-rate and --scale-drain-timeout must be positive")
    if args.scale_full:
        args.scale_steps, args.scale_loads = FULL_STEPS, FULL_LOADS


def _plan(args: argparse.Namespace) -> RelayPlan:
    return RelayPlan(
        probes=args.scale_probes,
        per_second=args.scale_probe_rate,
        payload_bytes=args.scale_payload_bytes,
        drain_timeout=args.scale_drain_timeout,
        setup_concurrency=args.scale_setup_concurrency,
        repeats=args.scale_repeats,
    )


async def _warm(pool: Any, plan: RelayPlan) -> None:
    """A few pairs through the whole path, so the idle RSS includes what loads lazily."""
    await pool.open(WARMUP_PAIRS, WARMUP_PAIRS)
    await pool.relay(2 * WARMUP_PAIRS, 100.0, plan.payload_bytes, plan.drain_timeout)


async def step_up(args: argparse.Namespace, logs: Path) -> list[Load]:
    """One in-memory instance, pairs added step by step until a step is not held."""
    plan, counts = _plan(args), sorted({*args.scale_steps, *args.scale_loads})
    setup = InstanceSetup(":memory:", log_level=args.server_log_level)
    steps: list[Load] = []
    async with (
        instances(1, setup, logs, "single") as servers,
        load_pool(workers_for(counts[-1]), "rendezvous", [s.url for s in servers], logs) as pool,
    ):
        await _warm(pool, plan)
        idle = rss_mib(servers)
        for pairs in counts:
            say(f"scale: 1 instance in memory, {pairs:,} pairs")
            load = await hold("1 instance, in memory", pool, servers, pairs, plan, idle)
            steps.append(load)
            say(f"scale: {scale_report.brief(load)}")
            if not load.held:
                break
        await pool.close()
    return steps


async def baseline_at(args: argparse.Namespace, logs: Path, pairs: int) -> Load:
    plan = _plan(args)
    argv = python_module("bench.baseline_server", "--port", "0")
    async with (
        running("baseline", argv, logs / "baseline.log") as server,
        load_pool(workers_for(pairs), "baseline", [server.url], logs) as pool,
    ):
        await _warm(pool, plan)
        idle = rss_mib([server])
        say(f"scale: bare aiohttp, {pairs:,} pairs")
        load = await hold("bare aiohttp", pool, [server], pairs, plan, idle, count_sockets=False)
        say(f"scale: {scale_report.brief(load)}")
        await pool.close()
    return load


async def shared(
    args: argparse.Namespace,
    logs: Path,
    setup: InstanceSetup,
    count: int,
    loads: Sequence[int],
    profile: Path | None = None,
) -> list[Load]:
    """`count` instances on the shared state, holding each of `loads` pairs in turn (more
    pairs opened for each, as in the step-up); a load that no process here could hold by
    the descriptor limit is reported, not tried."""
    label = f"{count} instance{'s' if count > 1 else ''}, PostgreSQL + Redis"
    out = []
    runnable = []
    for pairs in sorted(loads):
        why = over_descriptors(pairs, count)
        if why:
            say(f"scale: {label}, {pairs:,} pairs: not run ({why})")
            out.append(not_run(label, count, pairs, why))
        else:
            runnable.append(pairs)
    if not runnable:
        return out
    plan = _plan(args)
    tag = f"shared{count}"
    async with (
        instances(count, setup, logs, tag, profile) as servers,
        load_pool(workers_for(runnable[-1]), "rendezvous", [s.url for s in servers], logs) as pool,
    ):
        await _warm(pool, plan)
        idle = rss_mib(servers)
        profiled = servers[0] if profile else None
        for n, pairs in enumerate(runnable):
            say(f"scale: {label}, {pairs:,} pairs")
            load = await hold(label, pool, servers, pairs, plan, idle, profiled=profiled)
            say(f"scale: {scale_report.brief(load)}")
            out.append(load)
            if not load.held:
                why = f"not tried: {pairs:,} pairs were not held"
                out += [not_run(label, count, later, why) for later in runnable[n + 1 :]]
                break
        await pool.close()
    return out


async def issue_rate(
    args: argparse.Namespace, logs: Path, database: str, tag: str, profile: Path | None = None
) -> IssueResult:
    setup = InstanceSetup(database, log_level=args.server_log_level)
    async with instances(1, setup, logs, tag, profile) as servers:
        say(f"scale: issuing {args.scale_issues:,} tokens on {tag}")
        with profiling(servers[0] if profile else None):
            result = await measure_issues(
                Rendezvous(servers[0].url),
                servers[0],
                args.scale_issues,
                args.scale_issue_concurrency,
            )
    say(f"scale: {tag}: {result.per_second:,.0f} issues/s")
    return result


@dataclass
class Measured:
    steps: list[Load]
    baseline: Load | None
    shared: list[Load]
    issues: dict[str, IssueResult]
    profiles: dict[str, dict[str, Any]]


async def measure_all(args: argparse.Namespace, logs: Path) -> Measured:
    steps = await step_up(args, logs)
    held = [s for s in steps if s.held]
    baseline = None
    if held and not args.no_baseline:
        baseline = await baseline_at(args, logs, held[-1].pairs_requested)
    loads: list[Load] = []
    issues: dict[str, IssueResult] = {}
    profiles: dict[str, dict[str, Any]] = {}
    issues["sqlite"] = await issue_rate(args, logs, str(logs / "issues.db"), "sqlite")
    async with postgres_server() as pg_url, redis_server() as redis_url:
        issues["postgresql"] = await issue_rate(args, logs, pg_url, "postgresql")
        setup = InstanceSetup(pg_url, redis_url, args.server_log_level)
        for count in sorted({1, *args.scale_instances}):
            loads += await shared(args, logs, setup, count, args.scale_loads)
        loads.sort(key=lambda load: (load.pairs_requested, load.instances))
        if not args.scale_no_profile:
            dump = logs / "issuing.prof"
            await issue_rate(args, logs, pg_url, "postgresql-profiled", dump)
            profiles["issuing_tokens_postgresql"] = profile_summary(dump)
            dump = logs / "relaying.prof"
            pairs = min(PROFILE_PAIRS, *args.scale_loads)
            await shared(args, logs, setup, 2, [pairs], dump)
            profiles[f"relaying_2_instances_redis_{pairs}_pairs"] = profile_summary(dump)
    return Measured(steps, baseline, loads, issues, profiles)


PARAMETERS = (
    "scale_steps",
    "scale_loads",
    "scale_instances",
    "scale_full",
    "scale_probes",
    "scale_probe_rate",
    "scale_repeats",
    "scale_payload_bytes",
    "scale_setup_concurrency",
    "scale_drain_timeout",
    "scale_issues",
    "scale_issue_concurrency",
    "server_log_level",
    "no_baseline",
    "timeout",
)


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="chatorbit-bench-scale-") as tmp:
        measured = await measure_all(args, Path(tmp))
    rows = scale_report.rows(measured.steps, measured.baseline, measured.shared, measured.issues)
    verdict = scale_report.verdict(measured.shared)
    print()
    print(scale_report.steps_table(measured.steps, measured.baseline))
    print()
    print(scale_report.rows_table(rows))
    print()
    for note in scale_report.notes(measured.steps, measured.shared, measured.profiles):
        print(f"note: {note}")
    print(report.verdict_line(verdict))
    parameters = {k: getattr(args, k) for k in PARAMETERS}
    parameters["timeout"] = args.timeout or SUITE.default_timeout
    document = {
        "benchmark": "scale",
        "started_at": started.isoformat(timespec="seconds"),
        "duration_seconds": round(time.perf_counter() - clock, 1),
        "machine": report.machine_info(),
        "parameters": parameters,
        "target": verdict,
        "rows": rows,
        "steps": measured.steps,
        "baseline": measured.baseline,
        "shared": measured.shared,
        "issues": measured.issues,
        "profiles": measured.profiles,
    }
    path = report.write_json(document, args.results_dir, started, "scale")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="scale",
    summary="pairs one instance holds, 2 and 4 instances on PostgreSQL + Redis, "
    "token issues/s on PostgreSQL against SQLite",
    default_timeout=1800.0,
    add_options=add_options,
    check=check,
    run=run,
)
