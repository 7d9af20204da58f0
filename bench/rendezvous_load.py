"""The load generator: token issue rate, and relay latency with many pairs held open.

The same code drives the rendezvous and the baseline; only the `Target` differs.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from dataclasses import dataclass

from aiohttp import ClientError, ClientSession, ClientTimeout, TCPConnector

from .meter import Meter, Usage
from .pairs import Pairs, probe
from .procs import BenchError, Server
from .stats import Summary
from .targets import Target

HTTP_TIMEOUT = ClientTimeout(total=30.0)
WARMUP_ISSUES = 50
WARMUP_PAIRS = 4
SETTLE_SECONDS = 1.0
KIB = 1024


# -- token issues ------------------------------------------------------------


@dataclass(frozen=True)
class IssueResult:
    requested: int
    issued: int
    errors: int
    first_error: str
    concurrency: int
    per_second: float
    latency_ms: Summary
    usage: Usage


async def measure_issues(
    target: Target, server: Server, count: int, concurrency: int
) -> IssueResult:
    """Issue `count` tokens over `concurrency` keep-alive connections, after a warm-up."""
    connector = TCPConnector(limit=concurrency)
    async with ClientSession(connector=connector, timeout=HTTP_TIMEOUT) as http:
        await _issue_many(target, http, min(WARMUP_ISSUES, count), concurrency)
        meter = Meter(server)
        latencies, errors = await _issue_many(target, http, count, concurrency)
        usage = meter.read()
    issued = len(latencies)
    return IssueResult(
        requested=count,
        issued=issued,
        errors=sum(errors.values()),
        first_error=next(iter(errors), ""),
        concurrency=concurrency,
        per_second=issued / usage.seconds,
        latency_ms=Summary.of(latencies),
        usage=usage,
    )


async def _issue_many(
    target: Target, http: ClientSession, count: int, concurrency: int
) -> tuple[list[float], Counter[str]]:
    latencies: list[float] = []
    errors: Counter[str] = Counter()
    todo = iter(range(count))  # shared by the workers: each number is taken once

    async def worker() -> None:
        for _ in todo:
            started = time.perf_counter()
            try:
                await target.issue(http)
            except (BenchError, ClientError, OSError, TimeoutError, ValueError, KeyError) as exc:
                errors[f"{type(exc).__name__}: {exc}"[:200]] += 1
                continue
            latencies.append((time.perf_counter() - started) * 1e3)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return latencies, errors


# -- pairs and relay latency -------------------------------------------------


@dataclass(frozen=True)
class SessionParams:
    pairs: int
    messages_per_pair: int
    spread_seconds: float
    payload_bytes: int
    setup_concurrency: int
    drain_timeout: float


@dataclass(frozen=True)
class SessionResult:
    pairs_requested: int
    pairs_open: int
    setup_failures: dict[str, int]
    first_setup_failure: str
    setup: Usage
    server_open_sockets: int
    """Open sockets as the server counts them, with every pair connected."""
    rss_idle_kib: float
    rss_open_kib: float
    rss_after_relay_kib: float
    rss_peak_kib: float
    rss_per_pair_kib: float
    sent: int
    send_errors: int
    delivered: int
    lost: int
    misrouted: int
    duplicates: int
    server_errors: dict[str, int]
    received_kinds: dict[str, int]
    sender_max_lag_ms: float
    """How far the sender fell behind its schedule: above a few ms, the load generator lags."""
    relay: Usage
    latency_ms: Summary
    unexpected_closes: int
    close_codes: dict[str, int]
    teardown_seconds: float


async def measure_sessions(target: Target, server: Server, params: SessionParams) -> SessionResult:
    """Open `params.pairs` pairs, hold them, send paced probes host to guest, close them."""
    http_connector = TCPConnector(limit=params.setup_concurrency)
    ws_connector = TCPConnector(limit=0)  # WebSockets hold their connection while open
    async with (
        ClientSession(connector=http_connector, timeout=HTTP_TIMEOUT) as http,
        ClientSession(connector=ws_connector, timeout=HTTP_TIMEOUT) as wss,
    ):
        await _warm_up(target, http, wss, params)
        await asyncio.sleep(SETTLE_SECONDS)
        rss_idle = server.rss_bytes()
        pairs = Pairs()
        try:
            meter = Meter(server)
            await pairs.open(target, http, wss, params.pairs, params.setup_concurrency)
            setup = meter.read()
            await asyncio.sleep(SETTLE_SECONDS)
            server_open = await target.open_sockets(http)
            rss_open = server.rss_bytes()
            meter = Meter(server)
            sent, send_errors, lag = await _send_paced(pairs, params)
            await _await_delivery(pairs, sent, params.drain_timeout)
            relay = meter.read()
            rss_after = server.rss_bytes()
            rss_peak = server.peak_rss_bytes()
        finally:
            teardown = await pairs.close()
    inbox, opened = pairs.inbox, len(pairs.pairs)
    return SessionResult(
        pairs_requested=params.pairs,
        pairs_open=opened,
        setup_failures=dict(pairs.failures),
        first_setup_failure=pairs.first_failure,
        setup=setup,
        server_open_sockets=server_open,
        rss_idle_kib=rss_idle / KIB,
        rss_open_kib=rss_open / KIB,
        rss_after_relay_kib=rss_after / KIB,
        rss_peak_kib=rss_peak / KIB,
        rss_per_pair_kib=(rss_open - rss_idle) / KIB / max(opened, 1),
        sent=sent,
        send_errors=send_errors,
        delivered=inbox.delivered,
        lost=sent - inbox.delivered,
        misrouted=inbox.misrouted,
        duplicates=inbox.duplicates,
        server_errors=dict(inbox.errors),
        received_kinds=dict(inbox.kinds),
        sender_max_lag_ms=lag,
        relay=relay,
        latency_ms=Summary.of(inbox.latencies_ms),
        unexpected_closes=pairs.unexpected_closes,
        close_codes=dict(pairs.close_codes),
        teardown_seconds=teardown,
    )


async def _warm_up(
    target: Target, http: ClientSession, wss: ClientSession, params: SessionParams
) -> None:
    """A few pairs through the whole path, so the idle RSS includes what is loaded lazily."""
    warm = Pairs()
    try:
        await warm.open(target, http, wss, WARMUP_PAIRS, WARMUP_PAIRS, first_index=-WARMUP_PAIRS)
        if warm.failures:
            raise BenchError(f"{target.name}: warm-up pairs failed: {warm.first_failure}")
        for pair in warm.pairs:
            await pair.host.send_str(probe(pair.index, pair.index, "x" * params.payload_bytes))
        await _await_delivery(warm, len(warm.pairs), params.drain_timeout)
    finally:
        await warm.close()


async def _send_paced(pairs: Pairs, params: SessionParams) -> tuple[int, int, float]:
    """Send `messages_per_pair` probes from every host, evenly over `spread_seconds`.

    Message k of pair i goes out at (k * pairs + i) * interval: each host sends
    one probe every `spread_seconds / messages_per_pair`, and the server as a
    whole sees an even stream. Returns (sent, send errors, worst lag in ms).
    """
    ready = list(pairs.pairs)
    total = len(ready) * params.messages_per_pair
    if not total:
        return 0, 0, 0.0
    return await send_paced(
        pairs,
        total,
        started=time.perf_counter(),
        interval=params.spread_seconds / total,
        pad="x" * params.payload_bytes,
    )


async def send_paced(
    pairs: Pairs, total: int, *, started: float, interval: float, pad: str
) -> tuple[int, int, float]:
    """Send `total` probes round the pairs' hosts, probe k at `started + k * interval`
    (perf_counter time). Returns (sent, send errors, worst lag behind schedule in ms)."""
    ready = list(pairs.pairs)
    sent = errors = 0
    worst_lag = 0.0
    for seq in range(total if ready else 0):
        ahead = started + seq * interval - time.perf_counter()
        if ahead > 0:
            await asyncio.sleep(ahead)
        else:
            worst_lag = max(worst_lag, -ahead)
        pair = ready[seq % len(ready)]
        try:
            await pair.host.send_str(probe(pair.index, seq, pad))
            sent += 1
        except (ClientError, OSError) as exc:
            errors += 1
            pairs.failures[f"send: {type(exc).__name__}"] += 1
    return sent, errors, worst_lag * 1e3


async def _await_delivery(pairs: Pairs, expected: int, seconds: float) -> None:
    """Wait until `expected` probes arrived, or `seconds` (the missing ones count as lost)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            await pairs.inbox.delivery_of(expected)
