"""The daemon benchmark's output: its table, its targets, its ratios to the bare aiortc pair."""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .bare_pair import BareResult
from .orbitd_load import DaemonResult, MessageResult
from .procs import RssPair
from .report import num, ratio, render

TARGET_READY_MS = 300.0
TARGET_MESSAGE_P50_MS = 2.0
TARGET_IDLE_RSS_MIB = 40.0


@dataclass(frozen=True)
class Row:
    """One line of the table. A figure is a float (shown with `digits`, and divided by the
    baseline's for the ratio unless `compare` is off) or a string (shown as it is)."""

    key: str
    label: str
    daemons: Callable[[DaemonResult], float | str]
    bare: Callable[[BareResult], float | str] | None = None
    digits: int = 1
    compare: bool = True


def _messages(get: Callable[[MessageResult], float]) -> Callable[[DaemonResult], float]:
    return lambda d: get(d.messages) if d.messages is not None else math.nan


def _pair(d: DaemonResult, phase: str) -> str:
    host, guest = d.milestones_ms[f"host {phase}"].p50, d.milestones_ms[f"guest {phase}"].p50
    return f"{num(host)} / {num(guest)}"


def _rss(get: Callable[[Any], RssPair]) -> Callable[[Any], float]:
    return lambda r: get(r).mean_mib


ROWS: list[Row] = [
    Row(
        "sessions",
        "sessions ready / asked (bare: connections)",
        lambda d: f"{d.sessions_ready} / {d.sessions_asked}",
        lambda b: f"{b.connected} / {b.rounds}",
    ),
    Row(
        "join_to_ready_p50_ms",
        "join → chat-ready p50 ms (bare: offer → open)",
        lambda d: d.join_to_ready_ms.p50,
        lambda b: b.setup_ms.p50,
    ),
    Row(
        "join_to_ready_p90_ms",
        "join → chat-ready p90 ms",
        lambda d: d.join_to_ready_ms.p90,
        lambda b: b.setup_ms.p90,
    ),
    Row(
        "join_to_ready_first_ms",
        "join → chat-ready, 1st session ms",
        lambda d: d.first_join_to_ready_ms,
        lambda b: b.first_setup_ms,
    ),
    Row(
        "token_to_ready_p50_ms",
        "token request → chat-ready p50 ms",
        lambda d: d.token_to_ready_ms.p50,
    ),
    Row(
        "token_to_ready_p90_ms",
        "token request → chat-ready p90 ms",
        lambda d: d.token_to_ready_ms.p90,
    ),
    Row("token_request_p50_ms", "POST /api/tokens p50 ms", lambda d: d.token_request_ms.p50),
    Row("join_request_p50_ms", "POST /api/join p50 ms", lambda d: d.join_request_ms.p50),
    Row(
        "exchanging_keys_p50_ms",
        "join → exchanging-keys p50 ms (host / guest)",
        lambda d: _pair(d, "exchanging-keys"),
    ),
    Row(
        "connecting_p50_ms",
        "join → connecting p50 ms (host / guest)",
        lambda d: _pair(d, "connecting"),
    ),
    Row("ready_p50_ms", "join → ready p50 ms (host / guest)", lambda d: _pair(d, "ready")),
    Row("end_request_p50_ms", "POST /api/session/end p50 ms", lambda d: d.end_request_ms.p50),
    Row("end_to_ended_p50_ms", "end → both ended p50 ms", lambda d: d.end_to_ended_ms.p50),
    Row(
        "cpu_ms_per_session",
        "CPU ms per session, both processes",
        lambda d: d.cpu_ms_per_session,
        lambda b: b.cpu_ms_per_setup,
    ),
    Row(
        "messages",
        "messages delivered / sent",
        lambda d: f"{d.messages.delivered} / {d.messages.sent}" if d.messages else "n/a",
        lambda b: f"{b.delivered} / {b.sent}",
    ),
    Row(
        "message_p50_ms",
        "message one-way p50 ms",
        _messages(lambda m: m.latency_ms.p50),
        lambda b: b.latency_ms.p50,
        2,
    ),
    Row(
        "message_p90_ms",
        "message one-way p90 ms",
        _messages(lambda m: m.latency_ms.p90),
        lambda b: b.latency_ms.p90,
        2,
    ),
    Row(
        "message_p99_ms",
        "message one-way p99 ms",
        _messages(lambda m: m.latency_ms.p99),
        lambda b: b.latency_ms.p99,
        2,
    ),
    Row(
        "message_max_ms",
        "message one-way max ms",
        _messages(lambda m: m.latency_ms.max),
        lambda b: b.latency_ms.max,
        2,
    ),
    Row(
        "message_post_p50_ms",
        "POST /api/messages p50 ms",
        _messages(lambda m: m.post_ms.p50),
        digits=2,
    ),
    Row(
        "sender_max_lag_ms",
        "sender max lag ms",
        _messages(lambda m: m.sender_max_lag_ms),
        lambda b: b.sender_max_lag_ms,
        2,
        compare=False,
    ),
    Row(
        "cpu_us_per_message",
        "CPU µs per message, both processes",
        _messages(lambda m: m.cpu_us_per_message),
        lambda b: b.cpu_us_per_message,
        0,
    ),
    Row(
        "rss_idle_mib",
        "RSS idle MiB (bare: aiortc imported)",
        _rss(lambda r: r.rss_idle),
        _rss(lambda r: r.rss_idle),
    ),
    Row(
        "rss_first_up_mib",
        "RSS, 1st session up MiB",
        _rss(lambda r: r.rss_first_up),
        _rss(lambda r: r.rss_first_up),
    ),
    Row(
        "rss_first_ended_mib",
        "RSS after the 1st session MiB",
        _rss(lambda r: r.rss_first_ended),
        _rss(lambda r: r.rss_first_closed),
    ),
    Row(
        "rss_last_up_mib",
        "RSS, last session up, after messages MiB",
        _rss(lambda r: r.rss_last_up),
        _rss(lambda r: r.rss_last_up),
    ),
    Row(
        "rss_all_ended_mib",
        "RSS after all sessions MiB",
        _rss(lambda r: r.rss_all_ended),
        _rss(lambda r: r.rss_all_closed),
    ),
    Row("rss_peak_mib", "peak RSS MiB", _rss(lambda r: r.rss_peak), _rss(lambda r: r.rss_peak)),
]


