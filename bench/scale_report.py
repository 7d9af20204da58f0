"""The scale suite's output: the step table, one row per figure with its baseline and the
ratio (also in the JSON), notes and the verdict."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from .rendezvous_load import IssueResult
from .report import num, ratio, render
from .scale_measure import Load, Pauses

TARGET_P99_MS = 20.0
TARGET_PAIRS = 10_000
Row = dict[str, Any]
WRAPPERS = ("rendezvous/http.py", "orbitcore/errors.py", "signaling_socket_seed_form", "(_open)")
"""Functions that only wrap a request's handler: left out of the profile note."""


def _p(load: Load | None, which: str) -> float:
    if load is None or load.relay is None:
        return math.nan
    return float(getattr(load.relay.latency_ms, which))


def brief(load: Load) -> str:
    state = "held" if load.held else f"NOT held ({load.stopped_by})"
    return (
        f"{load.label}: {load.pairs_open:,}/{load.pairs_requested:,} pairs, relay p50 "
        f"{num(_p(load, 'p50'), 2)} ms p99 {num(_p(load, 'p99'), 2)} ms, "
        f"RSS/pair {num(load.rss_per_pair_kib, 1)} KiB: {state}"
    )


def steps_table(steps: Sequence[Load], baseline: Load | None) -> str:
    header = (
        "load",
        "pairs open",
        "p50 ms",
        "p99 ms",
        "max ms",
        "RSS/pair KiB",
        "server fds",
        "full GCs relaying (max ms) / all",
        "loop stalls relaying (max ms)",
        "server CPU %",
        "load-gen CPU %",
        "held",
    )
    lines: list[tuple[str, ...]] = [header]
    for load in [*steps, *([baseline] if baseline else [])]:
        lines.append(
            (
                f"{load.label}, {load.pairs_requested:,} pairs",
                f"{load.pairs_open:,}",
                num(_p(load, "p50"), 2),
                num(_p(load, "p99"), 2),
                num(_p(load, "max"), 1),
                num(load.rss_per_pair_kib, 1),
                "+".join(f"{n:,}" for n in load.server_fds) or "-",
                _pauses(load),
                "-" if load.gc is None else _stalls(load.gc),
                num(load.server_cpu_percent, 0),
                num(load.loadgen_cpu_percent, 0),
                "yes" if load.held else "NO",
            )
        )
    out = render(lines)
    stopped = [s for s in steps if not s.held]
    for load in stopped:
        out += f"\n{load.pairs_requested:,} pairs on 1 instance: {load.stopped_by}"
    return out


def _pauses(load: Load) -> str:
    if load.gc is None:
        return "-"
    gc = load.gc
    return f"{gc.relaying} ({num(gc.relaying_max_ms, 0)}) / {gc.all} ({num(gc.all_max_ms, 0)})"


def _stalls(gc: Pauses) -> str:
    return f"{gc.stalls_relaying} ({num(gc.stalls_relaying_max_ms, 0)})"


def _row(figure: str, value: float, base: float | None, base_name: str, digits: int) -> Row:
    return {
        "figure": figure,
        "value": round(value, digits) if math.isfinite(value) else None,
        "baseline": base_name,
        "baseline_value": round(base, digits) if base is not None and math.isfinite(base) else None,
        "ratio": ratio(value, base) if base is not None else math.nan,
        "digits": digits,
    }


def _text(figure: str, text: str) -> Row:
    return {"figure": figure, "text": text}


def _find(loads: Sequence[Load], pairs: int, count: int | None = None) -> Load | None:
    for load in loads:
        if load.pairs_requested == pairs and (count is None or load.instances == count):
            return load if load.held else None
    return None


def _nearest(
    loads: Sequence[Load], pairs: int, name: str, count: int | None = None
) -> tuple[Load | None, str]:
    """The load of `pairs` pairs held, else the largest one held below it (one instance
    cannot hold 10,000 pairs here: the descriptor limit), with its name for the table."""
    same = _find(loads, pairs, count)
    if same is not None:
        return same, name
    below = [
        load
        for load in loads
        if load.held and load.pairs_requested < pairs and (count is None or load.instances == count)
    ]
    if not below:
        return None, name
    top = max(below, key=lambda load: load.pairs_requested)
    return top, f"{name}, {top.pairs_requested:,} pairs"


