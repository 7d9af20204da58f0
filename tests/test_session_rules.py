"""The session rules with no I/O: feed inputs with `now`, record what comes out."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from rendezvous import session as rules
from rendezvous.session import EndReason, Role, SessionError, State

T0 = datetime(2026, 1, 20, 10, 0, tzinfo=UTC)


def fresh(ttl: int = 5) -> rules.Session:
    return rules.issue("ABCD1234WXYZ", T0, timedelta(days=1), ttl, 2000)


def test_seats_fill_in_order_and_a_third_is_refused() -> None:
    record: list[tuple[str, str, bool, str]] = []
    s = fresh()
    for who, minute in (("a", 1), ("a", 2), ("b", 3), ("a", 4), ("b", 5)):
        s, role, again = rules.join(s, who, T0 + timedelta(minutes=minute))
        record.append((who, role.value, again, s.state(T0 + timedelta(minutes=minute)).value))
    assert record == [
        ("a", "host", False, "HOST_RESERVED"),
        ("a", "host", True, "HOST_RESERVED"),
        ("b", "guest", False, "ACTIVE"),
        ("a", "host", True, "ACTIVE"),
        ("b", "guest", True, "ACTIVE"),
    ]
    assert s.activated_at == T0 + timedelta(minutes=3)
    with pytest.raises(SessionError) as refused:
        rules.join(s, "c", T0 + timedelta(minutes=6))
    assert (refused.value.status, refused.value.code) == (409, "session_full")


def test_countdown_starts_at_guest_join_and_ends_the_session() -> None:
    s, _, _ = rules.join(fresh(ttl=5), "a", T0)
    assert s.remaining_seconds(T0 + timedelta(hours=3)) == 300  # not started: full TTL
    s, _, _ = rules.join(s, "b", T0 + timedelta(minutes=10))
    assert s.remaining_seconds(T0 + timedelta(minutes=12)) == 180
    at_end = T0 + timedelta(minutes=15)
    assert s.state(at_end - timedelta(seconds=1)) is State.ACTIVE
    assert s.state(at_end) is State.ENDED
    ended = rules.end_if_due(s, at_end + timedelta(minutes=1))
    assert (ended.ended_at, ended.end_reason) == (at_end, EndReason.TIMER_EXPIRED)
    with pytest.raises(SessionError) as gone:
        rules.join(s, "a", at_end)
    assert gone.value.status == 410


def test_validity_window_closes_unused_tokens_but_not_active_sessions() -> None:
    late = T0 + timedelta(days=1, seconds=1)
    with pytest.raises(SessionError) as expired:
        rules.join(fresh(), "a", late)
    assert (expired.value.status, expired.value.code) == (410, "session_ended")
    assert rules.end_if_due(fresh(), late).end_reason is EndReason.TOKEN_EXPIRED
    # A session that started near the end of its window may run its full TTL past it.
    s, _, _ = rules.join(fresh(ttl=60), "a", T0)
    s, _, _ = rules.join(s, "b", T0 + timedelta(hours=23, minutes=59))
    s2, role, again = rules.join(s, "a", late)
    assert (role, again, s2.state(late)) == (Role.HOST, True, State.ACTIVE)


def test_only_participants_end_and_only_once() -> None:
    s, _, _ = rules.join(fresh(), "a", T0)
    with pytest.raises(SessionError) as stranger:
        rules.end(s, "z", T0)
    assert stranger.value.status == 403
    ended = rules.end(s, "a", T0 + timedelta(minutes=1))
    assert ended.state(T0) is State.ENDED and ended.end_reason is EndReason.MANUALLY_ENDED
    with pytest.raises(SessionError) as again:
        rules.end(ended, "a", T0 + timedelta(minutes=2))
    assert again.value.status == 410


def test_status_hides_identities_behind_public_ids() -> None:
    s, _, _ = rules.join(fresh(), "secret-host-identity", T0)
    status = s.status(T0, frozenset({Role.HOST}))
    host = status["participants"]["host"]
    assert host["id"] == rules.public_id("secret-host-identity")
    assert "secret-host-identity" not in str(status)
    assert host["connected"] is True
    assert status["participants"]["guest"] is None
    assert status["timer"] == {
        "started_at": None,
        "ttl_minutes": 5,
        "ends_at": None,
        "remaining_seconds": 300,
    }


def test_tokens_are_twelve_characters_of_a_to_z_and_digits() -> None:
    tokens = {rules.new_token() for _ in range(200)}
    assert len(tokens) == 200
    assert all(rules.is_token(t) for t in tokens)
    assert not rules.is_token("abcd1234wxyz") and not rules.is_token("ABCD1234WXY")


@pytest.mark.parametrize(
    ("body", "code"),
    [
        ({"validity_option": "decade"}, "invalid_validity_option"),
        ({"ttl_minutes": 0}, "invalid_ttl_minutes"),
        ({"ttl_minutes": 10001}, "invalid_ttl_minutes"),
        ({"ttl_minutes": "60"}, "invalid_ttl_minutes"),
        ({"ttl_minutes": True}, "invalid_ttl_minutes"),
        ({"max_message_length": 199}, "invalid_max_message_length"),
        ({"max_message_length": 16001}, "invalid_max_message_length"),
        ([], "invalid_body"),
    ],
)
def test_issue_validation(body: object, code: str) -> None:
    with pytest.raises(SessionError) as refused:
        rules.validate_issue(body)
    assert (refused.value.status, refused.value.code) == (422, code)


def test_a_shortened_ttl_minute_for_tests_and_demos() -> None:
    s = rules.issue("ABCD1234WXYZ", T0, timedelta(days=1), 2, 2000, minute_seconds=1.5)
    s, _, _ = rules.join(s, "a", T0)
    s, _, _ = rules.join(s, "b", T0)
    assert s.remaining_seconds(T0) == 3
    assert s.state(T0 + timedelta(seconds=2.9)) is State.ACTIVE
    assert s.state(T0 + timedelta(seconds=3)) is State.ENDED