def _show(value: float | str, digits: int) -> str:
    return value if isinstance(value, str) else num(value, digits)


def _ratio(row: Row, daemons: DaemonResult, bare: BareResult | None) -> float | None:
    if bare is None or row.bare is None or not row.compare:
        return None
    mine, theirs = row.daemons(daemons), row.bare(bare)
    if isinstance(mine, str) or isinstance(theirs, str):
        return None
    return ratio(mine, theirs)


def table(daemons: DaemonResult, bare: BareResult | None) -> str:
    lines = [("", "orbitd", "bare aiortc", "ratio")]
    for row in ROWS:
        theirs = _show(row.bare(bare), row.digits) if bare and row.bare else "-"
        factor = _ratio(row, daemons, bare)
        shown = "-" if factor is None else num(factor, 2)
        lines.append((row.label, _show(row.daemons(daemons), row.digits), theirs, shown))
    return render(lines)


def ratios(daemons: DaemonResult, bare: BareResult | None) -> dict[str, float]:
    """orbitd / bare aiortc for every row that has both figures."""
    out = {}
    for row in ROWS:
        factor = _ratio(row, daemons, bare)
        if factor is not None:
            out[row.key] = factor
    return out


def _verdict(goal: str, met: bool | None, why: str) -> dict[str, Any]:
    return {"goal": goal, "met": met, "why": why}


def targets(daemons: DaemonResult) -> list[dict[str, Any]]:
    ready = daemons.join_to_ready_ms
    out = [
        _verdict(
            f"join → chat-ready p50 < {TARGET_READY_MS:g} ms",
            ready.p50 < TARGET_READY_MS if ready.count else None,
            f"p50 {num(ready.p50)} ms over {ready.count} of {daemons.sessions_asked} sessions",
        )
    ]
    messages = daemons.messages
    goal = f"message one-way p50 < {TARGET_MESSAGE_P50_MS:g} ms"
    if messages is None or not messages.delivered:
        out.append(_verdict(goal, None, "no message was delivered"))
    else:
        lost = messages.sent - messages.delivered
        p50 = messages.latency_ms.p50
        why = f"p50 {num(p50, 2)} ms over {messages.delivered} messages"
        out.append(_verdict(goal, p50 < TARGET_MESSAGE_P50_MS and not lost, why + f", {lost} lost"))
    idle = daemons.rss_idle.max_mib
    out.append(
        _verdict(
            f"idle daemon RSS ≤ {TARGET_IDLE_RSS_MIB:g} MiB",
            idle <= TARGET_IDLE_RSS_MIB,
            f"the larger of the two: {idle:.1f} MiB (LAN off, UI logged in, no page loaded)",
        )
    )
    return out


def notes(daemons: DaemonResult, logs: dict[str, dict[str, Any]]) -> list[str]:
    """What the figures do not say by themselves."""
    out = []
    if daemons.timings and daemons.timings[0].index == 0:
        first = daemons.timings[0]
        out.append(
            f"the 1st session loads aiortc and cryptography in both daemons: its POST "
            f"/api/tokens took {num(first.token_request_ms)} ms and its POST /api/join "
            f"{num(first.join_request_ms)} ms (p50 over all sessions: "
            f"{num(daemons.token_request_ms.p50)} and {num(daemons.join_request_ms.p50)} ms)"
        )
    if daemons.failures:
        out.append(f"sessions failed: {daemons.failures}; the first: {daemons.first_failure}")
    if daemons.sas_mismatches:
        out.append(f"{daemons.sas_mismatches} sessions showed different SAS on the two sides")
    messages = daemons.messages
    if messages is not None and messages.send_errors:
        out.append(f"{messages.send_errors} POST /api/messages were refused")
    for name, summary in logs.items():
        levels = {k: v for k, v in summary.get("levels", {}).items() if k not in {"info", "debug"}}
        if levels:
            first = (summary.get("notable") or [""])[0]
            out.append(f"{name} logged {levels}; the first: {first[:200]}")
    return out
