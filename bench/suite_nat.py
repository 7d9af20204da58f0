"""`python -m bench nat`: sessions across two NATs (tests/nat.py), against a bare aiortc pair.

Two topologies, each built, measured and deleted in turn (namespaces; needs root,
`ip netns`, nftables and coturn, and measures nothing without them): `direct` (two
cone NATs, the daemons' ICE servers = coturn's STUN) and `relayed` (two symmetric
NATs, STUN + TURN through coturn). For each:

- bare: two `bench.nat_bare` processes, one per home, the offer and answer carried
  by this process: createOffer -> data channel open on both, and how much of it is
  candidate gathering; the same with aioice's first STUN retransmission timeout at
  0.1 s instead of 0.5 s (`--stun-rto`), and with an in-progress check resent as soon
  as the other side's check arrives on its pair (RFC 8445 7.3.1.4, which aioice does
  not do), to see whether the time goes to a lost first check waiting for its
  retransmission;
- daemons: two orbitd (`tests.ns_daemon` drivers) online through the rendezvous on
  the public host: POST /api/join -> both `ready`, per session (ended by hand
  between rounds); message one-way latency, POST on one side -> `message` event on
  the other, through both drivers;
- outages (`--nat-outages`, default 1 per topology; `--nat-long` runs 20, every
  other one 60 s): home A's uplink cut for 10 s while both sides send a message
  every 2 s; figures: from the link back to the first message sent during the cut
  delivered, and how many of all messages were lost, duplicated or out of order.

Targets (reported, never failed on): connect p50 under 0.3 s, the first queued
message delivered within 2 s of the link coming back, 0 lost and 0 duplicated.
A table goes to stdout and the figures to bench/results/nat-*.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import tempfile
import time
from collections.abc import Awaitable
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any, TypeVar

from tests.nat import CONE, SYMMETRIC, NatNet, hand_ice_flags, nat_skip_reason
from tests.netns import NsDaemon

from . import report
from .procs import REPO, BenchError, python_module
from .runner import Suite, say
from .stats import Summary

PARAMETERS = (
    "nat_rounds",
    "nat_messages",
    "nat_outages",
    "nat_long",
    "nat_topology",
    "no_baseline",
)
WAIT = 30.0
TARGET_CONNECT_S = 0.3
TARGET_RECOVERY_S = 2.0
T = TypeVar("T")
OUTAGE_S, LONG_OUTAGE_S, LONG_OUTAGES = 10.0, 60.0, 20
LONG_TIMEOUT_S = 3600.0
SEND_EVERY_S = 2.0
DRAIN_S = 45.0  # how long after the link is back the messages may take to arrive


BARE_VARIANTS = {  # the baseline, then two experiments on where its connect time goes
    "bare": [],
    "bare_rto_0.1": ["--stun-rto", "0.1"],
    "bare_triggered": ["--triggered-retransmit"],
}
BARE_LABELS = {
    "bare": "bare: offer -> open s",
    "bare_rto_0.1": "bare, STUN RTO 0.1 s: offer -> open s",
    "bare_triggered": "bare, check resent on incoming: -> open s",
}


@dataclass(frozen=True)
class Topology:
    name: str
    kinds: tuple[str, str]
    turn: bool


TOPOLOGIES = (Topology("direct", (CONE, CONE), False), Topology("relayed", (SYMMETRIC,) * 2, True))


def add_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("nat suite")
    add = group.add_argument
    add("--nat-rounds", type=int, default=5, help="connections per topology (bare and daemons)")
    add("--nat-messages", type=int, default=50, help="messages per topology for the latency")
    add("--nat-outages", type=int, default=1, help="10 s uplink cuts per topology")
    add(
        "--nat-long",
        action="store_true",
        help=f"{LONG_OUTAGES} outages, every other 60 s (timeout {LONG_TIMEOUT_S:g} s)",
    )
    add(
        "--nat-topology",
        choices=["both", *(t.name for t in TOPOLOGIES)],
        default="both",
        help="measure one topology only",
    )


def check(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    if not 1 <= args.nat_rounds <= 100:
        parser.error("--nat-rounds must be from 1 to 100")
    if not 1 <= args.nat_messages <= 10_000:
        parser.error("--nat-messages must be from 1 to 10000")
    if not 0 <= args.nat_outages <= 100:
        parser.error("--nat-outages must be from 0 to 100")
    if args.nat_long and args.timeout is None:
        args.timeout = LONG_TIMEOUT_S  # 20 outages, half of them 60 s, per topology


async def step(what: str, awaitable: Awaitable[T]) -> T:
    try:
        return await asyncio.wait_for(awaitable, WAIT)
    except TimeoutError:
        raise BenchError(f"nat: {what}: not within {WAIT:g} s") from None


def ice_args(net: NatNet, topology: Topology) -> list[str]:
    urls = [net.stun_url, *([net.turn_url()] if topology.turn else [])]
    return hand_ice_flags(net, *urls)


# --- the bare pair ---------------------------------------------------------------------


async def bare_round(net: NatNet, topology: Topology, extra: list[str]) -> dict[str, Any]:
    flags = ice_args(net, topology)
    procs = []
    for home, role in (("a", "offer"), ("b", "answer")):
        argv = python_module("bench.nat_bare", "--role", role, *bare_flags(flags), *extra)
        with (net.run_dir / f"bare-{role}.log").open("ab") as log:
            procs.append(
                await asyncio.create_subprocess_exec(
                    *("ip", "netns", "exec", net.homes[home].host.ns, *argv),
                    stdin=asyncio.subprocess.PIPE,
                    stdout=asyncio.subprocess.PIPE,
                    stderr=log,
                    cwd=REPO,
                    limit=1 << 20,
                )
            )

    async def read(proc: asyncio.subprocess.Process) -> dict[str, Any]:
        assert proc.stdout is not None
        line = await proc.stdout.readline()
        if not line:
            raise BenchError("nat: a bare peer exited early (its log is in the run dir)")
        message: dict[str, Any] = json.loads(line)
        return message

    def write(proc: asyncio.subprocess.Process, message: dict[str, Any]) -> None:
        assert proc.stdin is not None
        proc.stdin.write(json.dumps(message).encode() + b"\n")

    offerer, answerer = procs
    try:
        offer = await step("bare offer", read(offerer))
        write(answerer, {"offer": offer["offer"]})
        answer = await step("bare answer", read(answerer))
        write(offerer, {"answer": answer["answer"]})
        opened = await step("bare open", asyncio.gather(read(offerer), read(answerer)))
    finally:
        for proc in procs:
            if proc.stdin is not None:
                proc.stdin.close()
        await asyncio.gather(*(asyncio.wait_for(p.wait(), 10) for p in procs))
    t0 = offer["t0_ns"]
    return {
        "connect_s": (max(o["open_ns"] for o in opened) - t0) / 1e9,
        "offer_gathering_s": (offer["gathered_ns"] - t0) / 1e9,
        "answer_gathering_s": (answer["gathered_ns"] - offer["gathered_ns"]) / 1e9,
        "checks_to_open_s": (max(o["open_ns"] for o in opened) - answer["gathered_ns"]) / 1e9,
        "path": opened[0]["path"],
    }


def bare_flags(flags: list[str]) -> list[str]:
    """orbitd's --ice-* flags as bench.nat_bare's."""
    names = {"--ice-username": "--username", "--ice-credential": "--credential"}
    return [names.get(f, f) for f in flags]


# --- the daemons -----------------------------------------------------------------------


async def ready(daemon: NsDaemon) -> float:
    await daemon.until("session", lambda e: e["session"]["phase"] == "ready", WAIT)
    return asyncio.get_running_loop().time()


async def session(alice: NsDaemon, bob: NsDaemon) -> float:
    """A new session, host alice: POST /api/join -> both ready, seconds."""
    status, created = await alice.call("POST", "/api/tokens", {"ttl_minutes": 60})
    if status != 201:
        raise BenchError(f"nat: POST /api/tokens answered {status}: {created}")
    loop = asyncio.get_running_loop()
    waiting = asyncio.gather(ready(alice), ready(bob))
    joined_at = loop.time()
    status, joined = await bob.call("POST", "/api/join", {"invite": created["invite"]})
    if status != 200:
        waiting.cancel()
        raise BenchError(f"nat: POST /api/join answered {status}: {joined}")
    return max(await step("ready", waiting)) - joined_at


async def end(alice: NsDaemon, bob: NsDaemon) -> None:
    await alice.call("POST", "/api/session/end", {})
    for daemon in (alice, bob):
        await step("ended", daemon.until("session-ended", lambda e: True, WAIT))


async def latencies(alice: NsDaemon, bob: NsDaemon, count: int) -> list[float]:
    loop, sent, got = asyncio.get_running_loop(), {}, []
    for i in range(count):
        sent[f"lat {i}"] = loop.time()
        status, body = await alice.call("POST", "/api/messages", {"text": f"lat {i}"})
        if status != 201:
            raise BenchError(f"nat: POST /api/messages answered {status}: {body}")
        event = await step("message", bob.until("message", lambda e: True, WAIT))
        got.append(loop.time() - sent[event["message"]["text"]])
    return got


class Inbox:
    """Every chat message a daemon shows, stamped when it arrived (a reader task)."""

    def __init__(self, daemon: NsDaemon) -> None:
        self.texts: list[tuple[float, str]] = []
        self._task = asyncio.create_task(self._read(daemon))

    async def _read(self, daemon: NsDaemon) -> None:
        loop = asyncio.get_running_loop()
        while True:
            event = await daemon.events.get()
            if event.get("type") == "message" and event["message"]["author"] == "peer":
                self.texts.append((loop.time(), event["message"]["text"]))

    async def close(self) -> None:
        self._task.cancel()
        await asyncio.gather(self._task, return_exceptions=True)


async def outage(net: NatNet, alice: NsDaemon, bob: NsDaemon, seconds: float) -> dict[str, Any]:
    """Home A's uplink cut for `seconds`, both sending every 2 s (and once after)."""
    loop = asyncio.get_running_loop()
    inboxes = {"alice": Inbox(alice), "bob": Inbox(bob)}
    sent: dict[str, list[str]] = {"alice": [], "bob": []}
    during: dict[str, set[str]] = {"alice": set(), "bob": set()}
    refused = 0

    async def send(name: str, daemon: NsDaemon, tag: str, cut: bool) -> None:
        nonlocal refused
        text = f"{name} {tag} {len(sent[name])}"
        status, _ = await daemon.call("POST", "/api/messages", {"text": text})
        if status == 201:
            sent[name].append(text)
            if cut:
                during[name].add(text)
        else:
            refused += 1

    try:
        net.cut_uplink("a")
        cut_at = loop.time()
        while loop.time() - cut_at < seconds:
            await asyncio.gather(send("alice", alice, "cut", True), send("bob", bob, "cut", True))
            await asyncio.sleep(min(SEND_EVERY_S, max(0.0, seconds - (loop.time() - cut_at))))
        net.restore_uplink("a")
        back_at = loop.time()
        await asyncio.gather(send("alice", alice, "after", False), send("bob", bob, "after", False))
        deadline = back_at + DRAIN_S
        while loop.time() < deadline:
            if all(
                {t for _, t in inboxes[peer].texts} >= set(sent[name])
                for name, peer in (("alice", "bob"), ("bob", "alice"))
            ):
                break
            await asyncio.sleep(0.05)
    finally:
        for inbox in inboxes.values():
            await inbox.close()
    lost = duplicated = out_of_order = 0
    first_queued: list[float] = []
    for name, peer in (("alice", "bob"), ("bob", "alice")):
        received = [t for _, t in inboxes[peer].texts]
        lost += len(set(sent[name]) - set(received))
        duplicated += len(received) - len(set(received))
        order = [t for t in sent[name] if t in set(received)]
        out_of_order += int([t for t in dict.fromkeys(received) if t in set(order)] != order)
        queued = [at for at, t in inboxes[peer].texts if t in during[name]]
        if queued:
            first_queued.append(min(queued) - back_at)
    return {
        "seconds": seconds,
        "sent": sum(len(s) for s in sent.values()),
        "refused": refused,
        "lost": lost,
        "duplicated": duplicated,
        "out_of_order": out_of_order,
        "first_queued_delivered_s": min(first_queued) if first_queued else None,
    }


