"""bench scale: the load generator's worker pool, the limits it names, and the suite end to
end at a tiny size (real processes on 127.0.0.1)."""

from __future__ import annotations

import asyncio
import errno
import json
import resource
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from types import SimpleNamespace

import pytest
from aiohttp import ClientConnectorError
from aiohttp.client_reqrep import ConnectionKey

from bench import limits, scale_report
from bench.limits import limit_of
from bench.loadgen_pool import OpenOutcome, load_pool, shares
from bench.procs import REPO, Server, python_module, running
from bench.scale_measure import (
    Load,
    Pauses,
    fd_limit,
    gc_log_of,
    not_run,
    over_descriptors,
    stopped_by,
)
from bench.stats import Summary


@pytest.fixture
async def baseline(tmp_path: Path) -> AsyncIterator[Server]:
    argv = python_module("bench.baseline_server", "--port", "0")
    async with running("baseline", argv, tmp_path / "baseline.log") as server:
        yield server


def test_limit_of_names_the_limit_behind_a_failure() -> None:
    key = ConnectionKey("127.0.0.1", 1, False, True, None, None, None)
    emfile = OSError(errno.EMFILE, "Too many open files")
    assert limit_of(emfile) == limits.DESCRIPTORS
    assert limit_of(ClientConnectorError(key, emfile)) == limits.DESCRIPTORS
    assert limit_of(OSError(errno.EADDRNOTAVAIL, "Cannot assign requested address")) == "ports"
    assert limit_of(MemoryError()) == limits.MEMORY
    assert limit_of(TimeoutError()) is None
    assert limit_of(ConnectionResetError(errno.ECONNRESET, "reset")) is None


def test_pairs_are_shared_evenly_and_the_descriptor_limit_is_foreseen() -> None:
    assert shares(10, 3) == [4, 3, 3]
    assert sum(shares(20_000, 10)) == 20_000
    most = fd_limit()
    fits = (most - 200) // 2
    assert over_descriptors(fits, 1) == ""
    assert over_descriptors(fits * 2, 2) == ""
    why = over_descriptors(most // 2, 1)
    assert why.startswith("limit: descriptors: ") and f"{most:,}" in why


async def test_the_pool_relays_every_probe_across_its_workers(
    baseline: Server, tmp_path: Path
) -> None:
    async with load_pool(2, "baseline", [baseline.url], tmp_path) as pool:
        opened = await pool.open(30, 10)
        assert (opened.open, opened.failures, opened.limits) == (30, {}, {})
        relay = await pool.relay(60, 300.0, 64, 10.0)
        assert (relay.sent, relay.delivered, relay.lost, relay.misrouted) == (60, 60, 0, 0)
        assert relay.latency_ms.count == 60 and relay.client_open_sockets == 60
        assert stopped_by(opened, 30, relay, [baseline]) == ""
        assert await pool.close() >= 0


async def test_a_worker_out_of_descriptors_says_so(baseline: Server) -> None:
    """A worker allowed 64 descriptors, asked for 60 pairs (120 sockets)."""

    def few_descriptors() -> None:
        resource.setrlimit(resource.RLIMIT_NOFILE, (64, 64))

    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "bench.loadgen_worker", "--source-ip", "127.0.0.2",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        cwd=REPO, preexec_fn=few_descriptors,
    )  # fmt: skip
    cmd = {"op": "open", "kind": "baseline", "urls": [baseline.url], "first": 0, "count": 60,
           "concurrency": 10, "give_up_after": 10, "connect_timeout": 10.0}  # fmt: skip
    out, _ = await proc.communicate((json.dumps(cmd) + "\n" + '{"op": "close"}\n').encode())
    answer = json.loads(out.splitlines()[0])
    assert answer["open"] < 60 and answer["limits"].get(limits.DESCRIPTORS, 0) > 0
    outcome = OpenOutcome(answer["open"], answer["failures"], answer["first_failure"],
                          answer["limits"], answer["skipped"], 1.0)  # fmt: skip
    why = stopped_by(outcome, 60, None, [])
    assert why.startswith("limit: descriptors in the load generator"), why


