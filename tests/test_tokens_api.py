"""Tokens, seats, status and end over real HTTP on 127.0.0.1."""

from __future__ import annotations

import re

import pytest

from tests.conftest import FakeClock, MakeRendezvous, RendezvousClient, issue, join


@pytest.fixture
def rendezvous_database(both_databases: str) -> str:
    """Every test here runs on SQLite and on PostgreSQL."""
    return both_databases


async def test_issue_returns_the_seed_shape(rv: RendezvousClient) -> None:
    response = await rv.post(
        "/api/tokens/issue",
        json={"validity_option": "week", "ttl_minutes": 120, "max_message_length": 2000},
    )
    assert response.status == 200
    body = await response.json()
    assert set(body) == {"token", "valid_until", "ttl_minutes", "max_message_length"}
    assert re.fullmatch(r"[A-Z0-9]{12}", body["token"])
    assert body["valid_until"] == "2026-01-27T10:00:00Z"
    assert (body["ttl_minutes"], body["max_message_length"]) == (120, 2000)


async def test_host_then_guest_then_reconnect_then_third_is_refused(rv: RendezvousClient) -> None:
    token = await issue(rv, ttl_minutes=30)
    host = await join(rv, token, "alice-device")
    assert host["role"] == "host"
    assert host["session_status"]["state"] == "HOST_RESERVED"
    assert host["session_status"]["timer"]["started_at"] is None

    guest = await join(rv, token, "bob-device")
    assert guest["role"] == "guest"
    status = guest["session_status"]
    assert status["state"] == "ACTIVE"
    assert status["timer"]["started_at"] == "2026-01-20T10:00:00Z"
    assert status["timer"]["ends_at"] == "2026-01-20T10:30:00Z"
    assert status["timer"]["remaining_seconds"] == 1800

    again = await join(rv, token, "alice-device")
    assert again["role"] == "host"

    third = await rv.post("/api/tokens/join", json={"token": token, "client_identity": "mallory"})
    assert third.status == 409
    assert (await third.json())["error"] == "session_full"