async def daemon_figures(
    net: NatNet, topology: Topology, args: argparse.Namespace
) -> dict[str, Any]:
    flags = ice_args(net, topology)
    alice, bob = await asyncio.gather(
        net.daemon("a", "alice", *flags), net.daemon("b", "bob", *flags)
    )
    connects: list[float] = []
    outages: list[dict[str, Any]] = []
    try:
        for n in range(args.nat_rounds):
            connects.append(await session(alice, bob))
            say(f"nat {topology.name}: daemons {n + 1}: join -> ready {connects[-1]:.3f} s")
            if n < args.nat_rounds - 1:
                await end(alice, bob)
        lat = await latencies(alice, bob, args.nat_messages)
        count = LONG_OUTAGES if args.nat_long else args.nat_outages
        for n in range(count):
            seconds = LONG_OUTAGE_S if args.nat_long and n % 2 else OUTAGE_S
            outages.append(await outage(net, alice, bob, seconds))
            say(f"nat {topology.name}: outage {n + 1}: {outages[-1]}")
            _, state = await alice.call("GET", "/api/state")
            session_state = state.get("session") or {}
            if session_state.get("phase") != "ready":  # not recovered: a new session
                with_ended = session_state.get("phase") == "ended"
                if not with_ended:
                    await alice.call("POST", "/api/session/end", {})
                await asyncio.sleep(1)
                connects_after = await session(alice, bob)
                say(f"nat {topology.name}: a new session after the outage ({connects_after:.3f} s)")
    finally:
        await asyncio.gather(alice.stop(), bob.stop())
    return {"connect_s": connects, "latency_s": lat, "outages": outages}