def _load(instances: int, pairs: int, p99: float | None, why: str = "") -> Load:
    if p99 is None:
        return not_run("x", instances, pairs, why)
    base = not_run("x", instances, pairs, "")
    from bench.loadgen_pool import RelayOutcome

    relay = RelayOutcome(10, 0, 10, 0, 0, 0, {}, Summary(10, p99, p99, p99, p99, p99), 0.0, 20)
    return Load(**(vars(base) | {"held": True, "pairs_open": pairs, "relay": relay}))


def test_the_verdict_takes_the_big_loads_over_several_instances() -> None:
    limited = "limit: descriptors: 20,000 pairs on 2 instance(s) need ..."
    assert scale_report.verdict([_load(2, 1000, 1.0)])["met"] is None
    good = [_load(1, 10_000, None, limited), _load(2, 20_000, None, limited),
            _load(4, 10_000, 5.0), _load(4, 20_000, 12.0)]  # fmt: skip
    assert scale_report.verdict(good)["met"] is True
    assert scale_report.verdict([*good, _load(2, 10_000, 25.0)])["met"] is False
    lost = [*good, _load(2, 10_000, None, "3 of 10 probes not delivered")]
    assert scale_report.verdict(lost)["met"] is False


async def test_the_suite_runs_end_to_end_at_a_tiny_size(tmp_path: Path) -> None:
    argv = python_module(
        "bench", "scale", "--results-dir", str(tmp_path), "--scale-steps", "10,20",
        "--scale-loads", "20", "--scale-instances", "2", "--scale-probes", "40",
        "--scale-probe-rate", "200", "--scale-issues", "50", "--scale-no-profile",
        "--server-log-level", "warning",
    )  # fmt: skip
    proc = await asyncio.create_subprocess_exec(
        *argv, cwd=REPO, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    out, _ = await proc.communicate()
    assert proc.returncode == 0, out.decode()[-2000:]
    (result,) = tmp_path.glob("scale-*.json")
    document = json.loads(result.read_text())
    assert [s["held"] for s in document["steps"]] == [True, True]
    assert document["baseline"]["held"] is True
    assert {s["instances"] for s in document["shared"]} == {1, 2}
    assert document["issues"]["postgresql"]["issued"] == 50
    assert document["issues"]["sqlite"]["issued"] == 50
    figures = [row["figure"] for row in document["rows"]]
    assert "token issues/s, PostgreSQL" in figures
    assert "relay p99 ms, 1 instance, 20 pairs" in figures


def test_a_load_one_instance_cannot_hold_is_compared_with_the_largest_it_held() -> None:
    limited = "limit: descriptors: instance 0 holds 19,995 of the 20,000 descriptors"
    steps = [_load(1, 5_000, 2.0), _load(1, 9_500, 4.0), _load(1, 10_000, None, limited)]
    shared = [_load(1, 5_000, 3.0), _load(4, 20_000, 8.0)]
    table_rows = scale_report.rows(steps, None, shared, {})
    p99 = [r for r in table_rows if r["figure"] == "relay p99 ms, 4 inst. + Redis, 20,000 pairs"]
    assert [(r["baseline"], r["baseline_value"], r["ratio"]) for r in p99] == [
        ("1 inst. + Redis, 5,000 pairs", 3.0, 8.0 / 3.0),
        ("1 inst. in memory, 9,500 pairs", 4.0, 2.0),
    ]
    stopped = [r for r in table_rows if r["figure"] == "1 instance, 10,000 pairs"]
    assert stopped == [{"figure": "1 instance, 10,000 pairs", "text": limited}]


def test_pauses_count_the_full_collections_inside_the_relay_window(tmp_path: Path) -> None:
    logs = [tmp_path / "a-0.log", tmp_path / "a-1.log"]
    gc_log_of(logs[0]).write_text('{"t": 1.0, "ms": 300.0}\n{"t": 5.0, "ms": 40.0}\n')
    gc_log_of(logs[1]).write_text('{"t": 6.5, "ms": 90.0}\n')
    servers = [SimpleNamespace(log_path=log) for log in logs]
    pauses = Pauses.of(servers, 4.0, 7.0)  # type: ignore[arg-type]
    assert pauses == Pauses(relaying=2, relaying_max_ms=90.0, all=3, all_max_ms=300.0,
                            all_total_ms=430.0)  # fmt: skip
