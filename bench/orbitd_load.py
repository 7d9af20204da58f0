"""Two daemons, one rendezvous: sessions one after another, chat latency, memory.

The host daemon requests a token, the guest joins with the invite, both
report `ready`, the host ends the session; again, `sessions` times. The last
session carries the paced messages before it ends. Times are this process's
`perf_counter()`: a request is stamped just before it is sent, an event when
it arrives on the daemon's events socket.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field, replace

from aiohttp import ClientError

from .daemons import Daemon, Event, SessionFailed, both_phases
from .pacing import Lag, MessageParams, paced
from .procs import BenchError, RssPair
from .stats import Summary

SETTLE_SECONDS = 0.5
END_TIMEOUT = 10.0
MILESTONES = ("exchanging-keys", "connecting", "ready")


@dataclass(frozen=True)
class SessionParams:
    sessions: int
    timeout: float
    """Seconds a session may take to become ready."""


@dataclass(frozen=True)
class SessionTiming:
    index: int
    """0 for the first session asked for."""
    token_request_ms: float
    """`POST /api/tokens` on the host, answered."""
    join_request_ms: float
    """`POST /api/join` on the guest, answered."""
    join_to_ready_ms: float
    """Join sent until both daemons have reported `ready`."""
    token_to_ready_ms: float
    milestones_ms: dict[str, float]
    """`host connecting`, `guest ready`...: each phase's arrival after the join was sent."""
    end_request_ms: float
    end_to_ended_ms: float
    """End sent until both daemons have reported `ended`."""


@dataclass
class Failures:
    count: Counter[str] = field(default_factory=Counter)
    first: str = ""

    def add(self, exc: BaseException) -> None:
        self.count[type(exc).__name__] += 1
        self.first = self.first or f"{type(exc).__name__}: {exc}"[:300]


@dataclass(frozen=True)
class MessageResult:
    sent: int
    delivered: int
    latency_ms: Summary
    """`POST /api/messages` sent on the host until the guest's `message` event arrived."""
    post_ms: Summary
    """`POST /api/messages` round trip on the host."""
    sender_max_lag_ms: float
    cpu_us_per_message: float
    """CPU time of both daemons per message (and its delivery acknowledgement)."""
    send_errors: int


@dataclass(frozen=True)
class DaemonResult:
    sessions_asked: int
    sessions_ready: int
    failures: dict[str, int]
    first_failure: str
    sas_mismatches: int
    timings: list[SessionTiming]
    join_to_ready_ms: Summary
    token_to_ready_ms: Summary
    token_request_ms: Summary
    join_request_ms: Summary
    end_request_ms: Summary
    end_to_ended_ms: Summary
    milestones_ms: dict[str, Summary]
    first_join_to_ready_ms: float
    """The first session: both daemons import aiortc during it."""
    cpu_ms_per_session: float
    """CPU time of both daemons per session set up and ended (the messages not counted)."""
    messages: MessageResult | None
    rss_idle: RssPair
    """Started and logged in, the events socket open, no session yet."""
    rss_first_up: RssPair
    rss_first_ended: RssPair
    rss_last_up: RssPair
    """The last session up, after the messages."""
    rss_all_ended: RssPair
    rss_peak: RssPair


def _cpu(host: Daemon, guest: Daemon) -> float:
    return host.server.cpu_seconds() + guest.server.cpu_seconds()


async def _settled_rss(host: Daemon, guest: Daemon) -> RssPair:
    await asyncio.sleep(SETTLE_SECONDS)
    return RssPair.of(host.server, guest.server)


def _ms(start: float, end: float) -> float:
    return (end - start) * 1e3