# --- the run ------------------------------------------------------------------------------


async def measure_topology(
    topology: Topology, args: argparse.Namespace, tmp: Path
) -> dict[str, Any]:
    run_dir = tmp / topology.name
    run_dir.mkdir()
    net = NatNet(topology.kinds, run_dir)
    try:
        try:
            net.up()
        except RuntimeError as exc:
            raise BenchError(f"nat: cannot build the namespaces: {exc}") from None
        await asyncio.gather(net.start_rendezvous(), net.start_coturn())
        result: dict[str, Any] = {}
        if not args.no_baseline:
            for key, extra in BARE_VARIANTS.items():
                rounds = [await bare_round(net, topology, extra) for _ in range(args.nat_rounds)]
                result[key] = rounds
                say(
                    f"nat {topology.name}: {key}: "
                    + ", ".join(f"{r['connect_s']:.3f}" for r in rounds)
                )
        result["daemons"] = await daemon_figures(net, topology, args)
        return result
    finally:
        await net.stop_all()
        net.down()


def summary(samples: list[float]) -> Summary:
    return Summary.of(samples)


def table(results: dict[str, dict[str, Any]]) -> str:
    lines: list[tuple[str, ...]] = [("NAT topology", "p50", "p99/max", "bare p50", "ratio")]
    for name, result in results.items():
        daemons = result["daemons"]
        connect = summary(daemons["connect_s"])
        bare = summary([r["connect_s"] for r in result.get("bare", [])])
        shown = (
            (report.num(bare.p50, 3), report.num(connect.p50 / bare.p50, 1))
            if bare.count
            else ("-", "-")
        )
        lines.append(
            (
                f"{name}: join -> ready s",
                report.num(connect.p50, 3),
                report.num(connect.max, 3),
                *shown,
            )
        )
        for key, label in BARE_LABELS.items():
            if key in result:
                s = summary([r["connect_s"] for r in result[key]])
                g = summary([r["offer_gathering_s"] + r["answer_gathering_s"] for r in result[key]])
                lines.append(
                    (
                        f"{name}: {label}",
                        report.num(s.p50, 3),
                        report.num(s.max, 3),
                        f"gathering {report.num(g.p50, 3)}",
                        "-",
                    )
                )
        lat = summary([x * 1000 for x in daemons["latency_s"]])
        lines.append(
            (
                f"{name}: message one-way ms",
                report.num(lat.p50, 2),
                report.num(lat.p99, 2),
                "-",
                "-",
            )
        )
        for o in daemons["outages"]:
            first = o["first_queued_delivered_s"]
            lines.append(
                (
                    f"{name}: {o['seconds']:g} s outage: back -> 1st queued s",
                    "-" if first is None else report.num(first, 3),
                    f"lost {o['lost']} dup {o['duplicated']}",
                    f"sent {o['sent']} refused {o['refused']}",
                    "-",
                )
            )
    return report.render(lines)