def rows(
    steps: Sequence[Load],
    baseline: Load | None,
    shared: Sequence[Load],
    issues: dict[str, IssueResult],
) -> list[Row]:
    out: list[Row] = []
    held = [s for s in steps if s.held]
    if held:
        top = held[-1]
        n = f"{top.pairs_requested:,}"
        out.append(_row("pairs held, 1 instance in memory", top.pairs_requested, None, "", 0))
        bare = baseline if baseline and baseline.held else None
        for which in ("p50", "p99"):
            out.append(
                _row(
                    f"relay {which} ms, 1 instance, {n} pairs",
                    _p(top, which),
                    _p(bare, which) if bare else None,
                    "bare aiohttp",
                    2,
                )
            )
        out.append(
            _row(
                f"RSS per pair KiB, 1 instance, {n} pairs",
                top.rss_per_pair_kib,
                bare.rss_per_pair_kib if bare else None,
                "bare aiohttp",
                1,
            )
        )
    for load in steps:
        if not load.held:
            out.append(_text(f"1 instance, {load.pairs_requested:,} pairs", load.stopped_by))
    for load in shared:
        where = f"{load.instances} inst. + Redis, {load.pairs_requested:,} pairs"
        if not load.held:
            out.append(_text(where, load.stopped_by))
            continue
        if load.instances == 1:
            continue
        one, one_name = _nearest(shared, load.pairs_requested, "1 inst. + Redis", 1)
        memory, memory_name = _nearest(steps, load.pairs_requested, "1 inst. in memory")
        for which in ("p50", "p99"):
            for base, name in ((one, one_name), (memory, memory_name)):
                out.append(
                    _row(
                        f"relay {which} ms, {where}",
                        _p(load, which),
                        _p(base, which) if base else None,
                        name,
                        2,
                    )
                )
        out.append(
            _row(
                f"RSS per pair KiB, {where}",
                load.rss_per_pair_kib,
                memory.rss_per_pair_kib if memory else None,
                memory_name,
                1,
            )
        )
    pg, lite = issues.get("postgresql"), issues.get("sqlite")
    if pg is not None:
        out.append(
            _row(
                "token issues/s, PostgreSQL",
                pg.per_second,
                lite.per_second if lite else None,
                "SQLite",
                0,
            )
        )
        out.append(
            _row(
                "issue latency p50 ms, PostgreSQL",
                pg.latency_ms.p50,
                lite.latency_ms.p50 if lite else None,
                "SQLite",
                2,
            )
        )
    return out


def rows_table(table_rows: Sequence[Row]) -> str:
    lines: list[tuple[str, ...]] = [("figure", "value", "baseline", "against", "ratio")]
    for row in table_rows:
        if "text" in row:
            lines.append((row["figure"], "stopped", "", "", ""))
            continue
        digits = int(row["digits"])
        value = math.nan if row["value"] is None else float(row["value"])
        base = row["baseline_value"]
        shown_base = "-" if not row["baseline"] else num(math.nan if base is None else base, digits)
        lines.append(
            (
                row["figure"],
                num(value, digits),
                shown_base,
                row["baseline"] or "-",
                num(row["ratio"], 2) if row["baseline"] else "-",
            )
        )
    out = render(lines)
    for row in table_rows:
        if "text" in row:
            out += f"\n{row['figure']}: {row['text']}"
    return out


def verdict(shared: Sequence[Load]) -> dict[str, Any]:
    """Relay p99 under TARGET_P99_MS with TARGET_PAIRS pairs or more over several instances
    (loads that no process here can hold, by the descriptor limit, are left out)."""
    goal = (
        f"relay p99 < {TARGET_P99_MS:g} ms with {TARGET_PAIRS:,}+ pairs over several "
        "instances sharing Redis"
    )
    big = [
        s
        for s in shared
        if s.instances > 1
        and s.pairs_requested >= TARGET_PAIRS
        and not s.stopped_by.startswith("limit: descriptors: ")
    ]
    if not big:
        met, why = None, f"no load of {TARGET_PAIRS:,}+ pairs over several instances (--scale-full)"
    else:
        failed = [s for s in big if not s.held or not _p(s, "p99") < TARGET_P99_MS]
        met = not failed
        worst = max(big, key=lambda s: _p(s, "p99") if s.held else math.inf)
        why = brief(failed[0] if failed else worst)
    return {"goal": goal, "p99_ms": TARGET_P99_MS, "pairs": TARGET_PAIRS, "met": met, "why": why}


def notes(
    steps: Sequence[Load], shared: Sequence[Load], profiles: dict[str, dict[str, Any]]
) -> list[str]:
    out = []
    for load in [*steps, *shared]:
        if load.relay is not None and load.relay.sender_max_lag_ms > 50:
            out.append(
                f"{load.label}, {load.pairs_requested:,} pairs: the load generator fell "
                f"{load.relay.sender_max_lag_ms:,.0f} ms behind its schedule (the machine "
                "is saturated; the latencies include its queueing)"
            )
    for load in [*steps, *shared]:
        if load.gc is not None and load.gc.all:
            out.append(
                f"{load.label}, {load.pairs_requested:,} pairs: {load.gc.all} full garbage "
                f"collections since start, the longest {load.gc.all_max_ms:,.0f} ms "
                f"({load.gc.relaying} while relaying, longest {load.gc.relaying_max_ms:,.0f} ms); "
                "each one stalls every socket of its instance (see gc_thaw_minutes)"
            )
    for name, profile in profiles.items():
        if not profile:
            continue
        shown = ", ".join(f"{e['function']} {e['own_percent']}%" for e in profile["own"][:4])
        out.append(f"profile {name}, {profile['busy_seconds']} s busy; own time: {shown}")
        inner = [
            e
            for e in profile["project_cumulative"]
            if not any(w in e["function"] for w in WRAPPERS)
        ]
        shown = ", ".join(f"{e['function']} {e['cumulative_percent']}%" for e in inner[:5])
        out.append(f"profile {name}, the project's functions (cumulative): {shown}")
    return out
