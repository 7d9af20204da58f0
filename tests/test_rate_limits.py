"""Per-IP sliding-window limits, their headers, and who counts as the client."""

from __future__ import annotations

import tracemalloc

from aiohttp import WSMsgType

from orbitcore.ratelimit import RateLimiter
from rendezvous.limits import MemoryLimits
from rendezvous.service import Rendezvous
from tests.conftest import FakeClock, MakeRendezvous, issue, join, service


def _table(svc: Rendezvous) -> RateLimiter:
    """The in-memory limiter's table (the default: no Redis)."""
    assert isinstance(svc.limits, MemoryLimits)
    return svc.limits.limiter


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
    assert len(_table(svc)) == 1
    clock.advance(hours=1, seconds=1)
    result = await svc.sweep()
    assert result["rate_limit_entries_forgotten"] == 1
    assert len(_table(svc)) == 0


async def test_ending_a_session_is_no_oracle_refusals_count(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(join_rate_limit_per_hour=5)
    token = await issue(rv)
    await join(rv, token, "host-identity")  # a join counts: one
    miss = await rv.post("/api/session/AAAAAAAAAAAA/end", json={"client_identity": "x"})
    assert miss.status == 404
    stranger = await rv.post(f"/api/session/{token}/end", json={"client_identity": "x"})
    assert stranger.status == 403
    for _ in range(2):
        assert (await rv.post(f"/api/session/{token}/end", json={})).status == 422
    # With four refusals the limit is reached: refused before anyone looks for the token.
    for path in (f"/api/session/{token}/end", "/api/session/BBBBBBBBBBBB/end"):
        blocked = await rv.post(path, json={"client_identity": "host-identity"})
        assert blocked.status == 429 and "Retry-After" in blocked.headers
    assert (await rv.get(f"/api/session/{token}/status")).status == 429


async def test_a_participant_ending_its_session_is_not_counted(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(join_rate_limit_per_hour=3)
    token = await issue(rv)
    await join(rv, token, "host-identity")
    await join(rv, token, "guest-identity")
    ended = await rv.post(f"/api/session/{token}/end", json={"client_identity": "host-identity"})
    assert ended.status == 200
    assert (await rv.get(f"/api/session/{token}/status")).status == 200  # 2 joins, no more
    await rv.get("/api/session/AAAAAAAAAAAA/status")  # a miss: three
    assert (await rv.get(f"/api/session/{token}/status")).status == 429


def _from(address: str) -> dict[str, str]:
    return {"X-Forwarded-For": address}


async def test_ipv6_clients_count_by_their_64(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(token_rate_limit_per_hour=2, trusted_proxies="127.0.0.0/8")
    for address in ("2001:db8:1:2::1", "2001:db8:1:2:ffff:0:0:7"):
        assert (await rv.post("/api/tokens/issue", json={}, headers=_from(address))).status == 200
    rotated = await rv.post("/api/tokens/issue", json={}, headers=_from("2001:db8:1:2::99"))
    assert rotated.status == 429  # a new address in the same /64 is the same client
    other = await rv.post("/api/tokens/issue", json={}, headers=_from("2001:db8:1:3::1"))
    assert other.status == 200


async def test_the_ipv6_prefix_is_a_setting(make_rendezvous: MakeRendezvous) -> None:
    per_address = await make_rendezvous(
        token_rate_limit_per_hour=1, trusted_proxies="127.0.0.0/8", ipv6_prefix_length=128
    )
    for address in ("2001:db8:1:2::1", "2001:db8:1:2::2"):
        issued = await per_address.post("/api/tokens/issue", json={}, headers=_from(address))
        assert issued.status == 200
    per_56 = await make_rendezvous(
        token_rate_limit_per_hour=1, trusted_proxies="127.0.0.0/8", ipv6_prefix_length=56
    )
    assert (
        await per_56.post("/api/tokens/issue", json={}, headers=_from("2001:db8:1:200::1"))
    ).status == 200
    assert (
        await per_56.post("/api/tokens/issue", json={}, headers=_from("2001:db8:1:2ff::1"))
    ).status == 429


async def test_looking_makes_no_entry_and_a_rotation_flood_cannot_grow_the_table(
    make_rendezvous: MakeRendezvous,
) -> None:
    rv = await make_rendezvous(trusted_proxies="127.0.0.0/8", rate_limit_keys_max=100)
    token = await issue(rv)
    svc = service(rv)
    assert len(_table(svc)) == 1  # the issue
    for n in range(300):  # status look-ups of a real token only look: no entry each
        looked = await rv.get(f"/api/session/{token}/status", headers=_from(f"2001:db8:{n:x}::1"))
        assert looked.status == 200
    assert len(_table(svc)) == 1
    for n in range(300):  # misses count, from 300 different /64s: the table stays at its cap
        missed = await rv.get(
            "/api/session/AAAAAAAAAAAA/status", headers=_from(f"2001:db8:{n:x}::1")
        )
        assert missed.status == 404
    assert len(_table(svc)) == 100


async def test_a_flood_of_100000_rotated_addresses_keeps_memory_bounded(
    make_rendezvous: MakeRendezvous, clock: FakeClock
) -> None:
    cap = 10_000
    svc = service(await make_rendezvous(rate_limit_keys_max=cap))
    config = svc.config
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        for n in range(100_000):  # each from another /64, all within the hour
            await svc.rate("join", f"2001:db8:{n >> 16:x}:{n & 0xFFFF:x}::1")
            await svc.rate("join", f"2001:db8:ffff:{n & 0xFFFF:x}::2", record=False)  # peeks
            if n % 100 == 0:
                clock.advance(seconds=1)
        grown = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    assert len(_table(svc)) == cap
    # About 0.4 kB an entry: the 10,000 kept take ~4 MB; 100,000 would take ~40.
    assert grown < 100_000 * 100, grown
    # A rotation inside one /64 is one client: refused once its hour's joins are spent.
    allowed = [(await svc.rate("join", f"2001:db8:aaaa:1::{n:x}")).allowed for n in range(100)]
    assert allowed.count(True) == config.join_rate_limit_per_hour