def verdicts(results: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    found = []
    for name, result in results.items():
        connect = summary(result["daemons"]["connect_s"])
        found.append(
            {
                "goal": f"{name}: join -> ready p50 under {TARGET_CONNECT_S:g} s",
                "met": connect.p50 < TARGET_CONNECT_S,
                "why": f"p50 {connect.p50:.3f} s, max {connect.max:.3f} s",
            }
        )
        outages = result["daemons"]["outages"]
        if outages:
            firsts = [o["first_queued_delivered_s"] for o in outages]
            lost = sum(o["lost"] for o in outages)
            dup = sum(o["duplicated"] for o in outages)
            refused = sum(o["refused"] for o in outages)
            found.append(
                {
                    "goal": f"{name}: 1st queued message {TARGET_RECOVERY_S:g} s after the link",
                    "met": all(f is not None and f <= TARGET_RECOVERY_S for f in firsts),
                    "why": f"{firsts}",
                }
            )
            found.append(
                {
                    "goal": f"{name}: nothing lost, nothing twice over {len(outages)} outages",
                    "met": lost == 0 and dup == 0,
                    "why": f"lost {lost}, duplicated {dup}, refused {refused}",
                }
            )
    return found


async def run(args: argparse.Namespace) -> dict[str, Any]:
    started, clock = datetime.now(UTC), time.perf_counter()
    document: dict[str, Any] = {
        "benchmark": "nat",
        "started_at": started.isoformat(timespec="seconds"),
        "machine": report.machine_info()
        | {"aiortc": version("aiortc"), "aioice": version("aioice")},
        "parameters": {k: getattr(args, k) for k in PARAMETERS}
        | {"timeout": args.timeout or SUITE.default_timeout},
    }
    reason = nat_skip_reason()
    if reason:
        say(f"nat: not measured: {reason}")
        print(f"note: nat suite not measured: {reason}")
        document["skipped"] = reason
    else:
        results: dict[str, dict[str, Any]] = {}
        with tempfile.TemporaryDirectory(prefix="chatorbit-bench-nat-") as name:
            for topology in TOPOLOGIES:
                if args.nat_topology not in ("both", topology.name):
                    continue
                results[topology.name] = await measure_topology(topology, args, Path(name))
        print()
        print(table(results))
        print()
        document |= {"targets": verdicts(results), "results": results}
        for verdict in document["targets"]:
            print(report.verdict_line(verdict))
    document["duration_seconds"] = round(time.perf_counter() - clock, 1)
    path = report.write_json(document, args.results_dir, started, "nat")
    print(f"results: {path}", flush=True)
    return document


SUITE = Suite(
    name="nat",
    summary="sessions across two NATs and coturn in network namespaces: connect time direct "
    "and relayed, message latency, recovery after uplink outages, against a bare aiortc pair "
    "(needs root)",
    default_timeout=600.0,
    add_options=add_options,
    check=check,
    run=run,
)
