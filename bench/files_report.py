"""The files benchmark's output: one column per way of moving the bytes, targets, ratios."""

from __future__ import annotations

import math
from typing import Any

from .files_bare import BulkResult
from .files_chromium import ChromiumBulk
from .files_daemons import DaemonFileResult
from .report import num, ratio, render

TARGET_MB_PER_S = 40.0
TARGET_CHAT_P99_MS = 50.0
WINDOW_MIB = 32.0
"""The issue's bound: at most 32 MiB of a daemon's memory per transfer."""


def _mib(size: int) -> str:
    return f"{size / 2**20:,.0f} MiB"


def table(
    daemons: DaemonFileResult | None,
    bare: BulkResult | None,
    large: BulkResult | None,
    chromium: ChromiumBulk | None,
) -> str:
    """Rows: bytes moved, MB/s, chat latency, memory; columns: the daemons, bare aiortc
    as shipped, bare aiortc as orbitd runs it (large packets), Chromium."""
    heads = ["", "orbitd → orbitd", "bare aiortc", "aiortc as orbitd", "Chromium"]
    dash = "-"
    bulks = [bare, large]

    def each(get_d: Any, get_b: Any, get_c: Any = None) -> list[str]:
        return [
            get_d(daemons) if daemons else dash,
            *(get_b(b) if b else dash for b in bulks),
            (get_c(chromium) if get_c else dash) if chromium else dash,
        ]

    lines = [
        heads,
        [
            "moved",
            *each(
                lambda d: _mib(d.size),
                lambda b: _mib(b.bytes_sent),
                lambda c: _mib(c.bytes_received),
            ),
        ],
        [
            "throughput MB/s",
            *each(lambda d: num(d.mb_per_s), lambda b: num(b.mb_per_s), lambda c: num(c.mb_per_s)),
        ],
        [
            "chat one-way p50 / p99 ms during it",
            *each(
                lambda d: f"{num(d.messages.latency_ms.p50)} / {num(d.messages.latency_ms.p99)}",
                lambda b: f"{num(b.chat_latency_ms.p50)} / {num(b.chat_latency_ms.p99)}",
            ),
        ],
        [
            "chat delivered / sent",
            *each(
                lambda d: f"{d.messages.delivered} / {d.messages.sent}",
                lambda b: f"{b.chat_delivered} / {b.chat_sent}",
            ),
        ],
        [
            "peak RSS MiB (sender / receiver)",
            *each(
                lambda d: (
                    f"{num(d.rss_peak_during.first_mib)} / {num(d.rss_peak_during.second_mib)}"
                ),
                lambda b: f"{num(b.rss_peak.first_mib)} / {num(b.rss_peak.second_mib)}",
            ),
        ],
        [
            "RSS before MiB (sender / receiver)",
            *each(
                lambda d: f"{num(d.rss_before.first_mib)} / {num(d.rss_before.second_mib)}",
                lambda b: dash,
            ),
        ],
        [
            "CPU s (sender / receiver)",
            *each(
                lambda d: f"{num(d.cpu_seconds.first_mib)} / {num(d.cpu_seconds.second_mib)}",
                lambda b: f"{num(b.cpu_seconds.first_mib)} / {num(b.cpu_seconds.second_mib)}",
            ),
        ],
    ]
    return render(lines)


def ratios(
    daemons: DaemonFileResult | None,
    bare: BulkResult | None,
    large: BulkResult | None,
    chromium: ChromiumBulk | None,
) -> dict[str, float]:
    """orbitd's throughput over each baseline's (measured in the same run)."""
    if daemons is None:
        return {}
    out = {}
    for key, base in (
        ("mb_per_s_vs_bare_aiortc", bare),
        ("mb_per_s_vs_aiortc_as_orbitd", large),
        ("mb_per_s_vs_chromium", chromium),
    ):
        if base is not None:
            out[key] = ratio(daemons.mb_per_s, base.mb_per_s)
    return out


def _verdict(goal: str, met: bool | None, why: str) -> dict[str, Any]:
    return {"goal": goal, "met": met, "why": why}


def targets(daemons: DaemonFileResult | None, bare: BulkResult | None) -> list[dict[str, Any]]:
    goal_rate = f"daemon to daemon ≥ {TARGET_MB_PER_S:g} MB/s and above bare aiortc"
    goal_chat = f"chat one-way p99 < {TARGET_CHAT_P99_MS:g} ms during the transfer"
    goal_rss = f"each daemon's RSS ≤ its RSS before + {WINDOW_MIB:g} MiB during the transfer"
    if daemons is None:
        why = "the daemons were not measured"
        return [_verdict(g, None, why) for g in (goal_rate, goal_chat, goal_rss)]
    rate = daemons.mb_per_s
    above = bare is None or rate > bare.mb_per_s
    versus = f" (bare aiortc {num(bare.mb_per_s)} MB/s)" if bare else " (no baseline)"
    out = [_verdict(goal_rate, rate >= TARGET_MB_PER_S and above, f"{num(rate)} MB/s" + versus)]
    chat = daemons.messages
    lost = chat.sent - chat.delivered
    p99 = chat.latency_ms.p99
    out.append(
        _verdict(
            goal_chat,
            None if not chat.delivered else p99 < TARGET_CHAT_P99_MS and not lost,
            f"p99 {num(p99)} ms over {chat.delivered} messages, {lost} lost",
        )
    )
    grown = [
        daemons.rss_peak_during.first_mib - daemons.rss_before.first_mib,
        daemons.rss_peak_during.second_mib - daemons.rss_before.second_mib,
    ]
    out.append(
        _verdict(
            goal_rss,
            max(grown) <= WINDOW_MIB if all(map(math.isfinite, grown)) else None,
            f"grew {num(grown[0])} MiB (sender), {num(grown[1])} MiB (receiver)",
        )
    )
    return out
