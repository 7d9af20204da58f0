"""`python -m bench lan`: nearby daemons on a LAN of network namespaces, against bare zeroconf.

Two hosts on one bridge (`tests/netns.py`: namespaces the suite builds and deletes;
it needs root and `ip netns`, and says so and measures nothing without them). Each
round starts two fresh daemons (`tests.ns_daemon` drivers, alice and bob) and times:

- discovery: from the later daemon's "LAN presence started" to both listing the
  other ("LAN: nearby peer"), from their JSON logs; and, as the UI sees it, from
  both drivers logged in to both Nearby lists showing the other;
- kill -9: from bob's kill to alice's list emptying (her hellos notice it);
- restart: bob again (same key) listed by alice, from his "LAN presence started";
- clean stop: alice stopped (SIGTERM) to bob's list emptying, the stop included.

The baseline, in the same namespaces and run: bare zeroconf (`bench.lan_bare`), each
side's announcement reaching the other, with no hello and no daemon. Targets
(reported, never failed on): discovery p50 at most 3 s (the aim is about one), a
killed peer gone within 10 s: the bounds `tests/test_lan_discovery.py` once
asserted. A table goes to stdout and the figures to bench/results/lan-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from tests.netns import NetnsLan, NsDaemon, skip_reason

from . import report
from .procs import BenchError, python_module
from .runner import Suite, say
from .stats import Summary

PARAMETERS = ("lan_rounds", "no_baseline")
REPO = Path(__file__).resolve().parent.parent
WAIT = 20.0  # seconds any one step may take before the round is given up
TARGET_DISCOVERY_S = 3.0
TARGET_GONE_S = 10.0
STARTED, LISTED = "LAN presence started", "LAN: nearby peer"
FIGURES = {
    "discovery_log_s": "discovery, presence started -> listed (logs) s",
    "discovery_ui_s": "discovery, logged in -> both Nearby lists s",
    "kill9_gone_s": "kill -9 -> gone from the other's list s",
    "restart_listed_s": "restart: presence started -> listed (logs) s",
    "clean_stop_s": "clean stop -> gone from the other's list s",
}
BASELINE = {"discovery_log_s": "discovery_s"}  # daemon figure -> bare zeroconf figure
T = TypeVar("T")
Peers = list[dict[str, Any]]


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("lan suite")
    group.add_argument("--lan-rounds", type=int, default=3, help="daemon pairs, one at a time")


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.lan_rounds <= 50:
        parser.error("--lan-rounds must be from 1 to 50")


async def step(what: str, awaitable: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(awaitable, WAIT)
    except TimeoutError:
        raise BenchError(f"lan: {what}: not within {WAIT:g} s") from None


def log_times(path: Path, msg: str, **match: Any) -> list[float]:
    """When a daemon logged `msg` (with fields `match`): unix times, from its JSON log."""
    times = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            entry = json.loads(line)
            if entry.get("msg") == msg and all(entry.get(k) == v for k, v in match.items()):
                times.append(datetime.fromisoformat(entry["ts"]).timestamp())
    return times


def lists(fingerprint: str) -> Callable[[Peers], bool]:
    return lambda peers: any(p["fingerprint"] == fingerprint for p in peers)


def empty(peers: Peers) -> bool:
    return peers == []


async def fingerprint_of(daemon: NsDaemon) -> str:
    status, state = await daemon.call("GET", "/api/state")
    if status != 200:
        raise BenchError(f"lan: GET /api/state answered {status}")
    return str(state["fingerprint"])


async def daemon_round(lan: NetnsLan, tmp: Path, n: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    (h1, h2), homes = lan.hosts, (tmp / f"alice-{n}", tmp / f"bob-{n}")
    alice, bob = await asyncio.gather(
        NsDaemon.start(h1, homes[0], "--profile", "alice", "--visible"),
        NsDaemon.start(h2, homes[1], "--profile", "bob", "--visible"),
    )
    daemons = [alice, bob]
    figures: dict[str, float] = {}
    try:
        logged_in = loop.time()
        alice_fp, bob_fp = await asyncio.gather(fingerprint_of(alice), fingerprint_of(bob))
        await step(
            "discovery",
            asyncio.gather(alice.nearby_until(lists(bob_fp)), bob.nearby_until(lists(alice_fp))),
        )
        figures["discovery_ui_s"] = loop.time() - logged_in
        bob.kill9()
        killed = loop.time()
        await step("kill -9 noticed", alice.nearby_until(empty, within=WAIT))
        figures["kill9_gone_s"] = loop.time() - killed
        await bob.stop()
        bob = await NsDaemon.start(h2, homes[1], "--profile", "bob", "--visible")
        daemons.append(bob)
        await step("restarted peer listed", alice.nearby_until(lists(bob_fp)))
        stopping = loop.time()
        await alice.stop()
        await step("clean stop noticed", bob.nearby_until(empty))
        figures["clean_stop_s"] = loop.time() - stopping
    finally:
        await asyncio.gather(*(d.stop() for d in daemons))
    alice_log, bob_log = Path(alice.ready["log"]), Path(bob.ready["log"])
    up_a, up_b = log_times(alice_log, STARTED), log_times(bob_log, STARTED)
    listed_b = log_times(alice_log, LISTED, fingerprint=bob_fp)
    listed_a = log_times(bob_log, LISTED, fingerprint=alice_fp)
    figures["discovery_log_s"] = max(listed_a[0], listed_b[0]) - max(up_a[0], up_b[0])
    figures["restart_listed_s"] = listed_b[1] - up_b[1]
    return figures


async def bare_round(lan: NetnsLan, tmp: Path, n: int) -> dict[str, float]:
    procs = []
    for host in lan.hosts:
        name = f"bare-{os.getpid()}-{n}-{host.address.rsplit('.', 1)[1]}"
        argv = python_module("bench.lan_bare", "--address", host.address, "--name", name)
        with (tmp / f"{name}.log").open("wb") as log:
            procs.append(
                await asyncio.create_subprocess_exec(
                    *("ip", "netns", "exec", host.ns, *argv),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    cwd=REPO,
                )
            )

    async def line(proc: asyncio.subprocess.Process, key: str) -> float:
        assert proc.stdout is not None
        message = json.loads(await proc.stdout.readline() or b"{}")
        if key not in message:
            raise BenchError(f"lan: bare zeroconf: expected {key!r}, got {message}")
        return float(message["at" if key == "seen" else key])

    try:
        started = await step(
            "bare zeroconf start", asyncio.gather(*(line(p, "started") for p in procs))
        )
        seen = await step(
            "bare zeroconf discovery", asyncio.gather(*(line(p, "seen") for p in procs))
        )
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        await asyncio.gather(*(asyncio.wait_for(p.wait(), 10) for p in procs))
    return {"discovery_s": max(seen) - max(started)}


def summaries(rounds: list[dict[str, float]]) -> dict[str, Summary]:
    keys = {key for figures in rounds for key in figures}
    return {key: Summary.of([r[key] for r in rounds if key in r]) for key in sorted(keys)}


def table(daemons: dict[str, Summary], bare: dict[str, Summary]) -> str:
    lines: list[tuple[str, ...]] = [
        ("LAN, 2 namespaces", "p50", "max", "bare zeroconf p50", "ratio")
    ]
    for key, label in FIGURES.items():
        s = daemons[key]
        base = bare.get(BASELINE.get(key, ""))
        shown = (report.num(base.p50, 3), report.num(s.p50 / base.p50, 1)) if base else ("-", "-")
        lines.append((label, report.num(s.p50, 3), report.num(s.max, 3), *shown))
    return report.render(lines)


def verdicts(daemons: dict[str, Summary]) -> list[dict[str, Any]]:
    discovery, gone = daemons["discovery_log_s"], daemons["kill9_gone_s"]
    return [
        {
            "goal": f"LAN discovery p50 at most {TARGET_DISCOVERY_S:g} s (from the logs)",
            "met": discovery.p50 <= TARGET_DISCOVERY_S,
            "why": f"p50 {discovery.p50:.3f} s, max {discovery.max:.3f} s",
        },
        {
            "goal": f"a peer killed with -9 gone from the list within {TARGET_GONE_S:g} s",
            "met": gone.max <= TARGET_GONE_S,
            "why": f"p50 {gone.p50:.3f} s, max {gone.max:.3f} s",
        },
    ]


async def measure(
    args: argparse.Namespace, tmp: Path
) -> tuple[list[dict[str, float]], list[dict[str, float]]]:
    lan = NetnsLan(2)
    try:
        try:
            lan.up()
        except RuntimeError as exc:
            raise BenchError(f"lan: cannot build the namespaces: {exc}") from None
        rounds, bare = [], []
        for n in range(args.lan_rounds):
            rounds.append(await daemon_round(lan, tmp, n))
            say(f"lan: round {n + 1}: " + ", ".join(f"{k} {v:.3f}" for k, v in rounds[-1].items()))
            if not args.no_baseline:
                bare.append(await bare_round(lan, tmp, n))
                say(f"lan: bare zeroconf {n + 1}: {bare[-1]['discovery_s']:.3f} s")
        return rounds, bare
    finally:
        lan.down()


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    document: dict[str, Any] = {
        "benchmark": "lan",
        "started_at": started.isoformat(timespec="seconds"),
        "machine": report.machine_info() | {"zeroconf": version("zeroconf")},
        "parameters": {k: getattr(args, k) for k in PARAMETERS}
        | {"timeout": args.timeout or SUITE.default_timeout},
    }
    reason = skip_reason()
    if reason:
        say(f"lan: not measured: {reason}")
        print(f"note: lan suite not measured: {reason}")
        document["skipped"] = reason
    else:
        with tempfile.TemporaryDirectory(prefix="chatorbit-bench-lan-") as name:
            rounds, bare = await measure(args, Path(name))
        daemons, baseline = summaries(rounds), summaries(bare)
        print()
        print(table(daemons, baseline))
        print()
        document |= {
            "targets": verdicts(daemons),
            "summaries": {"daemons": daemons, "bare_zeroconf": baseline},
            "rounds": rounds,
            "bare_zeroconf_rounds": bare,
        }
        for verdict in document["targets"]:
            print(report.verdict_line(verdict))
    document["duration_seconds"] = round(time.perf_counter() - clock, 1)
    path = report.write_json(document, args.results_dir, started, "lan")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="lan",
    summary="nearby daemons in network namespaces: discovery, kill -9 and restart "
    "noticed, against bare zeroconf (needs root)",
    default_timeout=300.0,
    add_options=add_options,
    check=check,
    run=run,
)
