"""GET /metrics in the Prometheus text format, counting what really happened."""

from __future__ import annotations

import asyncio
import json
import re
import sqlite3
from datetime import datetime

import pytest

from rendezvous import operations
from rendezvous.keys import SERVICE
from rendezvous.session import State
from tests.conftest import MakeRendezvous, RendezvousClient, active_session, issue


def samples(text: str) -> dict[str, float]:
    found = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = line.rsplit(" ", 1)
            found[name] = float(value)
    return found


async def test_metrics_count_sessions_joins_limits_sockets_and_relays(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(token_rate_limit_per_hour=3)
    token = await active_session(rv)
    await issue(rv)
    await rv.post("/api/tokens/join", json={"token": token, "client_identity": "third"})
    await issue(rv)
    assert (await rv.post("/api/tokens/issue", json={})).status == 429

    async with (
        rv.ws_connect(f"/api/ws/{token}/host-identity") as host,
        rv.ws_connect(f"/api/ws/{token}/guest-identity") as guest,
    ):
        await host.receive()
        await host.send_str(json.dumps({"type": "sealed", "box": "AAAA"}))
        while (await asyncio.wait_for(guest.receive(), 2)).json()["type"] != "sealed":
            pass
        response = await rv.get("/metrics")
        assert response.status == 200
        assert response.content_type == "text/plain"
        text = await response.text()

    assert re.search(r"^# TYPE orbit_tokens_issued_total counter$", text, re.M)
    got = samples(text)
    assert got["orbit_tokens_issued_total"] == 3
    assert got['orbit_sessions{state="ACTIVE"}'] == 1
    assert got['orbit_sessions{state="CREATED"}'] == 2
    assert got['orbit_joins_total{result="host"}'] == 1
    assert got['orbit_joins_total{result="guest"}'] == 1
    assert got['orbit_joins_total{result="session_full"}'] == 1
    assert got['orbit_rate_limited_total{limit="token"}'] == 1
    assert got["orbit_open_sockets"] == 2
    assert got["orbit_relayed_messages_total"] == 1


async def test_each_app_counts_alone_and_reports_its_own_process_and_database(
    make_rendezvous: MakeRendezvous,
) -> None:
    one, two = await make_rendezvous(), await make_rendezvous()
    await issue(one)
    await issue(one)
    await issue(two)
    got_one = samples(await (await one.get("/metrics")).text())
    got_two = samples(await (await two.get("/metrics")).text())
    assert got_one["orbit_tokens_issued_total"] == 2  # no shared (global) registry
    assert got_two["orbit_tokens_issued_total"] == 1
    # Families a dashboard expects are there at zero before anything happened.
    assert got_two['orbit_joins_total{result="host"}'] == 0
    assert got_two['orbit_rate_limited_total{limit="token"}'] == 0
    # Per instance: the database's answer time and the process's own figures.
    assert got_one["orbit_store_probe_seconds_count"] == 1
    assert got_one["orbit_store_probe_failures_total"] == 0
    assert got_one["process_open_fds"] > 0
    assert got_one["process_resident_memory_bytes"] > 0


def _break_database(rv: RendezvousClient, monkeypatch: pytest.MonkeyPatch, *, hang: bool) -> None:
    async def count_by_state(now: datetime) -> dict[State, int]:
        if hang:
            await asyncio.Event().wait()
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(rv.app[SERVICE].store, "count_by_state", count_by_state)


@pytest.mark.parametrize("hang", [False, True], ids=["fails", "hangs"])
async def test_healthz_says_whether_the_database_answers(
    rv: RendezvousClient, monkeypatch: pytest.MonkeyPatch, hang: bool
) -> None:
    healthy = await rv.get("/healthz")
    assert healthy.status == 200
    body = await healthy.json()
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert body["redis"] is None  # not configured

    monkeypatch.setattr(operations, "PROBE_TIMEOUT", 0.05)
    _break_database(rv, monkeypatch, hang=hang)
    sick = await rv.get("/healthz")
    assert sick.status == 503
    body = await sick.json()
    assert body["status"] == "degraded" and body["database"]["ok"] is False
    scraped = await rv.get("/metrics")  # metrics still answer, and count the failure
    assert scraped.status == 200
    got = samples(await scraped.text())
    assert got["orbit_store_probe_failures_total"] == 2
    assert got["orbit_store_probe_seconds_count"] == 3
