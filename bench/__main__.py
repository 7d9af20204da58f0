"""`python -m bench [SUITE] [options]`: the benchmarks, each against a baseline measured
in the same run.

  python -m bench              every suite, one after the other (what `make bench` runs)
  python -m bench rendezvous   the rendezvous under load, against bare aiohttp
  python -m bench scale        pairs one instance holds; 2 and 4 instances on PostgreSQL
                               + Redis; token issues/s PostgreSQL against SQLite
                               (--scale-full: 10,000 and 20,000 pairs, several minutes)
  python -m bench orbitd       two daemons end to end, against a bare aiortc pair
  python -m bench files        a 1 GiB file daemon to daemon (MB/s, chat p99, RSS), against
                               bare aiortc data channels and Chromium to Chromium
  python -m bench ui           the UI's page weight in Chromium, against a 100 kB budget
  python -m bench video        video through two daemons, against a transcoding relay
                               and Chromium direct
  python -m bench lan          nearby daemons in network namespaces, against bare
                               zeroconf (needs root; reported as not measured without)
  python -m bench nat          sessions across two NATs and coturn in network namespaces:
                               connect time direct and relayed, recovery after outages,
                               against a bare aiortc pair (needs root; --nat-long: 20 outages)

Each suite prints its table and writes bench/results/<suite>-<UTC time>.json.
Missing a target is reported, not an error: the exit status is 0 whenever the
measurements ran, 1 when a suite could not run, 130 when interrupted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from . import (
    report,
    suite_files,
    suite_lan,
    suite_nat,
    suite_orbitd,
    suite_rendezvous,
    suite_scale,
    suite_ui,
    suite_video,
)
from .procs import raise_fd_limit
from .runner import Suite, run_suite, say

SUITES: dict[str, Suite] = {
    suite.name: suite
    for suite in (
        suite_rendezvous.SUITE,
        suite_scale.SUITE,
        suite_orbitd.SUITE,
        suite_files.SUITE,
        suite_ui.SUITE,
        suite_video.SUITE,
        suite_lan.SUITE,
        suite_nat.SUITE,
    )
}
ALL = "all"


class _Formatter(argparse.ArgumentDefaultsHelpFormatter):
    """Shows defaults, except where there is none to show (the help text says it)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        return action.help if action.default is None else super()._get_help_string(action)


def build_parser(chosen: list[Suite], prog: str) -> argparse.ArgumentParser:
    names = " | ".join([*SUITES, ALL])
    usage = f"{prog} [options]" if len(chosen) == 1 else f"{prog} [{names}] [options]"
    parser = argparse.ArgumentParser(
        prog=prog,
        usage=usage,
        description="Benchmarks, each against a baseline measured in the same run: "
        + "; ".join(f"{s.name}: {s.summary}" for s in SUITES.values())
        + f". With no suite named, every suite runs ({', '.join(SUITES)}).",
        formatter_class=_Formatter,
    )
    add = parser.add_argument
    add("--no-baseline", action="store_true", help="skip the baselines (no ratios)")
    add(
        "--server-log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="the rendezvous's --log-level (its log goes to a temporary file)",
    )
    defaults = ", ".join(f"{s.name} {s.default_timeout:g}" for s in chosen)
    add(
        "--timeout",
        type=float,
        default=None,
        help=f"give up a suite after this many seconds (default: {defaults})",
    )
    add("--results-dir", type=Path, default=report.RESULTS_DIR, help="where the JSON goes")
    for suite in chosen:
        suite.add_options(parser)
    return parser


def choose(argv: list[str]) -> tuple[list[Suite], list[str], str]:
    """(the suites to run, the options left, the program name for --help)."""
    if argv and argv[0] in SUITES:
        return [SUITES[argv[0]]], argv[1:], f"python -m bench {argv[0]}"
    if argv and argv[0] == ALL:
        return list(SUITES.values()), argv[1:], "python -m bench"
    return list(SUITES.values()), argv, "python -m bench"


def main(argv: list[str] | None = None) -> int:
    chosen, rest, prog = choose(list(sys.argv[1:] if argv is None else argv))
    parser = build_parser(chosen, prog)
    args = parser.parse_args(rest)
    if args.timeout is not None and args.timeout <= 0:
        parser.error("--timeout must be positive")
    for suite in chosen:
        suite.check(parser, args)
    raise_fd_limit()
    status = 0
    for suite in chosen:
        if len(chosen) > 1:
            say(f"suite {suite.name}")
        code = run_suite(suite, args)
        if code == 130:
            return code
        status = max(status, code)
    return status


if __name__ == "__main__":
    sys.exit(main())
