"""The benchmark's output: a table for people, a JSON file for later comparison."""

from __future__ import annotations

import dataclasses
import json
import math
import os
import platform
import resource
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib.metadata import version
from pathlib import Path
from typing import Any

import psutil

from .rendezvous_load import IssueResult, SessionResult

RESULTS_DIR = Path(__file__).resolve().parent / "results"
TARGET_PAIRS = 1000
TARGET_P99_MS = 20.0


@dataclass(frozen=True)
class Run:
    """Everything measured against one server: the rendezvous or the baseline."""

    issues: IssueResult
    sessions: SessionResult
    server_log: dict[str, Any]


# -- machine -----------------------------------------------------------------


def machine_info() -> dict[str, Any]:
    return {
        "nproc": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)),
        "cpu_model": _cpu_model(),
        "memory_mib": psutil.virtual_memory().total // (1024 * 1024),
        "platform": platform.platform(),
        "python": sys.version.split()[0],
        "python_implementation": platform.python_implementation(),
        "aiohttp": version("aiohttp"),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
    }


def _cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


# -- verdict and ratios ------------------------------------------------------


def target_verdict(sessions: SessionResult) -> dict[str, Any]:
    """Whether the run meets the goal: TARGET_PAIRS pairs open, relay p99 under TARGET_P99_MS."""
    goal = f"{TARGET_PAIRS:,} concurrent pairs with relay p99 < {TARGET_P99_MS:g} ms"
    p99 = sessions.latency_ms.p99
    if sessions.pairs_requested < TARGET_PAIRS:
        met, why = None, f"only {sessions.pairs_requested:,} pairs were asked for"
    elif sessions.pairs_open < TARGET_PAIRS:
        met, why = False, f"only {sessions.pairs_open:,} pairs could be opened"
    elif sessions.lost:
        met, why = False, f"{sessions.lost:,} probes were not delivered"
    else:
        met = p99 < TARGET_P99_MS
        why = f"p99 {p99:.2f} ms with {sessions.pairs_open:,} pairs open"
    return {"goal": goal, "pairs": TARGET_PAIRS, "p99_ms": TARGET_P99_MS, "met": met, "why": why}


def ratio(a: float, b: float) -> float:
    """a / b, or NaN when either is missing or b is zero."""
    return a / b if b and math.isfinite(a) and math.isfinite(b) else math.nan


RATIOS: dict[str, Callable[[Run], float]] = {
    "issues_per_second": lambda r: r.issues.per_second,
    "issue_latency_p50_ms": lambda r: r.issues.latency_ms.p50,
    "relay_latency_p50_ms": lambda r: r.sessions.latency_ms.p50,
    "relay_latency_p99_ms": lambda r: r.sessions.latency_ms.p99,
    "relay_latency_max_ms": lambda r: r.sessions.latency_ms.max,
    "rss_per_pair_kib": lambda r: r.sessions.rss_per_pair_kib,
    "server_cpu_percent_relaying": lambda r: r.sessions.relay.server_cpu_percent,
}


def ratios(rendezvous: Run, baseline: Run | None) -> dict[str, float]:
    """rendezvous / baseline for each figure in RATIOS (empty without a baseline)."""
    if baseline is None:
        return {}
    return {name: ratio(get(rendezvous), get(baseline)) for name, get in RATIOS.items()}


# -- table -------------------------------------------------------------------


def num(value: float, digits: int = 1) -> str:
    """A figure for the table: thousands separated, `n/a` when there is none."""
    return "n/a" if not math.isfinite(value) else f"{value:,.{digits}f}"


Row = tuple[str, Callable[[Run], str], Callable[[Run], float] | None]