async def connect(
    host: Daemon, guest: Daemon, index: int, seconds: float
) -> tuple[str, SessionTiming, bool]:
    """Session `index` up to `ready` on both sides: (token, its timing, whether the SAS
    match)."""
    host.drain()
    guest.drain()
    asked = time.perf_counter()
    created = await host.expect(201, "POST", "/api/tokens", {"ttl_minutes": 60})
    token, invite = str(created["token"]), str(created["invite"])
    joining = time.perf_counter()
    await guest.expect(200, "POST", "/api/join", {"invite": invite})
    joined = time.perf_counter()
    seen = await both_phases(host, guest, token, "ready", seconds)
    ready = max(s["ready"] for s in seen)
    milestones = {
        f"{side} {phase}": _ms(joining, s[phase])
        for side, s in zip(("host", "guest"), seen, strict=True)
        for phase in MILESTONES
        if phase in s
    }
    state = await asyncio.gather(host.call("GET", "/api/state"), guest.call("GET", "/api/state"))
    sas = [answer["session"]["sas"] for _status, answer in state]
    timing = SessionTiming(
        index=index,
        token_request_ms=_ms(asked, joining),
        join_request_ms=_ms(joining, joined),
        join_to_ready_ms=_ms(joining, ready),
        token_to_ready_ms=_ms(asked, ready),
        milestones_ms=milestones,
        end_request_ms=float("nan"),
        end_to_ended_ms=float("nan"),
    )
    return token, timing, bool(sas[0]) and sas[0] == sas[1]


async def end(host: Daemon, guest: Daemon, token: str) -> tuple[float, float]:
    """The host ends the session: (end request ms, end sent → both `ended` ms)."""
    sent = time.perf_counter()
    await host.expect(200, "POST", "/api/session/end", {})
    answered = time.perf_counter()
    seen = await both_phases(host, guest, token, "ended", END_TIMEOUT)
    return _ms(sent, answered), _ms(sent, max(s["ended"] for s in seen))


async def abandon(host: Daemon, guest: Daemon) -> None:
    """After a failed session: end it on both sides if it is still running."""
    for side in (host, guest):
        with contextlib.suppress(ClientError, TimeoutError, BenchError):
            async with asyncio.timeout(END_TIMEOUT):
                await side.call("POST", "/api/session/end", {})
    await asyncio.sleep(SETTLE_SECONDS)


async def chat(host: Daemon, guest: Daemon, params: MessageParams) -> MessageResult:
    """Paced messages host → guest through both local APIs, one at a time."""
    guest.drain()
    sent_at: dict[int, float] = {}
    posts: list[float] = []
    errors, lag = 0, Lag()
    cpu = _cpu(host, guest)
    async for seq in paced(params.count, params.interval_ms, lag):
        head = f"bench {seq:06d} "
        text = head + "x" * max(0, params.size - len(head))
        sent_at[seq] = time.perf_counter()
        try:
            status, _answer = await host.call("POST", "/api/messages", {"text": text})
        except (ClientError, TimeoutError):
            status = 0
        posts.append(_ms(sent_at[seq], time.perf_counter()))
        if status != 201:
            errors += 1
            del sent_at[seq]
    latencies = await _deliveries(guest, sent_at, params.drain_timeout)
    cpu_used = _cpu(host, guest) - cpu
    host.drain()  # the delivery acknowledgements
    return MessageResult(
        sent=len(sent_at),
        delivered=len(latencies),
        latency_ms=Summary.of(latencies),
        post_ms=Summary.of(posts),
        sender_max_lag_ms=lag.worst_ms,
        cpu_us_per_message=cpu_used * 1e6 / max(params.count, 1),
        send_errors=errors,
    )


async def _deliveries(guest: Daemon, sent_at: dict[int, float], seconds: float) -> list[float]:
    latencies: list[float] = []
    waiting = dict(sent_at)

    def delivered(event: Event) -> float | None:
        if event.kind != "message":
            return None
        text = str(event.body.get("message", {}).get("text", ""))
        parts = text.split(" ", 2)
        if len(parts) < 2 or parts[0] != "bench" or not parts[1].isdigit():
            return None
        sent = waiting.pop(int(parts[1]), None)
        return None if sent is None else _ms(sent, event.at)

    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(seconds):
            while waiting:
                latency = delivered(await guest.events.get())
                if latency is not None:
                    latencies.append(latency)
    return latencies


