"""Per-IP sliding-window limits, their headers, and who counts as the client."""

from __future__ import annotations

from aiohttp import WSMsgType

from tests.conftest import FakeClock, MakeRendezvous, issue, service


async def test_issue_limit_headers_and_429(
    make_rendezvous: MakeRendezvous, clock: FakeClock
) -> None:
    rv = await make_rendezvous(token_rate_limit_per_hour=3)
    remaining = []
    for _ in range(3):
        response = await rv.post("/api/tokens/issue", json={})
        assert response.status == 200
        assert response.headers["X-RateLimit-Limit"] == "3"
        remaining.append(response.headers["X-RateLimit-Remaining"])
        clock.advance(minutes=10)
    assert remaining == ["2", "1", "0"]
    first_hit = clock.current.timestamp() - 30 * 60
    over = await rv.post("/api/tokens/issue", json={})
    assert over.status == 429
    assert (await over.json())["error"] == "rate_limited"
    assert over.headers["X-RateLimit-Remaining"] == "0"
    assert int(over.headers["X-RateLimit-Reset"]) == int(first_hit + 3600)
    assert over.headers["Retry-After"] == str(30 * 60)
    # The window slides: when the first hit is an hour old, one slot is free again.
    clock.advance(minutes=30)
    again = await rv.post("/api/tokens/issue", json={})
    assert again.status == 200
    assert again.headers["X-RateLimit-Remaining"] == "0"


async def test_failed_joins_count_so_tokens_cannot_be_scanned(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(join_rate_limit_per_hour=5)
    token = await issue(rv)
    for guess in range(5):
        miss = await rv.post(
            "/api/tokens/join", json={"token": f"GUESS{guess:07d}", "client_identity": "x"}
        )
        assert miss.status == 404
    blocked = await rv.post("/api/tokens/join", json={"token": token, "client_identity": "x"})
    assert blocked.status == 429
    status = await rv.get(f"/api/session/{token}/status")
    assert status.status == 429
    async with rv.ws_connect(f"/api/ws/{token}/x") as ws:
        msg = await ws.receive()
        assert msg.type is WSMsgType.CLOSE and msg.data == 4029


async def test_status_misses_count_but_hits_do_not(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(join_rate_limit_per_hour=3)
    token = await issue(rv)
    for _ in range(10):
        assert (await rv.get(f"/api/session/{token}/status")).status == 200
    for _ in range(3):
        assert (await rv.get("/api/session/AAAAAAAAAAAA/status")).status == 404
    assert (await rv.get(f"/api/session/{token}/status")).status == 429


async def test_forwarded_for_is_believed_only_from_trusted_proxies(
    make_rendezvous: MakeRendezvous,
) -> None:
    untrusted = await make_rendezvous(token_rate_limit_per_hour=1)
    assert (
        await untrusted.post(
            "/api/tokens/issue", json={}, headers={"X-Forwarded-For": "203.0.113.1"}
        )
    ).status == 200
    # A spoofed header from an untrusted peer changes nothing: same client, limit reached.
    spoofed = await untrusted.post(
        "/api/tokens/issue", json={}, headers={"X-Forwarded-For": "203.0.113.2"}
    )
    assert spoofed.status == 429

    behind_proxy = await make_rendezvous(token_rate_limit_per_hour=1, trusted_proxies="127.0.0.0/8")
    for client in ("203.0.113.1", "203.0.113.2"):
        response = await behind_proxy.post(
            "/api/tokens/issue", json={}, headers={"X-Forwarded-For": f"{client}, 127.0.0.1"}
        )
        assert response.status == 200, client
    repeat = await behind_proxy.post(
        "/api/tokens/issue", json={}, headers={"X-Forwarded-For": "203.0.113.1"}
    )
    assert repeat.status == 429


async def test_sweep_forgets_idle_rate_limit_state(
    make_rendezvous: MakeRendezvous, clock: FakeClock
) -> None:
    rv = await make_rendezvous()
    await issue(rv)
    svc = service(rv)
    assert len(svc.limiter) == 1
    clock.advance(hours=1, seconds=1)
    result = await svc.sweep()
    assert result["rate_limit_entries_forgotten"] == 1
    assert len(svc.limiter) == 0