async def test_join_errors_are_clear(rv: RendezvousClient, clock: FakeClock) -> None:
    unknown = await rv.post(
        "/api/tokens/join", json={"token": "ZZZZZZZZZZZZ", "client_identity": "a"}
    )
    assert unknown.status == 404
    assert await unknown.json() == {
        "error": "token_not_found",
        "reason": "No session exists for this token.",
    }

    malformed = await rv.post(
        "/api/tokens/join", data=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert malformed.status == 400
    assert (await malformed.json())["error"] == "invalid_json"
    for path in ("/api/tokens/issue", "/api/tokens/join", "/api/reports"):
        nested = await rv.post(
            path, data=b"[" * 20_000, headers={"Content-Type": "application/json"}
        )
        assert nested.status == 400, path  # deep nesting inside the size cap: no RecursionError
        assert (await nested.json())["error"] == "invalid_json"

    token = await issue(rv, validity_option="day")
    no_identity = await rv.post("/api/tokens/join", json={"token": token})
    assert no_identity.status == 422
    assert (await no_identity.json())["error"] == "invalid_identity"

    clock.advance(days=1, seconds=1)
    expired = await rv.post("/api/tokens/join", json={"token": token, "client_identity": "a"})
    assert expired.status == 410
    assert (await expired.json())["error"] == "session_ended"


async def test_issue_rejects_bad_input_with_a_reason(rv: RendezvousClient) -> None:
    for body, code in (
        ({"validity_option": "forever"}, "invalid_validity_option"),
        ({"ttl_minutes": 0}, "invalid_ttl_minutes"),
        ({"max_message_length": 50}, "invalid_max_message_length"),
    ):
        response = await rv.post("/api/tokens/issue", json=body)
        assert response.status == 422
        payload = await response.json()
        assert payload["error"] == code and payload["reason"]
    wrong_type = await rv.post(
        "/api/tokens/issue", data=b"x=1", headers={"Content-Type": "text/plain"}
    )
    assert wrong_type.status == 415
    huge = await rv.post("/api/tokens/issue", json={"pad": "x" * 100_000})
    assert huge.status == 413
    assert (await huge.json())["error"] == "body_too_large"


async def test_status_of_each_state(rv: RendezvousClient, clock: FakeClock) -> None:
    token = await issue(rv, ttl_minutes=10)
    states = [(await (await rv.get(f"/api/session/{token}/status")).json())["state"]]
    await join(rv, token, "h")
    states.append((await (await rv.get(f"/api/session/{token}/status")).json())["state"])
    await join(rv, token, "g")
    clock.advance(minutes=4)
    active = await (await rv.get(f"/api/session/{token}/status")).json()
    states.append(active["state"])
    assert active["timer"]["remaining_seconds"] == 360
    assert active["participants"]["host"]["joined_at"] == "2026-01-20T10:00:00Z"
    clock.advance(minutes=6)
    ended = await (await rv.get(f"/api/session/{token}/status")).json()
    states.append(ended["state"])
    assert ended["end_reason"] == "timer_expired"
    assert ended["timer"]["remaining_seconds"] == 0
    assert states == ["CREATED", "HOST_RESERVED", "ACTIVE", "ENDED"]
    missing = await rv.get("/api/session/NOSUCHTOKEN1/status")
    assert missing.status == 404


async def test_end_by_participant_only(rv: RendezvousClient) -> None:
    token = await issue(rv)
    await join(rv, token, "h")
    await join(rv, token, "g")
    stranger = await rv.post(f"/api/session/{token}/end", json={"client_identity": "x"})
    assert stranger.status == 403
    assert (await stranger.json())["error"] == "not_a_participant"
    ended = await rv.post(f"/api/session/{token}/end", json={"client_identity": "g"})
    assert ended.status == 200
    assert await ended.json() == {"message": "Session ended", "ended_at": "2026-01-20T10:00:00Z"}
    twice = await rv.post(f"/api/session/{token}/end", json={"client_identity": "h"})
    assert twice.status == 410
    rejoin = await rv.post("/api/tokens/join", json={"token": token, "client_identity": "h"})
    assert rejoin.status == 410
    unknown = await rv.post("/api/session/ZZZZZZZZZZZZ/end", json={"client_identity": "h"})
    assert unknown.status == 404


async def test_unknown_path_and_method_get_json_errors(rv: RendezvousClient) -> None:
    missing = await rv.get("/api/nothing-here")
    assert missing.status == 404
    assert (await missing.json())["error"] == "not_found"
    wrong = await rv.get("/api/tokens/issue")
    assert wrong.status == 405
    assert "POST" in wrong.headers["Allow"]


async def test_health_and_security_headers(rv: RendezvousClient) -> None:
    response = await rv.get("/healthz")
    assert response.status == 200
    body = await response.json()
    assert body["status"] == "ok" and body["database"]["ok"] is True
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["X-Frame-Options"] == "DENY"


async def test_cors_allows_only_listed_origins(make_rendezvous: MakeRendezvous) -> None:
    rv = await make_rendezvous(cors_origins="https://app.example")
    ok = await rv.get("/healthz", headers={"Origin": "https://app.example"})
    assert ok.headers["Access-Control-Allow-Origin"] == "https://app.example"
    assert "Access-Control-Allow-Credentials" not in ok.headers
    other = await rv.get("/healthz", headers={"Origin": "https://evil.example"})
    assert "Access-Control-Allow-Origin" not in other.headers
    preflight = await rv.options(
        "/api/tokens/issue",
        headers={"Origin": "https://app.example", "Access-Control-Request-Method": "POST"},
    )
    assert preflight.status == 204
    assert "POST" in preflight.headers["Access-Control-Allow-Methods"]
    refused = await rv.options(
        "/api/tokens/issue",
        headers={"Origin": "https://evil.example", "Access-Control-Request-Method": "POST"},
    )
    assert refused.status == 403