@dataclass
class _Tally:
    """What the session loop gathers as it goes."""

    timings: list[SessionTiming] = field(default_factory=list)
    failures: Failures = field(default_factory=Failures)
    sas_mismatches: int = 0
    cpu_seconds: float = 0.0
    rss: dict[str, RssPair] = field(default_factory=dict)
    messages: MessageResult | None = None


async def _session(
    host: Daemon,
    guest: Daemon,
    tally: _Tally,
    n: int,
    params: SessionParams,
    messages: MessageParams | None,
) -> None:
    """Session number `n`: connect, take the figures due at this point, end."""
    last = n == params.sessions - 1
    cpu = _cpu(host, guest)
    try:
        token, timing, sas_ok = await connect(host, guest, n, params.timeout)
    except (SessionFailed, BenchError, ClientError, TimeoutError) as exc:
        tally.failures.add(exc)
        await abandon(host, guest)
        return
    finally:
        tally.cpu_seconds += _cpu(host, guest) - cpu
    tally.sas_mismatches += not sas_ok
    if n == 0:
        tally.rss["first_up"] = await _settled_rss(host, guest)
    if last and messages is not None:
        tally.messages = await chat(host, guest, messages)
    if last:
        tally.rss["last_up"] = await _settled_rss(host, guest)
    cpu = _cpu(host, guest)
    try:
        end_request, end_to_ended = await end(host, guest, token)
        timing = replace(timing, end_request_ms=end_request, end_to_ended_ms=end_to_ended)
    except (SessionFailed, BenchError, ClientError, TimeoutError) as exc:
        tally.failures.add(exc)
        await abandon(host, guest)
    tally.cpu_seconds += _cpu(host, guest) - cpu
    tally.timings.append(timing)
    if n == 0:
        tally.rss["first_ended"] = await _settled_rss(host, guest)


def _summary(timings: list[SessionTiming], get: Callable[[SessionTiming], float]) -> Summary:
    return Summary.of([x for x in map(get, timings) if math.isfinite(x)])


async def measure_daemons(
    host: Daemon, guest: Daemon, params: SessionParams, messages: MessageParams | None
) -> DaemonResult:
    """`params.sessions` sessions one after the other; the messages go over the last one."""
    tally = _Tally()
    tally.rss["idle"] = await _settled_rss(host, guest)
    for n in range(params.sessions):
        await _session(host, guest, tally, n, params, messages)
    tally.rss["all_ended"] = await _settled_rss(host, guest)
    timings, missing = tally.timings, RssPair(math.nan, math.nan)
    first = timings[0] if timings and timings[0].index == 0 else None
    milestones = {
        f"{side} {phase}": Summary.of(
            [
                t.milestones_ms[f"{side} {phase}"]
                for t in timings
                if f"{side} {phase}" in t.milestones_ms
            ]
        )
        for side in ("host", "guest")
        for phase in MILESTONES
    }
    return DaemonResult(
        sessions_asked=params.sessions,
        sessions_ready=len(timings),
        failures=dict(tally.failures.count),
        first_failure=tally.failures.first,
        sas_mismatches=tally.sas_mismatches,
        timings=timings,
        join_to_ready_ms=_summary(timings, lambda t: t.join_to_ready_ms),
        token_to_ready_ms=_summary(timings, lambda t: t.token_to_ready_ms),
        token_request_ms=_summary(timings, lambda t: t.token_request_ms),
        join_request_ms=_summary(timings, lambda t: t.join_request_ms),
        end_request_ms=_summary(timings, lambda t: t.end_request_ms),
        end_to_ended_ms=_summary(timings, lambda t: t.end_to_ended_ms),
        milestones_ms=milestones,
        first_join_to_ready_ms=first.join_to_ready_ms if first else math.nan,
        cpu_ms_per_session=tally.cpu_seconds * 1e3 / len(timings) if timings else math.nan,
        messages=tally.messages,
        rss_idle=tally.rss["idle"],
        rss_first_up=tally.rss.get("first_up", missing),
        rss_first_ended=tally.rss.get("first_ended", missing),
        rss_last_up=tally.rss.get("last_up", missing),
        rss_all_ended=tally.rss["all_ended"],
        rss_peak=RssPair.peak(host.server, guest.server),
    )
