"""GET /metrics in the Prometheus text format, counting what really happened."""

from __future__ import annotations

import asyncio
import json
import re

from tests.conftest import MakeRendezvous, active_session, issue


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