ROWS: list[Row] = [
    ("token issues/s", lambda r: num(r.issues.per_second, 0), RATIOS["issues_per_second"]),
    (
        "issue latency p50 / p99 ms",
        lambda r: f"{num(r.issues.latency_ms.p50, 2)} / {num(r.issues.latency_ms.p99, 2)}",
        RATIOS["issue_latency_p50_ms"],
    ),
    ("issue errors", lambda r: str(r.issues.errors), None),
    ("server CPU % while issuing", lambda r: num(r.issues.usage.server_cpu_percent, 0), None),
    ("load-gen CPU % while issuing", lambda r: num(r.issues.usage.loadgen_cpu_percent, 0), None),
    (
        "pairs open / asked",
        lambda r: f"{r.sessions.pairs_open:,} / {r.sessions.pairs_requested:,}",
        None,
    ),
    ("sockets open (server's count)", lambda r: f"{r.sessions.server_open_sockets:,}", None),
    (
        "setup s (pairs/s)",
        lambda r: (
            f"{num(r.sessions.setup.seconds, 1)} "
            f"({num(r.sessions.pairs_open / r.sessions.setup.seconds, 0)}/s)"
        ),
        None,
    ),
    (
        "probes delivered / sent",
        lambda r: f"{r.sessions.delivered:,} / {r.sessions.sent:,}",
        None,
    ),
    (
        "relay latency p50 ms",
        lambda r: num(r.sessions.latency_ms.p50, 2),
        RATIOS["relay_latency_p50_ms"],
    ),
    ("relay latency p90 ms", lambda r: num(r.sessions.latency_ms.p90, 2), None),
    (
        "relay latency p99 ms",
        lambda r: num(r.sessions.latency_ms.p99, 2),
        RATIOS["relay_latency_p99_ms"],
    ),
    (
        "relay latency max ms",
        lambda r: num(r.sessions.latency_ms.max, 2),
        RATIOS["relay_latency_max_ms"],
    ),
    ("sender max lag ms", lambda r: num(r.sessions.sender_max_lag_ms, 2), None),
    (
        "server CPU % while relaying",
        lambda r: num(r.sessions.relay.server_cpu_percent, 0),
        RATIOS["server_cpu_percent_relaying"],
    ),
    (
        "load-gen CPU % while relaying",
        lambda r: num(r.sessions.relay.loadgen_cpu_percent, 0),
        None,
    ),
    ("server RSS idle MiB", lambda r: num(r.sessions.rss_idle_kib / 1024, 1), None),
    ("server RSS, pairs open MiB", lambda r: num(r.sessions.rss_open_kib / 1024, 1), None),
    (
        "RSS per open pair KiB",
        lambda r: num(r.sessions.rss_per_pair_kib, 1),
        RATIOS["rss_per_pair_kib"],
    ),
    ("error frames from server", lambda r: str(sum(r.sessions.server_errors.values())), None),
    ("unexpected socket closes", lambda r: str(r.sessions.unexpected_closes), None),
    ("close all sockets s", lambda r: num(r.sessions.teardown_seconds, 2), None),
]


def table(rendezvous: Run, baseline: Run | None) -> str:
    header = ("", "rendezvous", "baseline", "ratio")
    lines: list[tuple[str, ...]] = [header]
    for label, show, figure in ROWS:
        base = show(baseline) if baseline else "-"
        shown = "-"
        if baseline and figure is not None:
            shown = num(ratio(figure(rendezvous), figure(baseline)), 2)
        lines.append((label, show(rendezvous), base, shown))
    return render(lines)


def render(lines: Sequence[Sequence[str]]) -> str:
    """Rows of cells as a text table: the first row is the header, the first column is
    left-aligned, the others right-aligned."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    out = []
    for n, line in enumerate(lines):
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:], widths[1:], strict=True)
        ]
        out.append("  ".join(cells).rstrip())
        if n == 0:
            out.append("-" * len(out[0]))
    return "\n".join(out)


LOADGEN_BOUND_PERCENT = 90.0


def notes(rendezvous: Run, baseline: Run | None) -> list[str]:
    """Caveats the figures need: a saturated load generator measures itself."""
    out = []
    for run, name in ((rendezvous, "rendezvous"), (baseline, "baseline")):
        if run is None:
            continue
        busy = run.issues.usage.loadgen_cpu_percent
        if busy >= LOADGEN_BOUND_PERCENT:
            bound = "an upper" if name == "baseline" else "a lower"
            out.append(
                f"the load generator was CPU-bound ({busy:.0f}%) issuing against the {name}: "
                f"its issues/s is a floor, so the issue-rate ratio is {bound} bound"
            )
        busy = run.sessions.relay.loadgen_cpu_percent
        if busy >= LOADGEN_BOUND_PERCENT:
            out.append(
                f"the load generator was CPU-bound ({busy:.0f}%) relaying through the {name}: "
                "its latencies include the load generator's own queueing"
            )
    return out


def verdict_line(verdict: dict[str, Any]) -> str:
    state = {True: "MET", False: "NOT MET", None: "NOT ASSESSED"}[verdict["met"]]
    return f"target {verdict['goal']}: {state} ({verdict['why']})"


# -- JSON --------------------------------------------------------------------


def _clean(value: Any) -> Any:
    """Plain JSON: dataclasses as objects, NaN and infinities as null."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return _clean(dataclasses.asdict(value))
    if isinstance(value, dict):
        return {str(k): _clean(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_clean(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def write_json(
    document: dict[str, Any], directory: Path, started: datetime, suite: str = "rendezvous"
) -> Path:
    """`<directory>/<suite>-<UTC start time>.json`."""
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / f"{suite}-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
    path.write_text(json.dumps(_clean(document), indent=2, allow_nan=False) + "\n")
    return path
